"""``engine.core.execution``: what the node that claimed a job's lease does with it (SPEC §2.3).

A lease is claimable only when no live node holds it; the job's stored state then says whether
its runner died (RUNNING: rescue it first) or its record is consistent.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.core import operations as ops
from engine.core.jobs import Family, Job, Mode, Segment, StepSpec
from engine.core.states import State

T0 = 1_700_000_000_000
HERE = "1@test"
SPECS = [StepSpec(f"step {i}", "SHELL_CMD_HADOOP", Family.SHELL, Mode.SIMULATED) for i in range(2)]

#: (state found at claim time, rescued first, then queued for a slot)
CLAIMED = [
    (State.RUNNING, True, True),  # its runner died: recovered to READY, then it runs
    (State.READY, False, True),  # waiting for a slot: it runs
    (State.STOPPED, False, False),  # paused meanwhile: nothing to run
    (State.ERROR, False, False),
    (State.DISCARDED, False, False),
    (State.SUCCEED, False, False),
]


def _ready() -> Job:
    segment = Segment("seg", "cube", "s", 0, 1)
    return ops.submit("job", "p", "cube", "BUILD", segment, SPECS, "ADMIN", T0).job


def _running() -> Job:
    return ops.start_next_step(_ready(), T0 + 1, HERE).job


def _succeeded() -> Job:
    job = ops.step_succeeded(_running(), 0, {}, T0 + 2, HERE).job
    return ops.step_succeeded(job, 1, {}, T0 + 3, HERE).job


JOBS: dict[State, Callable[[], Job]] = {
    State.READY: _ready,
    State.RUNNING: _running,
    State.STOPPED: lambda: ops.pause(_running(), T0 + 2).job,
    State.ERROR: lambda: ops.step_failed(_running(), 0, {}, T0 + 2).job,
    State.DISCARDED: lambda: ops.discard(_running(), T0 + 2).job,
    State.SUCCEED: _succeeded,
}


@pytest.mark.parametrize(("state", "rescued", "runs"), CLAIMED)
def test_a_claimed_job_by_example(state: State, rescued: bool, runs: bool) -> None:
    """What the scheduler does after a claim: rescue an orphan, then run it if it is queued."""
    job = JOBS[state]()
    assert job.state is state
    assert ops.orphaned(job.state) is rescued
    if rescued:
        job = ops.recover(job, T0 + 5).job
        assert job.steps[0].state is State.READY and job.steps[0].reattach
    assert ops.queued(job) is runs


def test_every_state_has_an_example() -> None:
    assert {state for state, _, _ in CLAIMED} == set(State) == set(JOBS)
