"""Crash recovery with a real process (SPEC §2.3): SIGKILL mid-step, restart, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from engine.core.states import State
from engine.facade import Engine
from engine.store.sqlite.jobs import SqliteJobStore
from tests.integration.conftest import fast_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_sigkill_mid_step_then_restart_finishes_without_rerunning(tmp_path: Path) -> None:
    store_path = str(tmp_path / "crash.sqlite")
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.crash_child", store_path, str(tmp_path / "w")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().strip()
        assert job_id, "the child did not submit its job"
        observer = SqliteJobStore(store_path)
        await observer.open()
        try:
            with anyio.fail_after(60):
                while True:  # a real process: poll its store until a step finished
                    job = await observer.get_job(job_id)
                    done = [s for s in job.steps if s.state is State.SUCCEED]
                    if len(done) >= 3 and job.first_step_in(State.RUNNING) is not None:
                        finished_before = {s.sequence for s in done}
                        break
                    await anyio.sleep(0.02)
        finally:
            await observer.close()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    config = fast_config(tmp_path, **{"kjobs.store": store_path})
    async with Engine(config) as engine:
        done = await engine.wait_for(job_id, {State.SUCCEED, State.ERROR}, timeout=60)
        assert done.state is State.SUCCEED
        for seq in finished_before:
            assert done.step(seq).attempts == 1, "a finished step ran again"
        assert len(await engine.list()) == 1  # no job lost, none duplicated
