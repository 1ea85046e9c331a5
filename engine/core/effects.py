"""What a batch decision returns: the new job and its effects, and the moves every decision uses.

``operations`` (user operations) and ``execution`` (the scheduler's events) build on these; the
state table they ask is ``states.TRANSITIONS``, and nothing here re-encodes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.core.errors import IllegalTransition
from engine.core.jobs import Job, Step
from engine.core.states import State, can_transition

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


# -- moves: every state change goes through these ------------------------------------------


def move_job(job: Job, new: State, now: int, **changes: object) -> Job:
    """The job in state ``new`` (``IllegalTransition`` unless the table allows it)."""
    if job.state is not new and not can_transition(job.state, new):
        raise IllegalTransition(f"job {job.id}", job.state, new)
    return job.evolve(state=new, last_modified=now, **changes)


def move_step(step: Step, new: State, **changes: object) -> Step:
    """The step in state ``new`` (``IllegalTransition`` unless the table allows it)."""
    if step.state is not new and not can_transition(step.state, new):
        raise IllegalTransition(f"step {step.id}", step.state, new)
    return step.evolve(state=new, **changes)


def running_step(job: Job) -> Step | None:
    """The job's RUNNING step, if any."""
    return job.first_step_in(State.RUNNING)


def with_steps(job: Job, steps: Iterable[Step]) -> Job:
    """The job with ``steps`` replacing those of the same sequence numbers."""
    replaced = {s.sequence: s for s in steps}
    return job.evolve(steps=tuple(replaced.get(s.sequence, s) for s in job.steps))


def reopen(job: Job, now: int) -> dict[str, int]:
    """Fields for a job that leaves an end state to run again: downtime is not duration."""
    if not job.end_time:
        return {}
    return {"interrupt_time": job.interrupt_time + max(0, now - job.end_time), "end_time": 0}
