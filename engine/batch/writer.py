"""Applies pure decisions to stored jobs: the one road from ``core.operations`` to the store.

``apply`` holds the job's lock, takes the decision on the job, writes the result with
compare-and-set on the job's version (together with the outputs, segment changes or deletion
the decision's effects imply, atomically and shielded from cancellation), and only then
performs the remaining effects. Every effect is carried out in one place, ``_plan``'s ``match``.
When the write loses a race, the job is read again and the decision is taken again on the new
state (``engine.store.commit``): the loser of two racing operations sees the winner's state,
usually as ``OperationNotAllowed``.

A runner passes its ``lease``: the write is fenced (``LeaseLost`` when another node owns the job
now; nothing is written and nothing is retried). Stores with leases of their own check it
in the write's transaction; for any other store ``verify`` checks it just before.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, assert_never

from engine.batch.output import LiveOutput
from engine.clock import Clock
from engine.core import operations as ops
from engine.core.jobs import Job, Step
from engine.core.notifications import JobEnd, job_end
from engine.core.segments import land_segment, segment_to_drop
from engine.events import EventBus
from engine.store.commit import JobLocks, WriteRetry, retry_lost_races, shielded
from engine.store.ports import JobStore, JobWrite, Lease, OutputWrite, SegmentChange

Decide = Callable[[Job], ops.Decision]
RECENT_JOBS = 4096  #: newest stored versions kept in memory for reads (GET /jobs/{id})


class EffectHandler(Protocol):
    """What the scheduler does for effects."""

    def schedule(self, job: Job) -> None:
        """Queue a READY job."""

    def interrupt(self, job_id: str) -> None:
        """Stop the job's running step."""

    def forget(self, job_id: str) -> None:
        """Take a job that is no longer READY (or is deleted) out of the queue."""


@dataclass(slots=True)
class _Plan:
    """What one decision's effects ask for: the first three go into the write, the rest after."""

    segments: SegmentChange | None = None
    outputs: tuple[OutputWrite, ...] = ()
    notification: JobEnd | None = None  #: the job ended: its outbox row (``outbox`` on)
    delete: bool = False  #: DeleteJob: the write is a deletion
    interrupt: bool = False
    schedule: bool = False


class JobWriter:
    """Decision -> locked, shielded, version-checked write -> effects; lost races re-decided."""

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        events: EventBus,
        verify: Callable[[Lease], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._locks = JobLocks(checkpoint=False)  # see JobLocks: a cancelled runner records
        self.handler: EffectHandler | None = None
        #: how the engine's own writers (runners) ride out refused writes; ``apply`` itself
        #: never retries them: a user's request gets the error at once
        self.retry = WriteRetry()
        #: called with the seconds each job write took (the engine's metrics)
        self.on_write: Callable[[float], None] | None = None
        #: write job-end notifications into the outbox (a notifier URL is configured)
        self.outbox = False
        #: told of every job end once its write is durable (``engine.ops``: hooks, sender)
        self.on_job_end: Callable[[JobEnd], None] | None = None
        #: None: the store fences leased writes itself; else checks a lease before its write
        self._verify = verify
        # Every write of a job passes here, and one engine owns its store (SQLite is
        # single-node), so the newest version of a recently written job is known without a read.
        self._recent: OrderedDict[str, Job] = OrderedDict()

    def cached(self, job_id: str) -> Job | None:
        """The newest stored version of a recently written job, if this writer knows it."""
        return self._recent.get(job_id)

    def forget(self, job_id: str) -> None:
        """The job was deleted."""
        self._recent.pop(job_id, None)

    def _remember(self, job: Job) -> None:
        known = self._recent.get(job.id)
        if known is not None and known.version > job.version:
            return  # a newer write already landed
        self._recent[job.id] = job
        self._recent.move_to_end(job.id)
        if len(self._recent) > RECENT_JOBS:
            self._recent.popitem(last=False)

    async def create(self, decision: ops.Decision) -> Job:
        """Store a new job (and its NEW segment) and perform the submit's effects."""
        job = decision.job
        new = JobWrite(job, None, segments=SegmentChange(upsert=(job.segment,)))
        stored = await shielded(lambda: self._save(new))
        self._after(None, stored, await self._plan(job, decision.effects))
        return stored

    async def apply(
        self,
        job: Job,
        decide: Decide,
        outputs: Sequence[tuple[Step, LiveOutput]] = (),
        lease: Lease | None = None,
    ) -> tuple[Job, tuple[ops.Effect, ...]]:
        """Take the decision on ``job`` (re-read on a lost race), store it, do its effects.

        A decision with ``DeleteJob`` deletes the job; the job as it was is returned.
        """
        texts = tuple(OutputWrite(s.id, s.attempts, out.text()) for s, out in outputs if out)

        async def attempt(current: Job) -> tuple[Job, tuple[ops.Effect, ...]]:
            decision = decide(current)
            plan = await self._plan(current, decision.effects)
            plan.outputs = texts
            end = job_end(current, decision.job)
            if end is not None and self.outbox:
                plan.notification = end
            stored = await shielded(lambda: self._write(current, decision.job, plan, lease))
            self._after(current, stored, plan)
            if end is not None and self.on_job_end is not None:
                self.on_job_end(end)
            return stored, decision.effects

        async with self._locks.hold(job.id):
            return await retry_lost_races(job.id, job, attempt, self._store.get_job)

    async def save_output(
        self, job_id: str, step_id: str, attempt: int, text: str, lease: Lease | None = None
    ) -> None:
        """Store the output of an interrupted attempt (the job itself is unchanged).

        Raises ``JobNotFound`` when the job is gone, ``ConcurrentModification`` when the write
        keeps losing races (never gives up silently).
        """

        async def write(current: Job) -> None:
            plan = _Plan(outputs=(OutputWrite(step_id, attempt, text),))
            self._remember(await shielded(lambda: self._write(current, current, plan, lease)))

        async with self._locks.hold(job_id):
            job = await self._store.get_job(job_id)
            await retry_lost_races(job_id, job, write, self._store.get_job)

    async def _plan(self, old: Job, effects: Sequence[ops.Effect]) -> _Plan:
        """Every effect is carried out from here: into the write, or after it."""
        plan = _Plan()
        for effect in effects:
            match effect:
                case ops.ApplyStepAction(action="update_cube_info"):
                    plan.segments = await self._land_segment(old)
                case ops.ApplyStepAction():
                    pass  # no other metadata action touches the store
                case ops.DropSegment():
                    plan.segments = await self._drop_segment(old)
                case ops.DeleteJob():
                    plan.delete = True
                case ops.Interrupt():
                    plan.interrupt = True
                case ops.Schedule():
                    plan.schedule = True
                case ops.RunStep():
                    pass  # the scheduler's runner, which holds the job's slot, runs it
                case _:
                    assert_never(effect)
        return plan

    async def _write(self, old: Job, new: Job, plan: _Plan, lease: Lease | None = None) -> Job:
        if plan.delete:
            await self._store.delete_job(old.id, old.version)
            return old
        if lease is not None and self._verify is not None:
            self._verify(lease)  # a store without leases of its own: checked just before
            lease = None
        write = JobWrite(new, old.version, plan.segments, plan.outputs, base=old,
                         notification=plan.notification, lease=lease)  # fmt: skip
        return await self._save(write)

    def _after(self, old: Job | None, stored: Job, plan: _Plan) -> None:
        if plan.delete:
            self.forget(stored.id)
        else:
            self._remember(stored)
            self._events.job_changed(old, stored, self._clock.now_ms())
        handler = self.handler
        if handler is None:
            return
        if plan.delete or not ops.queued(stored):
            handler.forget(stored.id)
        if plan.interrupt:
            handler.interrupt(stored.id)
        if plan.schedule:
            handler.schedule(stored)

    async def _land_segment(self, job: Job) -> SegmentChange:
        existing = await self._store.segments(job.cube)
        landed = land_segment(job.segment, existing)
        kept = {s.uuid for s in landed}
        gone = tuple(s.uuid for s in existing if s.uuid not in kept)
        return SegmentChange(upsert=[s for s in landed if s.uuid == job.segment.uuid], delete=gone)

    async def _drop_segment(self, job: Job) -> SegmentChange | None:
        mine = segment_to_drop(job.segment, await self._store.segments(job.cube))
        return SegmentChange(delete=(mine.uuid,)) if mine is not None else None

    async def _save(self, write: JobWrite) -> Job:
        started = time.perf_counter()
        stored = await self._store.save_job(write)
        if self.on_write is not None:
            self.on_write(time.perf_counter() - started)
        return stored
