"""Stores for runs on a ``VirtualClock``: every call guarded, every write observed.

The in-memory stores never leave the event loop, so their calls are atomic and need no
guard. A SQLite store works on a thread: while a call is in flight the loop looks idle, and
the moment its caller resumes depends on the thread's speed. ``StoreGuard`` therefore
serialises such calls (one at a time), marks each one ``busy`` on the clock (time stands still
meanwhile), and before the caller resumes waits until every other task is blocked again
(``VirtualClock.settle``): the caller always continues from the same global state, and the
run stays deterministic however fast the disk is.

The wrappers also tell an observer about every successful write, in order, with the stored
record: the event log of a simulation is made from them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from engine.clock.virtual import VirtualClock
from engine.core.jobs import Job, Segment
from engine.core.schedules import Schedule
from engine.core.states import State
from engine.core.streaming import BatchStats, StreamingJob, StreamingRecord, StreamingSegment
from engine.store.ports import (
    JobFilter,
    JobStore,
    JobWrite,
    OutboxEntry,
    StreamingStore,
    StreamingWrite,
)

T = TypeVar("T")


class JobObserver(Protocol):
    """Told about every stored batch job write."""

    def job_saved(self, job: Job) -> None:
        """``job`` (as stored) was written."""

    def job_deleted(self, job_id: str) -> None:
        """The job was dropped."""

    def job_swept(self, job_id: str) -> None:
        """The retention sweep deleted the job."""


class StreamingObserver(Protocol):
    """Told about every stored streaming write."""

    def streaming_saved(self, write: StreamingWrite, stored: StreamingJob) -> None:
        """``write`` was stored as ``stored``."""


class StoreGuard:
    """How the stores of one run meet the clock (shared by all of them)."""

    def __init__(self, clock: VirtualClock, *, threaded: bool) -> None:
        self.clock = clock
        self.threaded = threaded  #: calls leave the loop (SQLite): serialise and settle them
        self._lock = asyncio.Lock()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """``await fn(*args)``, made deterministic when the store is threaded."""
        if not self.threaded:
            return await fn(*args)
        async with self._lock:
            with self.clock.busy():
                try:
                    return await fn(*args)
                finally:
                    await self.clock.settle()


class _Guarded:
    """What both guarded stores share: the inner store, the guard, and opening and closing."""

    def __init__(self, inner: JobStore | StreamingStore, guard: StoreGuard) -> None:
        self._inner_store = inner
        self.guard = guard

    async def open(self) -> None:
        """Open the inner store."""
        await self.guard.call(self._inner_store.open)

    async def close(self) -> None:
        """Close the inner store."""
        await self.guard.call(self._inner_store.close)


class GuardedJobStore(_Guarded):
    """A ``JobStore`` whose calls go through a ``StoreGuard`` and whose writes are observed."""

    def __init__(
        self, inner: JobStore, guard: StoreGuard, observer: JobObserver | None = None
    ) -> None:
        super().__init__(inner, guard)
        self.inner = inner
        self.observer = observer

    async def save_job(self, write: JobWrite) -> Job:
        """Store the write; the observer sees the stored job."""
        stored = await self.guard.call(self.inner.save_job, write)
        if self.observer is not None:
            self.observer.job_saved(stored)
        return stored

    async def delete_job(self, job_id: str, expected_version: int) -> None:
        """Delete the job; the observer is told."""
        await self.guard.call(self.inner.delete_job, job_id, expected_version)
        if self.observer is not None:
            self.observer.job_deleted(job_id)

    async def get_job(self, job_id: str) -> Job:
        """The stored job."""
        return await self.guard.call(self.inner.get_job, job_id)

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching ``query``."""
        return await self.guard.call(self.inner.list_jobs, query)

    async def count_jobs(self, query: JobFilter) -> int:
        """How many jobs match ``query``."""
        return await self.guard.call(self.inner.count_jobs, query)

    async def count_by_state(self) -> dict[State, int]:
        """Jobs per state."""
        return await self.guard.call(self.inner.count_by_state)

    async def jobs_in_states(self, states: frozenset[State]) -> list[Job]:
        """Jobs in ``states``, oldest first."""
        return await self.guard.call(self.inner.jobs_in_states, states)

    async def read_output(self, step_id: str, attempt: int) -> str | None:
        """One attempt's stored output."""
        return await self.guard.call(self.inner.read_output, step_id, attempt)

    async def output_attempts(self, step_id: str) -> list[int]:
        """Attempts with stored output."""
        return await self.guard.call(self.inner.output_attempts, step_id)

    async def segments(self, cube: str) -> list[Segment]:
        """The cube's segments."""
        return await self.guard.call(self.inner.segments, cube)

    async def delete_segments(self, uuids: Sequence[str]) -> None:
        """Delete segments."""
        await self.guard.call(self.inner.delete_segments, uuids)

    async def claim_notifications(
        self, now: int, lease_until: int, limit: int
    ) -> list[OutboxEntry]:
        """Claim due outbox entries."""
        return await self.guard.call(self.inner.claim_notifications, now, lease_until, limit)

    async def settle_notification(
        self, event_id: str, attempts: int, next_attempt: int | None, error: str | None
    ) -> None:
        """Record an attempt's outcome."""
        await self.guard.call(
            self.inner.settle_notification, event_id, attempts, next_attempt, error
        )

    async def sweep_jobs(self, ended_before: int, limit: int) -> list[str]:
        """One retention batch; the observer is told of every deleted job."""
        gone = await self.guard.call(self.inner.sweep_jobs, ended_before, limit)
        if self.observer is not None:
            for job_id in gone:
                self.observer.job_swept(job_id)
        return gone

    async def save_schedule(self, schedule: Schedule, expected_version: int | None) -> Schedule:
        """Store a schedule (compare-and-set)."""
        return await self.guard.call(self.inner.save_schedule, schedule, expected_version)

    async def get_schedule(self, name: str) -> Schedule:
        """The stored schedule."""
        return await self.guard.call(self.inner.get_schedule, name)

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule."""
        return await self.guard.call(self.inner.list_schedules)

    async def delete_schedule(self, name: str) -> None:
        """Delete a schedule."""
        await self.guard.call(self.inner.delete_schedule, name)


class GuardedStreamingStore(_Guarded):
    """A ``StreamingStore`` whose calls go through a ``StoreGuard``, writes observed."""

    def __init__(
        self,
        inner: StreamingStore,
        guard: StoreGuard,
        observer: StreamingObserver | None = None,
    ) -> None:
        super().__init__(inner, guard)
        self.inner = inner
        self.observer = observer

    async def save(self, write: StreamingWrite) -> StreamingJob:
        """Store the write; the observer sees it with the stored job."""
        stored = await self.guard.call(self.inner.save, write)
        if self.observer is not None:
            self.observer.streaming_saved(write, stored)
        return stored

    async def get_job(self, job_id: str) -> StreamingJob:
        """The stored job."""
        return await self.guard.call(self.inner.get_job, job_id)

    async def list_jobs(self) -> list[StreamingJob]:
        """Every streaming job."""
        return await self.guard.call(self.inner.list_jobs)

    async def records(self, job_id: str, limit: int | None = None) -> list[StreamingRecord]:
        """The job's records, newest first."""
        return await self.guard.call(self.inner.records, job_id, limit)

    async def stats(self, job_id: str, since: int) -> list[BatchStats]:
        """The job's stats rows since ``since``."""
        return await self.guard.call(self.inner.stats, job_id, since)

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """The model's streaming segments."""
        return await self.guard.call(self.inner.segments, model_id)
