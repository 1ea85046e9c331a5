"""The in-memory streaming store: the reference adapter of ``streaming_base.StreamingStore``."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from engine.core.errors import ConcurrentModification, JobNotFound
from engine.core.streaming import BatchStats, StreamingJob, StreamingRecord, StreamingSegment
from engine.store.streaming_base import StreamingWrite


class MemoryStreamingStore:
    """Streaming jobs, records, stats and segments in dicts; nothing survives the process."""

    def __init__(self) -> None:
        self._jobs: dict[str, StreamingJob] = {}
        self._records: defaultdict[str, list[StreamingRecord]] = defaultdict(list)
        self._stats: defaultdict[str, list[BatchStats]] = defaultdict(list)
        # by model, so that listing one model's segments does not scan every model's
        self._segments: defaultdict[str, dict[str, StreamingSegment]] = defaultdict(dict)
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
            del self._segments[self._segment_models.pop(segment_id)][segment_id]
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
        found = self._segments.get(model_id)
        if not found:
            return []
        return sorted(found.values(), key=_by_offset)

    def _add_segment(self, segment: StreamingSegment) -> None:
        # a segment saved again under another model moves (as the one-dict version did)
        previous = self._segment_models.get(segment.id)
        if previous is not None and previous != segment.model_id:
            del self._segments[previous][segment.id]
        self._segment_models[segment.id] = segment.model_id
        self._segments[segment.model_id][segment.id] = segment


def _by_offset(segment: StreamingSegment) -> tuple[int, int, str]:
    return segment.start_offset, segment.end_offset, segment.id


def _newest(row: StreamingRecord | BatchStats) -> tuple[int, int]:
    return row.create_time, row.id or 0
