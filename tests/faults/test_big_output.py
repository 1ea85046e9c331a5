"""A real shell step printing 200 MB: the stored output keeps the tail and states the real cut."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from engine.core.jobs import Family, Mode, StepSpec
from engine.core.states import State
from engine.facade import Engine
from tests.integration.conftest import fast_config

# long lines (1 KiB) keep the test quick: the executor hands the store one line at a time
LINE = "map 42% reduce 7% — a line of a big MapReduce log " + "x" * 970 + "\n"
LINES = 200 * 1024 * 1024 // len(LINE.encode()) + 1
LAST = "the very last line\n"
NOTE = re.compile(r"^\[kjobs: (\d+) bytes of earlier output were cut to keep the last (\d+)\]\n")


async def test_two_hundred_megabytes_keep_the_tail_and_the_right_count(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        f"block = {LINE!r}.encode() * 1024\n"
        f"for _ in range({LINES // 1024}): sys.stdout.buffer.write(block)\n"
        f"sys.stdout.buffer.write({LINE!r}.encode() * {LINES % 1024})\n"
        f"sys.stdout.buffer.write({LAST!r}.encode())\n"
    )
    (tmp_path / "big.py").write_text(script, encoding="utf-8")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(tmp_path / 'big.py'))}"
    step = StepSpec("print 200 MB", "SHELL_CMD", Family.SHELL, Mode.REAL, exec_cmd=command)
    limit = 1024 * 1024
    config = fast_config(
        tmp_path,
        **{"kjobs.store": str(tmp_path / "k.sqlite"), "kylin.job.execute-output.max-size": limit},
    )
    async with Engine(config) as engine:
        job = await engine.submit_job([step], name="big")
        done = await engine.wait_for(job.id, {State.SUCCEED, State.ERROR}, timeout=600)
        assert done.state is State.SUCCEED
        stored = (await engine.step_output(job.id, f"{job.id}-00")).cmd_output
    assert stored is not None
    match = NOTE.match(stored)
    assert match is not None, stored[:200]
    tail = stored[match.end() :]
    total = LINES * len(LINE.encode()) + len(LAST)
    assert int(match.group(2)) == limit
    assert tail.endswith(LINE + LAST)
    assert limit - len(LINE.encode()) < len(tail.encode()) <= limit
    assert int(match.group(1)) == total - len(tail.encode())  # every byte cut, counted
    assert "[kjobs:" not in tail  # no fragment of an earlier note
