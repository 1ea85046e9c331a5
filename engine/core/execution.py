"""Pure decisions for the scheduler's side of a batch job: a slot, a step's outcome, recovery.

Old job in, ``Decision`` out, as in ``operations``; the scheduler stores the result and then
performs its effects (SPEC §2).
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.core.effects import (
    ApplyStepAction,
    Decision,
    Effect,
    RunStep,
    Schedule,
    move_job,
    move_step,
    with_steps,
)
from engine.core.errors import IllegalTransition
from engine.core.jobs import Job, Step
from engine.core.states import State

# -- execution events (the scheduler's side) -------------------------------------------------


def start_next_step(job: Job, now: int, instance: str) -> Decision:
    """A READY job got a slot (or its previous step just succeeded): run its next READY step.

    The job becomes RUNNING (its first pickup time is kept across resumes). When no step is
    left to run, the job SUCCEEDs.
    """
    if job.state not in (State.READY, State.RUNNING):
        raise IllegalTransition(f"job {job.id}", job.state, State.RUNNING)
    return _start_next(job, list(job.steps), now, instance)


def _start_next(job: Job, steps: list[Step], now: int, instance: str) -> Decision:
    """``job`` with ``steps`` (edited by the caller): its next step RUNNING, or SUCCEED.

    One copy of the job whatever changed (a frozen copy is the costly part of a decision).
    """
    step = next((s for s in steps if s.state is not State.SUCCEED), None)
    if step is None:
        return Decision(move_job(job, State.SUCCEED, now, end_time=now, steps=tuple(steps)))
    if step.state is not State.READY:
        raise IllegalTransition(f"step {step.id}", step.state, State.RUNNING)
    steps[step.sequence] = move_step(
        step,
        State.RUNNING,
        start_time=now,
        end_time=0,
        wait_time=0,
        info={"startTime": str(now)},
        attempts=step.attempts + 1,
        reattach=False,
    )
    new = move_job(
        job,
        State.RUNNING,
        now,
        steps=tuple(steps),
        start_time=job.start_time or now,
        build_instance=instance,
    )
    return Decision(new, (RunStep(job.id, step.sequence),))


def _require_running(job: Job, sequence: int) -> Step:
    step = job.step(sequence)
    if job.state is not State.RUNNING or step.state is not State.RUNNING:
        # The step was paused, discarded or reset while it ran: its result is stale.
        raise IllegalTransition(f"step {step.id}", step.state, State.SUCCEED)
    return step


def update_step_info(
    job: Job, sequence: int, info: Mapping[str, str], now: int, wait_time: int | None = None
) -> Decision:
    """A running step reports progress info (MR application ids, queue wait)."""
    step = _require_running(job, sequence)
    changes: dict[str, object] = {"info": {**step.info, **info}}
    if wait_time is not None:
        changes["wait_time"] = wait_time
    return Decision(job.with_step(step.evolve(**changes)).evolve(last_modified=now))


def step_succeeded(
    job: Job, sequence: int, info: Mapping[str, str], now: int, instance: str
) -> Decision:
    """Step -> SUCCEED; the next step starts in the same write, or the job SUCCEEDs."""
    step = _require_running(job, sequence)
    done = move_step(step, State.SUCCEED, end_time=now, info=_end_info(step, info, now))
    effects: list[Effect] = []
    if step.spec.action:
        effects.append(ApplyStepAction(job.id, step.spec.action))
    steps = list(job.steps)
    steps[sequence] = done
    following = _start_next(job, steps, now, instance)
    return Decision(following.job, (*effects, *following.effects))


def step_retrying(job: Job, sequence: int, info: Mapping[str, str], now: int) -> Decision:
    """The step failed but has retries left: it stays RUNNING with a new attempt."""
    step = _require_running(job, sequence)
    retried = step.evolve(
        retries=step.retries + 1,
        attempts=step.attempts + 1,
        start_time=now,
        info={**_end_info(step, info, now), "startTime": str(now)},
    )
    return Decision(job.with_step(retried).evolve(last_modified=now))


def step_failed(job: Job, sequence: int, info: Mapping[str, str], now: int) -> Decision:
    """Attempts ran out: step -> ERROR, job -> ERROR with end time; later steps stay READY."""
    step = _require_running(job, sequence)
    failed = move_step(step, State.ERROR, end_time=now, info=_end_info(step, info, now))
    new = move_job(job.with_step(failed), State.ERROR, now, end_time=now)
    return Decision(new)


def retry_allowed(
    retries_used: int, max_retries: int, failure_kind: str, retry_kinds: frozenset[str]
) -> bool:
    """SPEC §2: retry while attempts remain and the failure kind is one that may be retried."""
    if retries_used >= max_retries:
        return False
    return not retry_kinds or failure_kind in retry_kinds


def retry_decided(job: Job, sequence: int) -> bool:
    """After a step's outcome was stored: job and step still RUNNING means a retry was decided
    (``step_retrying``); anything else (next step, SUCCEED, ERROR) ends this step's run."""
    return job.state is State.RUNNING and job.step(sequence).state is State.RUNNING


def queued(job: Job) -> bool:
    """Only a READY job waits for a slot; a job in any other state leaves the queue."""
    return job.state is State.READY


def orphaned(state: State) -> bool:
    """Whether a job found in ``state`` by the node that just claimed its lease has no runner.

    A lease is claimable only when no live node holds it, so a job still RUNNING then lost its
    runner (its node died, or this engine crashed): it is rescued (``recover`` to READY, the
    interrupted step runs again) before it is run. In any other state the job's record is
    consistent: READY waits for a slot, the rest has nothing to run (SPEC §2.3)."""
    return state is State.RUNNING


def _end_info(step: Step, info: Mapping[str, str], now: int) -> dict[str, str]:
    return {**step.info, **info, "endTime": str(now)}


def recover(job: Job, now: int) -> Decision:
    """Engine start or clean shutdown: a RUNNING job and step -> READY, scheduled again.

    The interrupted step re-runs from scratch, or re-attaches to its simulated YARN
    application when that is still alive (``reattach``). Nothing finished runs again.
    """
    if job.state is State.READY:
        return Decision(job, (Schedule(job.id),))
    if job.state is not State.RUNNING:
        return Decision(job)
    steps = [
        move_step(s, State.READY, reattach=True) for s in job.steps if s.state is State.RUNNING
    ]
    new = move_job(with_steps(job, steps), State.READY, now)
    return Decision(new, (Schedule(job.id),))
