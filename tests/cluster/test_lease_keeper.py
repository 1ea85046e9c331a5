"""The lease keeper of one node never takes a lease it just claimed for a lost one.

The keeper compares the leases its runners hold with what the store says this node holds. A
runner that claims its lease while that read is under way must not be marked lost: a false loss
stops a healthy runner and leaves its job RUNNING until the lease expires (it showed in the
bench as idle time and ``kjobs.lease.lost`` warnings with a single engine).
"""

from __future__ import annotations

from pathlib import Path

import anyio

from engine.core.jobs import Family, Mode, StepSpec
from engine.core.states import State
from engine.facade import Engine
from tests.integration.conftest import fast_config

JOBS = 300
STEPS = 4


async def test_busy_single_node_loses_no_lease(tmp_path: Path) -> None:
    config = fast_config(
        tmp_path,
        **{
            "kjobs.store": str(tmp_path / "kjobs.sqlite"),
            "kjobs.cluster.lease-seconds": 1.0,  # the keeper checks every 0.25 s
            "kylin.job.max-concurrent-jobs": 50,
        },
    )
    specs = [StepSpec(f"step {i}", "true", Family.SHELL, Mode.SIMULATED) for i in range(STEPS)]
    async with Engine(config) as engine:
        jobs = [await engine.submit_job(specs, name="keeper") for _ in range(JOBS)]
        with anyio.fail_after(120):
            for job in jobs:
                done = await engine.wait_for(job.id, {State.SUCCEED, State.ERROR})
                assert done.state is State.SUCCEED
        assert engine.scheduler.leases_lost == 0
        assert engine.scheduler.jobs_rescued == 0


async def test_a_lost_lease_of_an_earlier_run_spares_the_newer_runner(tmp_path: Path) -> None:
    config = fast_config(tmp_path, **{"kjobs.store": str(tmp_path / "kjobs.sqlite")})
    slow = [StepSpec("hold", "SHELL_CMD", Family.SHELL, Mode.REAL, exec_cmd="sleep 60")]
    async with Engine(config) as engine:
        job = await engine.submit_job(slow, name="newer")
        await engine.wait_for(job.id, {State.RUNNING}, timeout=30)
        runner = engine.scheduler._running[job.id]
        lease = runner.lease  # claimed before the job was written RUNNING
        assert lease is not None
        engine.scheduler.lease_lost(job.id, lease.token - 1)  # an older lease's token
        assert not runner.lost and engine.scheduler.leases_lost == 0
        engine.scheduler.lease_lost(job.id, lease.token)
        assert runner.lost and engine.scheduler.leases_lost == 1
        await engine.discard(job.id)
