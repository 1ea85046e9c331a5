"""Stores in process memory: the semantics of the SQLite stores, without a file.

Records are frozen, so they are kept as given, never copied. No call awaits anything: each one
runs to its end without yielding to the event loop, which makes every write atomic and keeps
simulations on a virtual clock deterministic (the store never leaves the loop).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections import Counter, defaultdict
from collections.abc import Sequence

from engine.core.errors import ConcurrentModification, JobNotFound, ScheduleNotFound
from engine.core.jobs import Job, Segment
from engine.core.schedules import Schedule
from engine.core.states import SWEPT_STATES, State
from engine.core.streaming import BatchStats, StreamingJob, StreamingRecord, StreamingSegment
from engine.store.leases import LocalLeases
from engine.store.ports import (
    DEFAULT_MAX_OUTPUT_BYTES,
    JobFilter,
    JobWrite,
    OutboxEntry,
    StreamingWrite,
)
from engine.store.rules import check_write, fold, prepare_output


class MemoryJobStore:
    """Jobs, outputs and segments in dicts; nothing survives the process."""

    def __init__(self, *, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        if max_output_bytes <= 0:
            raise ValueError(f"max_output_bytes must be positive: {max_output_bytes}")
        self.max_output_bytes = max_output_bytes
        self._jobs: dict[str, Job] = {}
        self._outputs: dict[str, dict[int, str]] = {}  #: step id -> attempt -> text
        self._segments: dict[str, Segment] = {}  #: by uuid
        #: by event id; ``next_attempt`` None = given up (kept for inspection, never due)
        self._outbox: dict[str, tuple[OutboxEntry, int | None, str | None]] = {}
        self._schedules: dict[str, Schedule] = {}
        self.leases = LocalLeases(self)  #: the lease store of these jobs (fences ``save_job``)

    async def open(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release; the data stays with the object."""

    async def save_job(self, write: JobWrite) -> Job:
        """Compare-and-set the job and apply its segment and output changes, all or nothing."""
        check_write(write)
        if write.lease is not None:
            self.leases.verify(write.lease)
        job = write.job
        current = self._jobs.get(job.id)
        if write.expected_version is None:
            if current is not None:
                raise ConcurrentModification(job.id, job.version)
            version = job.version + 1
        else:
            if current is None or current.version != write.expected_version:
                raise ConcurrentModification(job.id, write.expected_version)
            version = write.expected_version + 1
        # everything that can fail is done before the first change
        outputs = [
            (o.step_id, o.attempt, prepare_output(o.text, self.max_output_bytes))
            for o in write.outputs
        ]
        stored = job.evolve(version=version)
        self._jobs[job.id] = stored
        for step_id in write.clear_outputs:
            self._outputs.pop(step_id, None)
        for step_id, attempt, text in outputs:
            self._outputs.setdefault(step_id, {})[attempt] = text
        if write.segments is not None:
            for segment in write.segments.upsert:
                self._segments[segment.uuid] = segment
            for uuid in write.segments.delete:
                self._segments.pop(uuid, None)
        end = write.notification
        if end is not None and end.event_id not in self._outbox:
            entry = OutboxEntry(
                end.event_id, end.job_id, json.dumps(end.payload()), 0, end.end_time
            )
            self._outbox[end.event_id] = (entry, end.end_time, None)
        return stored

    async def delete_job(self, job_id: str, expected_version: int) -> None:
        """Delete the job and its outputs (compare-and-set)."""
        current = self._jobs.get(job_id)
        if current is None:
            raise JobNotFound(job_id)
        if current.version != expected_version:
            raise ConcurrentModification(job_id, expected_version)
        del self._jobs[job_id]
        self.leases.forget_job(job_id)
        for step in current.steps:
            self._outputs.pop(step.id, None)

    async def get_job(self, job_id: str) -> Job:
        """The stored job; ``JobNotFound`` when there is none."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(job_id) from None

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching ``query``, newest ``last_modified`` first (then by id, descending)."""
        found = sorted(self._matching(query), key=_newest_first, reverse=True)
        offset = max(0, query.offset)  # negative paging means none, as in SQL
        end = None if query.limit is None else offset + max(0, query.limit)
        return found[offset:end]

    async def count_jobs(self, query: JobFilter) -> int:
        """How many jobs match ``query`` (paging ignored)."""
        return sum(1 for _ in self._matching(query))

    async def count_by_state(self) -> dict[State, int]:
        """Number of jobs in each state that has any."""
        return dict(Counter(job.state for job in self._jobs.values()))

    async def jobs_in_states(self, states: frozenset[State]) -> list[Job]:
        """Every job in one of ``states``, oldest first (create time, then id)."""
        found = [job for job in self._jobs.values() if job.state in states]
        return sorted(found, key=lambda job: (job.create_time, job.id))

    async def read_output(self, step_id: str, attempt: int) -> str | None:
        """The stored output of one attempt, None when nothing was stored."""
        return self._outputs.get(step_id, {}).get(attempt)

    async def output_attempts(self, step_id: str) -> list[int]:
        """Attempt numbers that have stored output, ascending."""
        return sorted(self._outputs.get(step_id, {}))

    async def segments(self, cube: str) -> list[Segment]:
        """The cube's segments, by range start (then end, then uuid)."""
        found = [s for s in self._segments.values() if s.cube == cube]
        return sorted(found, key=lambda s: (s.start, s.end, s.uuid))

    async def delete_segments(self, uuids: Sequence[str]) -> None:
        """Delete these segments."""
        for uuid in uuids:
            self._segments.pop(uuid, None)

    async def claim_notifications(
        self, now: int, lease_until: int, limit: int
    ) -> list[OutboxEntry]:
        """Due entries, earliest first, their next attempt moved to ``lease_until``."""
        due = sorted(
            (when, entry.event_id)
            for entry, when, _ in self._outbox.values()
            if when is not None and when <= now
        )[: max(0, limit)]
        claimed = []
        for _, event_id in due:
            entry, _, error = self._outbox[event_id]
            entry = dataclasses.replace(entry, next_attempt=lease_until)
            self._outbox[event_id] = (entry, lease_until, error)
            claimed.append(entry)
        return claimed

    async def settle_notification(
        self, event_id: str, attempts: int, next_attempt: int | None, error: str | None
    ) -> None:
        """Delivered (gone), to be retried, or given up."""
        found = self._outbox.get(event_id)
        if found is None:
            return
        if error is None:
            del self._outbox[event_id]
            return
        entry = dataclasses.replace(found[0], attempts=attempts, next_attempt=next_attempt or 0)
        self._outbox[event_id] = (entry, next_attempt, error)

    async def sweep_jobs(self, ended_before: int, limit: int) -> list[str]:
        """Delete the oldest swept-state jobs changed before ``ended_before``."""
        old = sorted(
            (job.last_modified, job.id)
            for job in self._jobs.values()
            if job.state in SWEPT_STATES and job.last_modified < ended_before
        )[: max(0, limit)]
        for _, job_id in old:
            job = self._jobs.pop(job_id)
            for step in job.steps:
                self._outputs.pop(step.id, None)
        return [job_id for _, job_id in old]

    async def save_schedule(self, schedule: Schedule, expected_version: int | None) -> Schedule:
        """Compare-and-set on the schedule's version."""
        current = self._schedules.get(schedule.name)
        if (None if current is None else current.version) != expected_version:
            raise ConcurrentModification(schedule.name, expected_version or 0)
        stored = schedule.evolve(version=(expected_version or 0) + 1)
        self._schedules[schedule.name] = stored
        return stored

    async def get_schedule(self, name: str) -> Schedule:
        """The stored schedule."""
        try:
            return self._schedules[name]
        except KeyError:
            raise ScheduleNotFound(name) from None

    async def list_schedules(self) -> list[Schedule]:
        """By name."""
        return [self._schedules[name] for name in sorted(self._schedules)]

    async def delete_schedule(self, name: str) -> None:
        """Delete it; its jobs stay."""
        if self._schedules.pop(name, None) is None:
            raise ScheduleNotFound(name)

    def _matching(self, query: JobFilter) -> list[Job]:
        cube = fold(query.cube) if query.cube is not None else None
        return [
            job
            for job in self._jobs.values()
            if (cube is None or cube in fold(job.cube))
            and (query.project is None or job.project == query.project)
            and (query.states is None or job.state in query.states)
            and (query.modified_since is None or job.last_modified >= query.modified_since)
        ]


def _newest_first(job: Job) -> tuple[int, str]:
    return job.last_modified, job.id


class MemoryStreamingStore:
    """Streaming jobs, records, stats and segments in dicts; nothing survives the process."""

    def __init__(self) -> None:
        self._jobs: dict[str, StreamingJob] = {}
        self._records: defaultdict[str, list[StreamingRecord]] = defaultdict(list)
        self._stats: defaultdict[str, list[BatchStats]] = defaultdict(list)
        # by model, so that listing one model's segments does not scan every model's, and kept
        # in offset order, so that listing them (every merge pass) does not sort them again
        self._segments: defaultdict[str, dict[str, StreamingSegment]] = defaultdict(dict)
        self._ordered: defaultdict[str, list[StreamingSegment]] = defaultdict(list)
        self._segment_models: dict[str, str] = {}  #: segment id → model id
        self._next_record_id = 1
        self._next_stats_id = 1

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""

    async def save(self, write: StreamingWrite) -> StreamingJob:
        """Compare-and-set the job, then add what goes with it (all or nothing)."""
        job = write.job
        stored = self._jobs.get(job.uuid)
        current = None if stored is None else stored.mvcc
        if current != write.expected_mvcc or (current is not None and job.mvcc <= current):
            raise ConcurrentModification(job.uuid, write.expected_mvcc or -1)
        missing = [s for s in write.remove_segments if s not in self._segment_models]
        if missing:
            raise ConcurrentModification(missing[0], job.mvcc)
        # checks done: from here on nothing can fail, so the write is all or nothing
        self._jobs[job.uuid] = job
        for record in write.records:
            self._records[record.job_id].append(
                dataclasses.replace(record, id=self._next_record_id)
            )
            self._next_record_id += 1
        for row in write.stats:
            self._stats[row.job_id].append(dataclasses.replace(row, id=self._next_stats_id))
            self._next_stats_id += 1
        for segment_id in write.remove_segments:
            self._drop_segment(self._segment_models.pop(segment_id), segment_id)
        for segment in write.add_segments:
            self._add_segment(segment)
        return job

    async def get_job(self, job_id: str) -> StreamingJob:
        """The stored job; ``JobNotFound`` when there is none."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(job_id) from None

    async def list_jobs(self) -> list[StreamingJob]:
        """Every job, by uuid."""
        return [self._jobs[k] for k in sorted(self._jobs)]

    async def records(self, job_id: str, limit: int | None = None) -> list[StreamingRecord]:
        """Newest first."""
        rows = sorted(self._records.get(job_id, ()), key=_newest, reverse=True)
        return rows if limit is None else rows[:limit]

    async def stats(self, job_id: str, since: int) -> list[BatchStats]:
        """Rows at or after ``since``, newest first."""
        rows = [r for r in self._stats.get(job_id, ()) if r.create_time >= since]
        return sorted(rows, key=_newest, reverse=True)

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """By ``start_offset``."""
        return list(self._ordered.get(model_id, ()))

    def _add_segment(self, segment: StreamingSegment) -> None:
        # a segment saved again replaces the stored one, under another model it moves
        previous = self._segment_models.get(segment.id)
        if previous is not None:
            self._drop_segment(previous, segment.id)
        self._segment_models[segment.id] = segment.model_id
        self._segments[segment.model_id][segment.id] = segment
        bisect.insort(self._ordered[segment.model_id], segment, key=_by_offset)

    def _drop_segment(self, model_id: str, segment_id: str) -> None:
        segment = self._segments[model_id].pop(segment_id)
        ordered = self._ordered[model_id]
        del ordered[bisect.bisect_left(ordered, _by_offset(segment), key=_by_offset)]


def _by_offset(segment: StreamingSegment) -> tuple[int, int, str]:
    return segment.start_offset, segment.end_offset, segment.id


def _newest(row: StreamingRecord | BatchStats) -> tuple[int, int]:
    return row.create_time, row.id or 0
