"""Pure decisions over batch jobs: old job in, new job plus effects out (SPEC §2).

A decision either returns a ``Decision`` or raises a typed error and changes nothing. The async
runtime loads a job, calls a decision, stores the new job with its version number, and only then
performs the effects. Every state change goes through ``effects.move_job`` / ``move_step``,
which ask the table in ``states.py``; nothing here re-encodes it. The scheduler's decisions
live in ``execution`` and the effects in ``effects``; both are re-exported here (``ops.X``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.core.effects import (
    ApplyStepAction,
    Decision,
    DeleteJob,
    DropSegment,
    Effect,
    Interrupt,
    RunStep,
    Schedule,
    move_job,
    move_step,
    reopen,
    running_step,
    with_steps,
)
from engine.core.errors import InvalidRequest, OperationNotAllowed
from engine.core.execution import (
    orphaned,
    queued,
    recover,
    retry_allowed,
    retry_decided,
    start_next_step,
    step_failed,
    step_retrying,
    step_succeeded,
    update_step_info,
)
from engine.core.jobs import Job, Segment, Step, StepSpec
from engine.core.states import OPERATION_ALLOWED_FROM, BuildType, Operation, State
from engine.core.timefmt import format_utc

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


# -- user operations (SPEC §2.1) --------------------------------------------------------------


def resume(job: Job, now: int) -> Decision:
    """First ERROR/STOPPED step -> READY; job -> READY and scheduled again."""
    require(job, Operation.RESUME)
    steps = []
    step = job.first_step_in(State.ERROR, State.STOPPED)
    if step is not None:
        steps.append(move_step(step, State.READY, end_time=0, retries=0, reattach=False))
    new = move_job(with_steps(job, steps), State.READY, now, **reopen(job, now))
    return Decision(new, (Schedule(job.id),))


def discard(job: Job, now: int) -> Decision:
    """Every non-final step -> DISCARDED, a running step interrupted; job -> DISCARDED."""
    require(job, Operation.DISCARD)
    running = running_step(job)
    steps = [
        move_step(s, State.DISCARDED, end_time=now if s.state is State.RUNNING else s.end_time)
        for s in job.steps
        if not s.state.is_final
    ]
    new = move_job(with_steps(job, steps), State.DISCARDED, now, end_time=now)
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
        steps.append(move_step(step, State.STOPPED, end_time=now if step.start_time else 0))
    new = move_job(with_steps(job, steps), State.STOPPED, now, end_time=now)
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
        move_step(s, State.READY, start_time=0, end_time=0, wait_time=0, info={}, retries=0)
        for s in job.steps[sequence:]
    ]
    effects: list[Effect] = []
    new = with_steps(job, reset).evolve(last_modified=now)
    if job.state is State.SUCCEED:
        new = move_job(new, State.READY, now, **reopen(job, now))
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
    running = running_step(job)
    if running is not None:
        effects.append(Interrupt(job.id, running.sequence))
    steps = [
        move_step(s, State.READY, start_time=0, end_time=0, wait_time=0, retries=0)
        for s in job.steps
    ]
    new = move_job(
        with_steps(job, steps), State.READY, now, start_time=0, end_time=0, interrupt_time=0
    )
    effects.append(Schedule(job.id))
    return Decision(new, tuple(effects))


# -- submission -------------------------------------------------------------------------------

#: SPEC §2: base priority per build type (larger first), plus the request's priorityOffset.
BASE_PRIORITY: Mapping[str, int] = {BuildType.BUILD: 20, BuildType.MERGE: 25, BuildType.REFRESH: 20}


def job_name(build_type: str, cube: str, segment: Segment, submitted_ms: int) -> str:
    """``{TYPE} CUBE - {cube} - {segment name} - {yyyy-MM-dd HH:mm:ss} UTC``."""
    return f"{build_type} CUBE - {cube} - {segment.name} - {format_utc(submitted_ms)} UTC"


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


__all__ = [
    "BASE_PRIORITY",
    "ApplyStepAction",
    "Decision",
    "DeleteJob",
    "DropSegment",
    "Effect",
    "Interrupt",
    "RunStep",
    "Schedule",
    "discard",
    "drop",
    "job_name",
    "orphaned",
    "pause",
    "queued",
    "recover",
    "require",
    "restart",
    "resume",
    "retry_allowed",
    "retry_decided",
    "rollback",
    "start_next_step",
    "step_failed",
    "step_retrying",
    "step_succeeded",
    "submit",
    "update_step_info",
]
