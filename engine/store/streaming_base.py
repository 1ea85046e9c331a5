"""The streaming store port: jobs, records, stats and segments of SPEC §5.

Adapters: ``streaming_memory.py`` and ``streaming_sqlite.py``. Rules every adapter keeps (the
contract tests run against each one):

- ``save`` is a compare-and-set on ``StreamingJob.mvcc``: the stored job's mvcc must equal
  ``expected_mvcc`` (None = the job must not exist yet), and the new job's mvcc must be
  greater. A lost race raises ``ConcurrentModification`` and writes nothing of that call.
- Everything passed to one ``save`` (job, records, stats, segments added and removed) is
  written atomically. Removing a segment that is not there is a lost race too.
- Records and stats get increasing ids in the order they are written. Lists come newest first
  (``create_time`` then id, descending); segments by ``start_offset``.
- Filtering, sorting and paging of the job list happen in one pure function
  (``engine.streaming_query``) over ``list_jobs()``, so every adapter lists the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.core.streaming import BatchStats, StreamingJob, StreamingRecord, StreamingSegment


@dataclass(frozen=True, slots=True)
class StreamingWrite:
    """One atomic write: a job (compare-and-set on its mvcc) and what goes with it."""

    job: StreamingJob
    expected_mvcc: int | None  #: None: the job is new
    records: Sequence[StreamingRecord] = ()
    stats: Sequence[BatchStats] = ()
    add_segments: Sequence[StreamingSegment] = ()
    remove_segments: Sequence[str] = ()  #: segment ids


class StreamingStore(Protocol):
    """Persistence of streaming jobs, their records and stats, and streaming segments."""

    async def open(self) -> None:
        """Connect and migrate; idempotent."""

    async def close(self) -> None:
        """Flush pending writes and release connections."""

    async def save(self, write: StreamingWrite) -> StreamingJob:
        """Write atomically with compare-and-set on mvcc; return the stored job."""

    async def get_job(self, job_id: str) -> StreamingJob:
        """The stored job; ``JobNotFound`` when there is none."""

    async def list_jobs(self) -> list[StreamingJob]:
        """Every streaming job, by uuid."""

    async def records(self, job_id: str, limit: int | None = None) -> list[StreamingRecord]:
        """The job's records, newest first (at most ``limit``)."""

    async def stats(self, job_id: str, since: int) -> list[BatchStats]:
        """The job's stats rows created at or after ``since`` (epoch ms), newest first."""

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """The model's streaming segments, by ``start_offset``."""
