"""Real shell steps: ``true`` throughput, and how fast a discard reaches a running command.

Cancel latency. The step runs ``exec python child.py DIR``: the child leads the step's process
group, ignores SIGTERM and writes the time it received it (``time.monotonic``, i.e. the
system-wide CLOCK_MONOTONIC, the same clock as the bench's) into ``DIR/sigterm``. The bench
notes the time just before ``Engine.discard``; ``cancel_to_sigterm_ms`` is the child's time
minus that. Then it polls ``/proc`` every 0.5 ms until no live process (zombies do not count)
is left in the group: ``cancel_to_group_dead_ms``, expected to be the grace period (SIGTERM ->
SIGKILL) plus a little.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Final

import anyio

from bench.common import bench_config, percentile, shell_steps, wait_all_final
from engine.clock import monotonic
from engine.core.states import State
from engine.facade import Engine

CHILD: Final = """\
import os, signal, sys, time
out = sys.argv[1]
def on_term(signum, frame):
    now = time.monotonic()
    with open(out + "/sigterm.tmp", "w") as f:
        f.write(repr(now))
    os.rename(out + "/sigterm.tmp", out + "/sigterm")
signal.signal(signal.SIGTERM, on_term)
with open(out + "/ready.tmp", "w") as f:
    f.write(str(os.getpgid(0)))
os.rename(out + "/ready.tmp", out + "/ready")
while True:
    time.sleep(3600)
"""
POLL_S: Final = 0.0005
WAIT_S: Final = 30.0


async def shell_throughput(workdir: Path, jobs: int = 20, steps: int = 25) -> dict[str, Any]:
    """``jobs`` jobs of ``steps`` real ``true`` steps, all at once: steps per second."""
    config = bench_config(workdir, **{"kylin.job.max-concurrent-jobs": jobs})
    specs = shell_steps(steps)
    async with Engine(config) as engine:
        started = monotonic()
        async with anyio.create_task_group() as tg:
            for _ in range(jobs):
                tg.start_soon(_submit, engine, specs)
        with anyio.fail_after(WAIT_S * 4):
            counts = await wait_all_final(engine, jobs)
        wall = monotonic() - started
    return {
        "steps_per_s": jobs * steps / wall,
        "wall_s": wall,
        "jobs": jobs,
        "steps": steps,
        "succeeded": counts.get(State.SUCCEED, 0),
    }


async def _submit(engine: Engine, specs: list[Any]) -> None:
    await engine.submit_job(specs, name="bench-shell")


async def cancel_latency(workdir: Path, samples: int = 5, grace_s: float = 0.5) -> dict[str, Any]:
    """Discard a running step whose command ignores SIGTERM, ``samples`` times."""
    config = bench_config(workdir, **{"kjobs.job.kill-grace-period": grace_s})
    child = workdir / "ignore_sigterm.py"
    child.write_text(CHILD)
    to_sigterm: list[float] = []
    to_dead: list[float] = []
    async with Engine(config) as engine:
        for index in range(samples):
            folder = workdir / f"cancel-{index}"
            folder.mkdir(parents=True)
            command = f"exec {sys.executable} {child} {folder}"
            job = await engine.submit_job(shell_steps(1, command), name="bench-cancel")
            with anyio.fail_after(WAIT_S):
                pgid = int(await _read_when_there(folder / "ready"))
            started = time.monotonic()
            await engine.discard(job.id)
            with anyio.fail_after(WAIT_S):
                signalled = float(await _read_when_there(folder / "sigterm"))
                while group_alive(pgid):  # noqa: ASYNC110 - other processes: nothing to await
                    await anyio.sleep(POLL_S)
            dead = time.monotonic()
            to_sigterm.append((signalled - started) * 1000.0)
            to_dead.append((dead - started) * 1000.0)
    return {
        "cancel_to_sigterm_ms": percentile(to_sigterm, 50),
        "cancel_to_group_dead_ms": percentile(to_dead, 50),
        "cancel_to_sigterm_ms_max": max(to_sigterm),
        "cancel_to_group_dead_ms_max": max(to_dead),
        "grace_s": grace_s,
        "samples": samples,
    }


async def _read_when_there(path: Path) -> str:
    file = anyio.Path(path)
    while not await file.exists():  # noqa: ASYNC110 - written by another process
        await anyio.sleep(POLL_S)
    return await file.read_text()


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is alive (zombies are dead: only unreaped)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        # after the ")" that closes the command name: state, ppid, pgrp, ...
        fields = data[data.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False
