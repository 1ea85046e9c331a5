"""``core.operations`` and ``core.execution`` by example: one row per (operation, job state).

Each row is written out by hand (not read from ``states.py``), so a change to the tables shows
up here as a failing example. Jobs have three steps; the job of each state is reached by the
decisions themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.core import operations as ops
from engine.core.errors import OperationNotAllowed
from engine.core.jobs import Family, Job, Mode, Segment, StepSpec
from engine.core.states import State

T0 = 1_700_000_000_000
HERE = "1@test"
SPECS = [StepSpec(f"step {i}", "SHELL_CMD_HADOOP", Family.SHELL, Mode.SIMULATED) for i in range(3)]
R, RU, E, S, D, OK = (
    State.READY,
    State.RUNNING,
    State.ERROR,
    State.STOPPED,
    State.DISCARDED,
    State.SUCCEED,
)


def submitted() -> Job:
    segment = Segment("seg", "cube", "s", 0, 1)
    return ops.submit("job", "p", "cube", "BUILD", segment, SPECS, "ADMIN", T0).job


def running() -> Job:  # step 0 done, step 1 running
    job = ops.start_next_step(submitted(), T0 + 1, HERE).job
    return ops.step_succeeded(job, 0, {}, T0 + 2, HERE).job


def failed() -> Job:  # step 1 ERROR
    return ops.step_failed(running(), 1, {}, T0 + 3).job


def stopped() -> Job:  # step 1 STOPPED
    return ops.pause(running(), T0 + 3).job


def succeeded() -> Job:
    job = running()
    job = ops.step_succeeded(job, 1, {}, T0 + 3, HERE).job
    return ops.step_succeeded(job, 2, {}, T0 + 4, HERE).job


def discarded() -> Job:
    return ops.discard(running(), T0 + 3).job


JOBS: dict[State, Callable[[], Job]] = {
    R: submitted,
    RU: running,
    E: failed,
    S: stopped,
    D: discarded,
    OK: succeeded,
}
NOW = T0 + 10


def test_the_fixture_jobs_are_in_their_states() -> None:
    assert {state: make().state for state, make in JOBS.items()} == {s: s for s in JOBS}
    assert [s.state for s in running().steps] == [OK, RU, R]


# (operation, job state) -> (job state after, step states after, effect types) or None (refused)
Outcome = tuple[State, list[State], list[type]] | None
EXAMPLES: list[tuple[str, State, Outcome]] = [
    ("resume", E, (R, [OK, R, R], [ops.Schedule])),
    ("resume", S, (R, [OK, R, R], [ops.Schedule])),
    ("resume", R, None),
    ("resume", RU, None),
    ("resume", D, None),
    ("resume", OK, None),
    ("discard", R, (D, [D, D, D], [ops.DropSegment])),
    ("discard", RU, (D, [OK, D, D], [ops.Interrupt, ops.DropSegment])),
    ("discard", E, (D, [OK, D, D], [ops.DropSegment])),
    ("discard", S, (D, [OK, D, D], [ops.DropSegment])),
    ("discard", D, None),
    ("discard", OK, None),
    ("pause", R, (S, [S, R, R], [])),
    ("pause", RU, (S, [OK, S, R], [ops.Interrupt])),
    ("pause", E, None),
    ("pause", S, None),
    ("pause", D, None),
    ("pause", OK, None),
    ("rollback", OK, (R, [OK, R, R], [ops.Schedule])),
    ("rollback", E, (E, [OK, R, R], [])),
    ("rollback", S, (S, [OK, R, R], [])),
    ("rollback", R, None),
    ("rollback", RU, None),
    ("rollback", D, None),
    ("drop", OK, (OK, [OK, OK, OK], [ops.DeleteJob])),
    ("drop", D, (D, [OK, D, D], [ops.DeleteJob])),
    ("drop", R, None),
    ("drop", RU, None),
    ("drop", E, None),
    ("drop", S, None),
    ("restart", RU, (R, [R, R, R], [ops.Interrupt, ops.Schedule])),
    ("restart", E, (R, [R, R, R], [ops.Schedule])),
    ("restart", S, (R, [R, R, R], [ops.Schedule])),
    ("restart", R, None),
    ("restart", D, None),
    ("restart", OK, None),
]
DECIDE: dict[str, Callable[[Job], ops.Decision]] = {
    "resume": lambda j: ops.resume(j, NOW),
    "discard": lambda j: ops.discard(j, NOW),
    "pause": lambda j: ops.pause(j, NOW),
    "rollback": lambda j: ops.rollback(j, 1, NOW),
    "drop": ops.drop,
    "restart": lambda j: ops.restart(j, NOW),
}


@pytest.mark.parametrize(("operation", "state", "outcome"), EXAMPLES)
def test_operation_by_example(operation: str, state: State, outcome: Outcome) -> None:
    job = JOBS[state]()
    if outcome is None:
        with pytest.raises(OperationNotAllowed) as refused:
            DECIDE[operation](job)
        assert refused.value.job_id == job.id and job.id in str(refused.value)
        return
    decision = DECIDE[operation](job)
    want_state, want_steps, want_effects = outcome
    assert decision.job.state is want_state
    assert [s.state for s in decision.job.steps] == want_steps
    assert [type(e) for e in decision.effects] == want_effects


def test_every_pair_has_an_example() -> None:
    pairs = [(op, state) for op, state, _ in EXAMPLES]
    assert sorted(pairs) == sorted((op, s) for op in DECIDE for s in JOBS)


def test_discard_of_a_finished_job_says_so() -> None:
    with pytest.raises(OperationNotAllowed, match="has already been finished and cannot be"):
        ops.discard(succeeded(), NOW)


def test_resume_does_not_count_downtime() -> None:
    job = failed()  # ended at T0 + 3
    resumed = ops.resume(job, T0 + 103).job
    assert resumed.end_time == 0
    assert resumed.interrupt_time == job.interrupt_time + 100


# -- the scheduler's side -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "retry"),
    [
        ("retrying", True),  # job and step stay RUNNING: a retry was decided
        ("succeeded", False),  # the next step runs: this step's run is over
        ("failed", False),
    ],
)
def test_retry_decided(outcome: str, retry: bool) -> None:
    job = running()
    decide = {
        "retrying": lambda: ops.step_retrying(job, 1, {}, NOW),
        "succeeded": lambda: ops.step_succeeded(job, 1, {}, NOW, HERE),
        "failed": lambda: ops.step_failed(job, 1, {}, NOW),
    }[outcome]
    assert ops.retry_decided(decide().job, 1) is retry


@pytest.mark.parametrize(("state", "queued"), [(R, True), (RU, False), (E, False), (S, False)])
def test_only_a_ready_job_waits_in_the_queue(state: State, queued: bool) -> None:
    assert ops.queued(JOBS[state]()) is queued


@pytest.mark.parametrize(
    ("used", "allowed", "kind", "kinds", "retry"),
    [
        (0, 0, "X", frozenset(), False),  # kylin.job.retry = 0: never
        (0, 2, "X", frozenset(), True),
        (2, 2, "X", frozenset(), False),  # attempts ran out
        (0, 2, "X", frozenset({"X"}), True),
        (0, 2, "Y", frozenset({"X"}), False),  # not a kind that may be retried
    ],
)
def test_retry_allowed(
    used: int, allowed: int, kind: str, kinds: frozenset[str], retry: bool
) -> None:
    assert ops.retry_allowed(used, allowed, kind, kinds) is retry


def test_recover_puts_a_running_job_back_in_the_queue() -> None:
    recovered = ops.recover(running(), NOW)
    assert recovered.job.state is R
    assert [s.state for s in recovered.job.steps] == [OK, R, R]
    assert recovered.job.steps[1].reattach
    assert recovered.effects == (ops.Schedule("job"),)
    assert ops.recover(failed(), NOW).effects == ()
