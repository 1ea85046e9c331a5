"""A ``StreamingStore`` on PostgreSQL: the tables of ``schema/0002_streaming.sql``.

``save`` is one transaction: the guarded ``INSERT``/``UPDATE ... WHERE mvcc = $n`` of the job,
the segments it removes (each must still be there), then its records, stats and new segments.
"""

from __future__ import annotations

from typing import Final

from engine.core.errors import ConcurrentModification, JobNotFound
from engine.core.streaming import (
    BatchStats,
    StreamingJob,
    StreamingRecord,
    StreamingSegment,
)
from engine.store.health import StoreHealth
from engine.store.ports import StreamingWrite
from engine.store.postgres.db import PostgresDatabase
from engine.store.postgres.leases import check_lease
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

SQL: Final = statements(lambda n: f"${n}")


class PostgresStreamingStore:
    """Streaming jobs, records, stats and segments in a PostgreSQL database."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    @property
    def health(self) -> StoreHealth:
        """Whether the server accepts writes right now (shared with the job store)."""
        return self.db.health

    async def open(self) -> None:
        """Connect and migrate (shared with the job store)."""
        await self.db.open()

    async def close(self) -> None:
        """Release the connections (once every store on the database closed)."""
        await self.db.close()

    async def save(self, write: StreamingWrite) -> StreamingJob:
        """Compare-and-set the job, then its records, stats and segments, all or nothing."""
        job, expected = write.job, write.expected_mvcc
        if expected is not None and job.mvcc <= expected:
            raise ConcurrentModification(job.uuid, expected)
        async with self.db.pool.acquire() as conn, conn.transaction():
            if write.lease is not None:  # a run's write: fenced before anything is written
                await check_lease(conn, write.lease)
            if expected is None:
                status, wanted = await conn.execute(SQL.insert_job, *job_row(job)), "INSERT 0 1"
            else:
                args = update_args(job, expected)
                status, wanted = await conn.execute(SQL.update_job, *args), "UPDATE 1"
            if status != wanted:
                raise ConcurrentModification(job.uuid, -1 if expected is None else expected)
            for segment_id in write.remove_segments:
                if await conn.execute(SQL.delete_segment, segment_id) != "DELETE 1":
                    raise ConcurrentModification(segment_id, job.mvcc)
            if write.records:
                await conn.executemany(SQL.insert_record, [record_row(r) for r in write.records])
            if write.stats:
                await conn.executemany(SQL.insert_stats, [stats_row(s) for s in write.stats])
            if write.add_segments:
                segments = [segment_row(s) for s in write.add_segments]
                await conn.executemany(SQL.insert_segment, segments)
        return job

    async def get_job(self, job_id: str) -> StreamingJob:
        """The stored job; ``JobNotFound`` when there is none."""
        row = await self.db.pool.fetchrow(SQL.select_job, job_id)
        if row is None:
            raise JobNotFound(job_id)
        return decode_job(row)

    async def list_jobs(self) -> list[StreamingJob]:
        """Every job, by uuid."""
        return [decode_job(row) for row in await self.db.pool.fetch(SQL.select_jobs)]

    async def records(self, job_id: str, limit: int | None = None) -> list[StreamingRecord]:
        """Newest first."""
        rows = await self.db.pool.fetch(SQL.select_records, job_id, limit)
        return [decode_record(row) for row in rows]

    async def stats(self, job_id: str, since: int) -> list[BatchStats]:
        """Rows at or after ``since``, newest first."""
        rows = await self.db.pool.fetch(SQL.select_stats, job_id, since)
        return [decode_stats(row) for row in rows]

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """By ``start_offset``."""
        rows = await self.db.pool.fetch(SQL.select_segments, model_id)
        return [decode_segment(row) for row in rows]
