"""Applies pure decisions to stored jobs: the one road from ``core.operations`` to the store.

``apply`` runs a decision on the job, writes the result with compare-and-set on the job's
version (together with the outputs and segment changes the decision implies, atomically),
and only then performs the effects. When the write loses a race, the job is read again and
the decision is taken again on the new state: the loser of two racing operations sees the
winner's state, usually as ``OperationNotAllowed``.

A runner passes its ``lease``: the write is fenced (``LeaseLost`` when another node owns the job
now; nothing is written and nothing else is retried). Stores with leases of their own check it
in the write's transaction; for any other store ``verify`` checks it just before.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from engine.batch.output import LiveOutput
from engine.clock import Clock
from engine.core import operations as ops
from engine.core.errors import ConcurrentModification
from engine.core.jobs import Job, Step
from engine.core.notifications import JobEnd, job_end
from engine.core.segments import land_segment
from engine.core.states import State
from engine.events import EventBus
from engine.store.ports import JobStore, JobWrite, Lease, OutputWrite, SegmentChange

Decide = Callable[[Job], ops.Decision]
MAX_RACES = 50  #: a decision re-taken this often in a row means something is badly wrong
RECENT_JOBS = 4096  #: newest stored versions kept in memory for reads (GET /jobs/{id})


class EffectHandler(Protocol):
    """What the scheduler does for effects."""

    def schedule(self, job: Job) -> None:
        """Queue a READY job."""

    def interrupt(self, job_id: str) -> None:
        """Stop the job's running step."""

    def forget(self, job_id: str) -> None:
        """Take a job that is no longer READY out of the queue."""


class JobWriter:
    """Decision -> durable write -> effects, with retry on lost races."""

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
        self.handler: EffectHandler | None = None
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
        stored = await self._store.save_job(
            JobWrite(job, None, segments=SegmentChange(upsert=(job.segment,)))
        )
        self._remember(stored)
        self._events.job_changed(None, stored, self._clock.now_ms())
        self._perform(stored, decision.effects)
        return stored

    async def apply(
        self,
        job: Job,
        decide: Decide,
        outputs: Sequence[tuple[Step, LiveOutput]] = (),
        lease: Lease | None = None,
    ) -> tuple[Job, tuple[ops.Effect, ...]]:
        """Take the decision on ``job`` (re-read on a lost race), store it, do its effects."""
        texts = [OutputWrite(step.id, step.attempts, out.text()) for step, out in outputs if out]
        for _ in range(MAX_RACES):
            decision = decide(job)
            write = await self._write_for(job, decision, texts)
            end = job_end(job, decision.job)
            if end is not None and self.outbox:
                write = dataclasses.replace(write, notification=end)
            try:
                stored = await self._store.save_job(self._fenced(write, lease))
            except ConcurrentModification:
                job = await self._store.get_job(job.id)
                continue
            self._remember(stored)
            self._events.job_changed(job, stored, self._clock.now_ms())
            self._perform(stored, decision.effects)
            if end is not None and self.on_job_end is not None:
                self.on_job_end(end)
            return stored, decision.effects
        raise ConcurrentModification(job.id, job.version)

    async def save_output(
        self, job_id: str, step_id: str, attempt: int, text: str, lease: Lease | None = None
    ) -> None:
        """Store the output of an interrupted attempt (the job itself is unchanged)."""
        for _ in range(MAX_RACES):
            job = await self._store.get_job(job_id)
            output = OutputWrite(step_id, attempt, text)
            try:
                stored = await self._store.save_job(
                    self._fenced(JobWrite(job, job.version, outputs=(output,), base=job), lease)
                )
                self._remember(stored)
                return
            except ConcurrentModification:
                continue

    def _fenced(self, write: JobWrite, lease: Lease | None) -> JobWrite:
        if lease is None:
            return write
        if self._verify is not None:
            self._verify(lease)
            return write
        return dataclasses.replace(write, lease=lease)

    async def _write_for(
        self, old: Job, decision: ops.Decision, outputs: Sequence[OutputWrite]
    ) -> JobWrite:
        segments: SegmentChange | None = None
        for effect in decision.effects:
            if isinstance(effect, ops.ApplyStepAction) and effect.action == "update_cube_info":
                segments = await self._land_segment(old)
            elif isinstance(effect, ops.DropSegment):
                segments = await self._drop_segment(old)
        return JobWrite(decision.job, old.version, segments, tuple(outputs), base=old)

    async def _land_segment(self, job: Job) -> SegmentChange:
        existing = await self._store.segments(job.cube)
        landed = land_segment(job.segment, existing)
        kept = {s.uuid for s in landed}
        gone = tuple(s.uuid for s in existing if s.uuid not in kept)
        return SegmentChange(upsert=[s for s in landed if s.uuid == job.segment.uuid], delete=gone)

    async def _drop_segment(self, job: Job) -> SegmentChange | None:
        existing = await self._store.segments(job.cube)
        mine = next((s for s in existing if s.uuid == job.segment.uuid), None)
        if mine is None or mine.status != "NEW":
            return None  # already landed by "Update Cube Info": it stays
        return SegmentChange(delete=(mine.uuid,))

    def _perform(self, job: Job, effects: Sequence[ops.Effect]) -> None:
        handler = self.handler
        if handler is None:
            return
        if job.state is not State.READY:
            handler.forget(job.id)
        for effect in effects:
            if isinstance(effect, ops.Interrupt):
                handler.interrupt(effect.job_id)
            elif isinstance(effect, ops.Schedule):
                handler.schedule(job)
