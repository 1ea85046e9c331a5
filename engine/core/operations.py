"""Pure decisions over batch jobs: old job in, new job plus effects out (SPEC §2).

A decision either returns a ``Decision`` or raises a typed error and changes nothing. The async
runtime loads a job, calls a decision, stores the new job with its version number, and only then
performs the effects. Every state change goes through ``_move``, which asks the table in
``states.py``; nothing here re-encodes it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.core.errors import IllegalTransition, InvalidRequest, OperationNotAllowed
from engine.core.jobs import Job, Segment, Step, StepSpec
from engine.core.states import OPERATION_ALLOWED_FROM, Operation, State, can_transition

# -- effects: what the runtime does after the new state is durable ----------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    """The job is READY: queue it for a slot."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Stop the running step at once (shell: signal its group; MR: kill the YARN app)."""

    job_id: str
    sequence: int


@dataclass(frozen=True, slots=True)
class RunStep:
    """Start the executor of this (now RUNNING) step."""

    job_id: str
    sequence: int


@dataclass(frozen=True, slots=True)
class ApplyStepAction:
    """A step with a metadata action (e.g. ``update_cube_info``) succeeded."""

    job_id: str
    action: str


@dataclass(frozen=True, slots=True)
class DropSegment:
    """The job was discarded: its NEW segment goes away."""

    job_id: str


@dataclass(frozen=True, slots=True)
class DeleteJob:
    """Drop: delete the job, its steps and their outputs."""

    job_id: str


Effect = Schedule | Interrupt | RunStep | ApplyStepAction | DropSegment | DeleteJob


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a decision: the job to store and the effects to perform after."""

    job: Job
    effects: tuple[Effect, ...] = ()


# -- guards -----------------------------------------------------------------------------------


def require(job: Job, operation: Operation) -> None:
    """Raise ``OperationNotAllowed`` unless ``operation`` is allowed from the job's state.

    The message speaks the REST names users see (FINISHED, PENDING, ...).
    """
    allowed = OPERATION_ALLOWED_FROM[operation]
    if job.state in allowed:
        return
    verb = operation.value.lower()
    if operation is Operation.DISCARD and job.state is State.SUCCEED:
        message = f"The job {job.id} has already been finished and cannot be discarded."
    else:
        names = ", ".join(sorted(s.rest_name for s in allowed))
        message = (
            f"Cannot {verb} job '{job.id}': it is {job.state.rest_name}; "
            f"{verb} is allowed from {names}"
        )
    raise OperationNotAllowed(job.id, operation.value, job.state.value, allowed, message)


def _move_job(job: Job, new: State, now: int, **changes: object) -> Job:
    if job.state is not new and not can_transition(job.state, new):
        raise IllegalTransition(f"job {job.id}", job.state, new)
    return job.evolve(state=new, last_modified=now, **changes)


def _move_step(step: Step, new: State, **changes: object) -> Step:
    if step.state is not new and not can_transition(step.state, new):
        raise IllegalTransition(f"step {step.id}", step.state, new)
    return step.evolve(state=new, **changes)


def _running_step(job: Job) -> Step | None:
    return job.first_step_in(State.RUNNING)


def _with_steps(job: Job, steps: Iterable[Step]) -> Job:
    replaced = {s.sequence: s for s in steps}
    return job.evolve(steps=tuple(replaced.get(s.sequence, s) for s in job.steps))


def _reopen(job: Job, now: int) -> dict[str, int]:
    """Fields for a job that leaves an end state to run again: downtime is not duration."""
    if not job.end_time:
        return {}
    return {"interrupt_time": job.interrupt_time + max(0, now - job.end_time), "end_time": 0}


# -- user operations (SPEC §2.1) --------------------------------------------------------------


def resume(job: Job, now: int) -> Decision:
    """First ERROR/STOPPED step -> READY; job -> READY and scheduled again."""
    require(job, Operation.RESUME)
    steps = []
    step = job.first_step_in(State.ERROR, State.STOPPED)
    if step is not None:
        steps.append(_move_step(step, State.READY, end_time=0, retries=0, reattach=False))
    new = _move_job(_with_steps(job, steps), State.READY, now, **_reopen(job, now))
    return Decision(new, (Schedule(job.id),))


def discard(job: Job, now: int) -> Decision:
    """Every non-final step -> DISCARDED, a running step interrupted; job -> DISCARDED."""
    require(job, Operation.DISCARD)
    running = _running_step(job)
    steps = [
        _move_step(s, State.DISCARDED, end_time=now if s.state is State.RUNNING else s.end_time)
        for s in job.steps
        if not s.state.is_final
    ]
    new = _move_job(_with_steps(job, steps), State.DISCARDED, now, end_time=now)
    effects: list[Effect] = []
    if running is not None:
        effects.append(Interrupt(job.id, running.sequence))
    effects.append(DropSegment(job.id))
    return Decision(new, tuple(effects))


def pause(job: Job, now: int) -> Decision:
    """The first non-final step -> STOPPED (interrupted if running); job -> STOPPED."""
    require(job, Operation.PAUSE)
    effects: list[Effect] = []
    steps = []
    step = next((s for s in job.steps if not s.state.is_final), None)
    if step is not None:
        if step.state is State.RUNNING:
            effects.append(Interrupt(job.id, step.sequence))
        steps.append(_move_step(step, State.STOPPED, end_time=now if step.start_time else 0))
    new = _move_job(_with_steps(job, steps), State.STOPPED, now, end_time=now)
    return Decision(new, tuple(effects))


def rollback(job: Job, sequence: int, now: int) -> Decision:
    """Steps with sequence >= ``sequence`` -> READY, info cleared, output "no output".

    A SUCCEED job becomes READY and runs again from there; ERROR/STOPPED jobs stay as they are
    and need a resume. Steps are compared by sequence number, not by id strings. Attempt
    numbers are kept (SPEC §7: they grow over the job's whole life), so every earlier attempt's
    output stays addressable and "fails on the first attempt" stays true after a rollback.
    """
    require(job, Operation.ROLLBACK)
    job.step(sequence)  # IndexError for an unknown step: the caller maps it to StepNotFound
    reset = [
        _move_step(s, State.READY, start_time=0, end_time=0, wait_time=0, info={}, retries=0)
        for s in job.steps[sequence:]
    ]
    effects: list[Effect] = []
    new = _with_steps(job, reset).evolve(last_modified=now)
    if job.state is State.SUCCEED:
        new = _move_job(new, State.READY, now, **_reopen(job, now))
        effects.append(Schedule(job.id))
    return Decision(new, tuple(effects))


def drop(job: Job) -> Decision:
    """Delete a finished or discarded job with its steps and outputs."""
    require(job, Operation.DROP)
    return Decision(job, (DeleteJob(job.id),))


def restart(job: Job, now: int) -> Decision:
    """Kylin 5 restart: interrupt, every step READY, job READY; runs again from step 00."""
    require(job, Operation.RESTART)
    effects: list[Effect] = []
    running = _running_step(job)
    if running is not None:
        effects.append(Interrupt(job.id, running.sequence))
    steps = [
        _move_step(s, State.READY, start_time=0, end_time=0, wait_time=0, retries=0)
        for s in job.steps
    ]
    new = _move_job(
        _with_steps(job, steps), State.READY, now, start_time=0, end_time=0, interrupt_time=0
    )
    effects.append(Schedule(job.id))
    return Decision(new, tuple(effects))


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
        return Decision(_move_job(job, State.SUCCEED, now, end_time=now, steps=tuple(steps)))
    if step.state is not State.READY:
        raise IllegalTransition(f"step {step.id}", step.state, State.RUNNING)
    steps[step.sequence] = _move_step(
        step,
        State.RUNNING,
        start_time=now,
        end_time=0,
        wait_time=0,
        info={"startTime": str(now)},
        attempts=step.attempts + 1,
        reattach=False,
    )
    new = _move_job(
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
    done = _move_step(step, State.SUCCEED, end_time=now, info=_end_info(step, info, now))
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
    failed = _move_step(step, State.ERROR, end_time=now, info=_end_info(step, info, now))
    new = _move_job(job.with_step(failed), State.ERROR, now, end_time=now)
    return Decision(new)


def retry_allowed(
    retries_used: int, max_retries: int, failure_kind: str, retry_kinds: frozenset[str]
) -> bool:
    """SPEC §2: retry while attempts remain and the failure kind is one that may be retried."""
    if retries_used >= max_retries:
        return False
    return not retry_kinds or failure_kind in retry_kinds


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
        _move_step(s, State.READY, reattach=True) for s in job.steps if s.state is State.RUNNING
    ]
    new = _move_job(_with_steps(job, steps), State.READY, now)
    return Decision(new, (Schedule(job.id),))


# -- submission -------------------------------------------------------------------------------

#: SPEC §2: base priority per build type (larger first), plus the request's priorityOffset.
BASE_PRIORITY: Mapping[str, int] = {"BUILD": 20, "MERGE": 25, "REFRESH": 20}


def job_name(build_type: str, cube: str, segment: Segment, submitted_ms: int) -> str:
    """``{TYPE} CUBE - {cube} - {segment name} - {yyyy-MM-dd HH:mm:ss} UTC``."""
    moment = _dt.datetime.fromtimestamp(submitted_ms / 1000, tz=_dt.UTC)
    return f"{build_type} CUBE - {cube} - {segment.name} - {moment:%Y-%m-%d %H:%M:%S} UTC"


def submit(
    job_id: str,
    project: str,
    cube: str,
    build_type: str,
    segment: Segment,
    specs: Sequence[StepSpec],
    submitter: str,
    now: int,
    priority_offset: int = 0,
    params: Mapping[str, str] | None = None,
) -> Decision:
    """A new job, READY with all steps READY and ``build_instance`` "unknown"; scheduled."""
    if not specs:
        raise InvalidRequest(f"a job needs at least one step (cube '{cube}', {build_type})")
    job = Job(
        id=job_id,
        name=job_name(build_type, cube, segment, now),
        project=project,
        cube=cube,
        build_type=build_type,
        segment=segment,
        submitter=submitter,
        priority=BASE_PRIORITY.get(build_type, 20) + priority_offset,
        steps=tuple(Step(job_id, i, spec) for i, spec in enumerate(specs)),
        create_time=now,
        last_modified=now,
        params=dict(params or {}),
    )
    return Decision(job, (Schedule(job_id),))
