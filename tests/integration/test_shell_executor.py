"""Real shell steps: real ``/bin/sh`` and Python children, real signals, real pipes."""

from __future__ import annotations

import os
import random
import shlex
import sys
import tracemalloc
import uuid
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from engine.clock import SystemClock
from engine.core.errors import InvalidRequest, StepFailure
from engine.core.jobs import Family, Mode, Step, StepSpec
from steps import ShellExecutor, executor_for, substitute
from steps.base import StepContext
from tests.integration.sinks import Lines

PY = shlex.quote(sys.executable)


class Counter:
    """An output sink that keeps only counts: it holds nothing it is given."""

    def __init__(self) -> None:
        self.chars = 0
        self.writes = 0
        self.longest = 0

    def write(self, text: str) -> None:
        self.chars += len(text)
        self.writes += 1
        self.longest = max(self.longest, len(text))


class Info:
    """An info sink that records every update."""

    def __init__(self) -> None:
        self.merged: dict[str, str] = {}

    async def update(self, info: Mapping[str, str], wait_time_ms: int | None = None) -> None:
        self.merged.update(info)


def shell_ctx(
    tmp_path: Path,
    command: str,
    *,
    output: Lines | Counter | None = None,
    timeout_s: float | None = None,
    interrupt_cmd: str | None = None,
    grace: float = 0.5,
    env: Mapping[str, str] | None = None,
) -> StepContext:
    spec = StepSpec(
        name="Create Intermediate Flat Hive Table",
        cmd_type="SHELL_CMD",
        family=Family.SHELL,
        mode=Mode.REAL,
        exec_cmd=command,
        interrupt_cmd=interrupt_cmd,
        timeout_s=timeout_s,
    )
    return StepContext(
        job_id="j",
        step=Step(job_id="j", sequence=0, spec=spec, attempts=1),
        params={},
        output=output if output is not None else Lines(),
        info=Info(),
        clock=SystemClock(),
        rng=random.Random(0),
        workdir=tmp_path / "work",
        env=env or {},
        grace_seconds=grace,
    )


def py(code: str) -> str:
    """A shell command that runs ``code`` in a Python child that replaces the shell."""
    return f"exec {PY} -c {shlex.quote(code)}"


def lines_of(ctx: StepContext) -> Lines:
    assert isinstance(ctx.output, Lines)
    return ctx.output


async def cancel_after(ctx: StepContext, needle: str) -> str:
    """Run the step, cancel it once ``needle`` is in its output; how the run ended."""
    outcome = "not ended"

    async def run() -> None:
        nonlocal outcome
        try:
            await ShellExecutor().run(ctx)
            outcome = "returned"
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await lines_of(ctx).wait_for(needle)
            tg.cancel_scope.cancel()
    return outcome


async def gone(pid: int) -> None:
    """Wait (bounded) until ``pid`` has ended: no such process, or a zombie awaiting its reaper."""
    with anyio.fail_after(10):
        while True:
            if _ended(pid):
                return
            await anyio.sleep(0.01)


def _ended(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_registry_picks_the_real_shell_executor(tmp_path: Path) -> None:
    assert isinstance(executor_for(shell_ctx(tmp_path, "true").step.spec), ShellExecutor)


async def test_success_reports_exit_code_zero_and_runs_in_the_workdir(tmp_path: Path) -> None:
    ctx = shell_ctx(tmp_path, 'echo "$KJOBS_TEST_VAR"; pwd', env={"KJOBS_TEST_VAR": "hello"})
    result = await ShellExecutor().run(ctx)
    assert dict(result.info) == {"exit_code": "0"}
    assert lines_of(ctx).lines == ["hello\n", f"{tmp_path / 'work'}\n"]


async def test_failure_reports_the_exit_code(tmp_path: Path) -> None:
    ctx = shell_ctx(tmp_path, "echo partial; exit 3")
    with pytest.raises(StepFailure) as failure:
        await ShellExecutor().run(ctx)
    assert failure.value.kind == "ShellCommandFailed"
    assert failure.value.info == {"exit_code": "3"}
    assert "exit code 3" in str(failure.value)
    assert lines_of(ctx).lines == ["partial\n"]


async def test_stdout_and_stderr_are_captured_interleaved_in_order(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "for i in range(50):\n"
        "    sys.stdout.write(f'out {i}\\n'); sys.stdout.flush()\n"
        "    sys.stderr.write(f'err {i}\\n'); sys.stderr.flush()\n"
        "sys.stdout.write('no newline at the end'); sys.stdout.flush()\n"
    )
    ctx = shell_ctx(tmp_path, py(code))
    await ShellExecutor().run(ctx)
    expected = [line for i in range(50) for line in (f"out {i}\n", f"err {i}\n")]
    assert lines_of(ctx).lines == [*expected, "no newline at the end"]


async def test_output_arrives_while_the_command_still_runs(tmp_path: Path) -> None:
    release = tmp_path / "release"
    code = (
        "import os, sys, time\n"
        "print('first line', flush=True)\n"
        f"while not os.path.exists({str(release)!r}): time.sleep(0.01)\n"
        "print('last line', flush=True)\n"
    )
    ctx = shell_ctx(tmp_path, py(code))
    ended = anyio.Event()

    async def run() -> None:
        await ShellExecutor().run(ctx)
        ended.set()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await lines_of(ctx).wait_for("first line\n")
            # the child cannot end before the file exists: the line came while it ran
            assert not ended.is_set()
            assert lines_of(ctx).lines == ["first line\n"]
            release.touch()
    assert lines_of(ctx).lines == ["first line\n", "last line\n"]


async def test_timeout_kills_the_command(tmp_path: Path) -> None:
    code = "import time; print('started', flush=True); time.sleep(60)"
    ctx = shell_ctx(tmp_path, py(code), timeout_s=0.3)
    with anyio.fail_after(20), pytest.raises(StepFailure) as failure:
        await ShellExecutor().run(ctx)
    assert failure.value.kind == "StepTimeout"
    assert failure.value.info == {"exit_code": str(128 + 15)}  # SIGTERM, as sh and Java say
    assert lines_of(ctx).lines == ["started\n"]


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path,
) -> None:
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: print('got TERM, ignoring it', flush=True))\n"
        "print(f'pid {os.getpid()}', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    ctx = shell_ctx(tmp_path, py(code), grace=0.5)
    assert await cancel_after(ctx, "pid ") == "cancelled"
    pid = int(lines_of(ctx).lines[0].split()[1])
    await gone(pid)
    # SIGTERM came first (and was captured while the group was being stopped), then SIGKILL
    assert "got TERM, ignoring it\n" in lines_of(ctx).lines


async def test_cancellation_kills_grandchildren_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    grandchild = (
        "import os, time\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "print('grandchild ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    # the grandchild inherits the output pipe: killing the group must also unblock the reader
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        "time.sleep(60)\n"
    )
    ctx = shell_ctx(tmp_path, py(code))
    assert await cancel_after(ctx, "grandchild ready") == "cancelled"
    await gone(int(pidfile.read_text()))


async def test_background_processes_do_not_outlive_a_finished_step(tmp_path: Path) -> None:
    # ``sleep`` keeps the pipe open: the step must still end, and take the sleep with it
    ctx = shell_ctx(tmp_path, "sleep 60 & echo $!")
    with anyio.fail_after(20):
        result = await ShellExecutor().run(ctx)
    assert result.info == {"exit_code": "0"}
    await gone(int(lines_of(ctx).lines[0]))


async def test_the_interrupt_command_is_used_instead_of_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: print('got TERM', flush=True))\n"
        "def stop(*_):\n"
        "    print('got USR1, stopping', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGUSR1, stop)\n"
        "print('running', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    marker = tmp_path / "interrupted"
    interrupt = (
        f"echo interrupting; touch {shlex.quote(str(marker))}; kill -s USR1 $KJOBS_STEP_PGID"
    )
    ctx = shell_ctx(tmp_path, py(code), interrupt_cmd=interrupt, grace=5.0)
    assert await cancel_after(ctx, "running") == "cancelled"
    assert marker.exists()
    first, *rest = lines_of(ctx).lines
    assert first == "running\n"
    # two processes, two pipes: their lines may come in either order
    assert sorted(rest) == ["got USR1, stopping\n", "interrupting\n"]


async def test_a_failing_interrupt_command_falls_back_to_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    print('got TERM', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('running', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    ctx = shell_ctx(tmp_path, py(code), interrupt_cmd="echo cannot interrupt; exit 4", grace=5.0)
    assert await cancel_after(ctx, "running") == "cancelled"
    assert lines_of(ctx).lines == ["running\n", "cannot interrupt\n", "got TERM\n"]


async def test_fifty_megabytes_stream_through_without_being_held(tmp_path: Path) -> None:
    line_length, count = 1000, 50_000  # 50 MB
    code = (
        "import sys\n"
        f"line = 'x' * {line_length - 1} + '\\n'\n"
        f"block = line * 100\n"
        f"for _ in range({count // 100}): sys.stdout.write(block)\n"
    )
    sink = Counter()
    ctx = shell_ctx(tmp_path, py(code), output=sink)
    tracemalloc.start()
    try:
        with anyio.fail_after(60):
            await ShellExecutor().run(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (sink.chars, sink.writes, sink.longest) == (line_length * count, count, line_length)
    assert peak < 8 * 1024 * 1024  # a few pipe chunks, never the 50 MB


async def test_a_line_without_end_is_passed_on_in_bounded_pieces(tmp_path: Path) -> None:
    sink = Counter()
    ctx = shell_ctx(tmp_path, py("import sys; sys.stdout.write('y' * 5_000_000)"), output=sink)
    with anyio.fail_after(20):
        await ShellExecutor().run(ctx)
    assert sink.chars == 5_000_000
    assert sink.longest < 1_000_000


async def test_substituted_parameters_cannot_inject_commands(tmp_path: Path) -> None:
    pwned = Path(f"/tmp/pwned-{uuid.uuid4()}")
    values = [
        f"x; touch {pwned}",
        f"$(touch {pwned})",
        f"`touch {pwned}`",
        f"it's | touch {pwned} && echo '",
    ]
    for value in values:
        command = substitute("echo {segment}", {"segment": value})
        ctx = shell_ctx(tmp_path, command)
        await ShellExecutor().run(ctx)
        assert lines_of(ctx).lines == [value + "\n"]
        assert not await anyio.Path(pwned).exists()


def test_substitute_names_an_unknown_placeholder() -> None:
    with pytest.raises(InvalidRequest, match=r"\{cube\}"):
        substitute("hive -e {cube}", {"segment": "s"})


def test_substitute_leaves_shell_syntax_alone() -> None:
    template = "echo ${HOME} \\{cube} {cube} | awk '{print}' \"$x\" {cube}/part"
    assert substitute(template, {"cube": "a b"}) == (
        "echo ${HOME} \\{cube} 'a b' | awk '{print}' \"$x\" 'a b'/part"
    )


@pytest.mark.parametrize("template", ["echo '{cube}'", 'echo "{cube}"', 'echo "x {cube} y"'])
def test_substitute_refuses_a_placeholder_inside_quotes(template: str) -> None:
    with pytest.raises(InvalidRequest, match="inside quotes"):
        substitute(template, {"cube": "c"})
