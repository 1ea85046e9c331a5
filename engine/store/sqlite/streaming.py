"""A ``StreamingStore`` on SQLite (``db.py`` owns connections, group commit, migrations).

Tables come from ``schema/0002_streaming.sql``. A job is one row; ``save`` is one guarded
``INSERT``/``UPDATE`` of it, then the records, stats and segment changes of the same write,
all in the writer's transaction; a run's write (``write.lease``) first checks its lease.
"""

from __future__ import annotations

from typing import Any, Final

import aiosqlite

from engine.core.errors import ConcurrentModification, JobNotFound, LeaseLost
from engine.core.streaming import (
    BatchStats,
    StreamingJob,
    StreamingRecord,
    StreamingSegment,
)
from engine.store.ports import StreamingWrite
from engine.store.sqlite.base import SqliteStoreBase
from engine.store.sqlite.leases import LEASE_HELD, lease_row
from engine.store.streaming_rows import (
    decode_job,
    decode_record,
    decode_segment,
    decode_stats,
    job_row,
    record_row,
    segment_row,
    statements,
    stats_row,
    update_args,
)

SQL: Final = statements(lambda _: "?")
_NO_LIMIT: Final = -1


class SqliteStreamingStore(SqliteStoreBase):
    """Streaming jobs, records, stats and segments in a SQLite file."""

    # -- writes -------------------------------------------------------------------------------

    async def save(self, write: StreamingWrite) -> StreamingJob:
        """Compare-and-set the job, then its records, stats and segments, all or nothing."""
        job = write.job
        expected = write.expected_mvcc
        if expected is None:
            first: tuple[str, tuple[Any, ...]] = (SQL.insert_job, job_row(job))
        elif job.mvcc <= expected:
            raise ConcurrentModification(job.uuid, expected)
        else:
            first = (SQL.update_job, update_args(job, expected))
        extra = _extra_statements(write)
        removed = tuple(write.remove_segments)

        lease = write.lease

        async def op(conn: aiosqlite.Connection) -> StreamingJob:
            if lease is not None:  # a run's write: fenced before anything is written
                cursor = await conn.execute(LEASE_HELD, lease_row(lease))
                if await cursor.fetchone() is None:
                    raise LeaseLost(lease.job_id, lease.owner, lease.token)
            cursor = await conn.execute(*first)
            if cursor.rowcount != 1:
                raise ConcurrentModification(job.uuid, -1 if expected is None else expected)
            for segment_id in removed:
                # a lost race after the job's row changed: the writer rolls the batch back
                cursor = await conn.execute(SQL.delete_segment, (segment_id,))
                if cursor.rowcount != 1:
                    raise ConcurrentModification(segment_id, job.mvcc)
            for sql, rows in extra:
                await conn.executemany(sql, rows)
            return job

        return await self._db.write(op)

    # -- reads --------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> StreamingJob:
        """The stored job; ``JobNotFound`` when there is none."""
        rows = list(await self._db.reader.execute_fetchall(SQL.select_job, (job_id,)))
        if not rows:
            raise JobNotFound(job_id)
        return decode_job(rows[0])

    async def list_jobs(self) -> list[StreamingJob]:
        """Every job, by uuid."""
        rows = await self._db.reader.execute_fetchall(SQL.select_jobs)
        return [decode_job(row) for row in rows]

    async def records(self, job_id: str, limit: int | None = None) -> list[StreamingRecord]:
        """Newest first."""
        cap = _NO_LIMIT if limit is None else limit
        rows = await self._db.reader.execute_fetchall(SQL.select_records, (job_id, cap))
        return [decode_record(row) for row in rows]

    async def stats(self, job_id: str, since: int) -> list[BatchStats]:
        """Rows at or after ``since``, newest first."""
        rows = await self._db.reader.execute_fetchall(SQL.select_stats, (job_id, since))
        return [decode_stats(row) for row in rows]

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """By ``start_offset``."""
        rows = await self._db.reader.execute_fetchall(SQL.select_segments, (model_id,))
        return [decode_segment(row) for row in rows]


def _extra_statements(write: StreamingWrite) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements after the job's own (and the segment deletes), in order."""
    extra: list[tuple[str, list[tuple[Any, ...]]]] = []
    if write.records:
        extra.append((SQL.insert_record, [record_row(r) for r in write.records]))
    if write.stats:
        extra.append((SQL.insert_stats, [stats_row(s) for s in write.stats]))
    if write.add_segments:
        extra.append((SQL.insert_segment, [segment_row(s) for s in write.add_segments]))
    return extra
