"""A ``StreamingStore`` on PostgreSQL: the tables of ``schema/0002_streaming.sql``.

``save`` is one transaction: the guarded ``INSERT``/``UPDATE ... WHERE mvcc = $n`` of the job,
the segments it removes (each must still be there), then its records, stats and new segments.
"""

from __future__ import annotations

import json
from typing import Any, Final

import asyncpg

from engine.core.errors import ConcurrentModification, JobNotFound
from engine.core.states import RecordAction, StreamingJobType, StreamingStatus
from engine.core.streaming import (
    BatchStats,
    StreamingJob,
    StreamingRecord,
    StreamingSegment,
)
from engine.store.ports import StreamingWrite
from engine.store.postgres.db import PostgresDatabase

_NAMES: Final = (
    "uuid", "model_id", "model_alias", "project", "owner", "job_type", "status", "mvcc",
    "create_time", "last_modified", "params", "fact_table", "subscribe", "last_update_time",
    "last_start_time", "last_end_time", "last_batch_count", "yarn_app_id", "yarn_app_url",
    "process_id", "node_info", "job_execution_id", "action", "skip_listener",
    "last_record_time", "data_latency",
)  # fmt: skip
_COLUMNS: Final = ", ".join(_NAMES)
INSERT_JOB: Final = f"""
INSERT INTO streaming_jobs ({_COLUMNS})
VALUES ({", ".join(f"${n}" for n in range(1, len(_NAMES) + 1))})
ON CONFLICT (uuid) DO NOTHING
"""
UPDATE_JOB: Final = f"""
UPDATE streaming_jobs SET {", ".join(f"{c} = ${n}" for n, c in enumerate(_NAMES[1:], 2))}
WHERE uuid = $1 AND mvcc = ${len(_NAMES) + 1}
"""
SELECT_JOB: Final = f"SELECT {_COLUMNS} FROM streaming_jobs WHERE uuid = $1"
SELECT_JOBS: Final = f"SELECT {_COLUMNS} FROM streaming_jobs ORDER BY uuid"
INSERT_RECORD: Final = """
INSERT INTO streaming_records (job_id, project, action, create_time) VALUES ($1, $2, $3, $4)
"""
SELECT_RECORDS: Final = """
SELECT id, job_id, project, action, create_time FROM streaming_records
WHERE job_id = $1 ORDER BY create_time DESC, id DESC LIMIT $2
"""
INSERT_STATS: Final = """
INSERT INTO streaming_stats (job_id, project, batch_row_num, rows_per_second, processing_time,
                             min_data_latency, max_data_latency, create_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
SELECT_STATS: Final = """
SELECT id, job_id, project, batch_row_num, rows_per_second, processing_time, min_data_latency,
       max_data_latency, create_time
FROM streaming_stats WHERE job_id = $1 AND create_time >= $2
ORDER BY create_time DESC, id DESC
"""
_SEGMENT_COLUMNS: Final = (
    "id, model_id, project, start_offset, end_offset, min_event_time, max_event_time, "
    "row_count, size_bytes, create_time, layer, status"
)
INSERT_SEGMENT: Final = f"""
INSERT INTO streaming_segments ({_SEGMENT_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""
DELETE_SEGMENT: Final = "DELETE FROM streaming_segments WHERE id = $1"
SELECT_SEGMENTS: Final = f"""
SELECT {_SEGMENT_COLUMNS} FROM streaming_segments
WHERE model_id = $1 ORDER BY start_offset, end_offset, id
"""


class PostgresStreamingStore:
    """Streaming jobs, records, stats and segments in a PostgreSQL database."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    async def open(self) -> None:
        """Connect and migrate (shared with the job store)."""
        await self.db.open()

    async def close(self) -> None:
        """Release the connections (once every store on the database closed)."""
        await self.db.close()

    async def save(self, write: StreamingWrite) -> StreamingJob:
        """Compare-and-set the job, then its records, stats and segments, all or nothing."""
        job, expected = write.job, write.expected_mvcc
        row = _job_row(job)
        if expected is not None and job.mvcc <= expected:
            raise ConcurrentModification(job.uuid, expected)
        async with self.db.pool.acquire() as conn, conn.transaction():
            if expected is None:
                status, wanted = await conn.execute(INSERT_JOB, *row), "INSERT 0 1"
            else:
                status, wanted = await conn.execute(UPDATE_JOB, *row, expected), "UPDATE 1"
            if status != wanted:
                raise ConcurrentModification(job.uuid, -1 if expected is None else expected)
            for segment_id in write.remove_segments:
                if await conn.execute(DELETE_SEGMENT, segment_id) != "DELETE 1":
                    raise ConcurrentModification(segment_id, job.mvcc)
            if write.records:
                rows = [(r.job_id, r.project, r.action.value, r.create_time) for r in write.records]
                await conn.executemany(INSERT_RECORD, rows)
            if write.stats:
                await conn.executemany(INSERT_STATS, [_stats_row(s) for s in write.stats])
            if write.add_segments:
                await conn.executemany(
                    INSERT_SEGMENT, [_segment_row(s) for s in write.add_segments]
                )
        return job

    async def get_job(self, job_id: str) -> StreamingJob:
        """The stored job; ``JobNotFound`` when there is none."""
        row = await self.db.pool.fetchrow(SELECT_JOB, job_id)
        if row is None:
            raise JobNotFound(job_id)
        return _decode_job(row)

    async def list_jobs(self) -> list[StreamingJob]:
        """Every job, by uuid."""
        return [_decode_job(row) for row in await self.db.pool.fetch(SELECT_JOBS)]

    async def records(self, job_id: str, limit: int | None = None) -> list[StreamingRecord]:
        """Newest first."""
        rows = await self.db.pool.fetch(SELECT_RECORDS, job_id, limit)
        return [
            StreamingRecord(job, project, RecordAction(action), created, id=rid)
            for rid, job, project, action, created in rows
        ]

    async def stats(self, job_id: str, since: int) -> list[BatchStats]:
        """Rows at or after ``since``, newest first."""
        rows = await self.db.pool.fetch(SELECT_STATS, job_id, since)
        return [
            BatchStats(job, project, rows_, rate, processing, low, high, created, id=sid)
            for sid, job, project, rows_, rate, processing, low, high, created in rows
        ]

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """By ``start_offset``."""
        rows = await self.db.pool.fetch(SELECT_SEGMENTS, model_id)
        return [StreamingSegment(*row) for row in rows]


def _job_row(job: StreamingJob) -> tuple[Any, ...]:
    return (
        job.uuid, job.model_id, job.model_alias, job.project, job.owner, job.job_type.value,
        job.status.value, job.mvcc, job.create_time, job.last_modified,
        json.dumps(dict(job.params), sort_keys=True), job.fact_table, job.subscribe,
        job.last_update_time, job.last_start_time, job.last_end_time, job.last_batch_count,
        job.yarn_app_id, job.yarn_app_url, job.process_id, job.node_info, job.job_execution_id,
        job.action, job.skip_listener, job.last_record_time, job.data_latency,
    )  # fmt: skip


def _decode_job(row: asyncpg.Record) -> StreamingJob:
    values = dict(row)
    values["job_type"] = StreamingJobType(values["job_type"])
    values["status"] = StreamingStatus(values["status"])
    values["params"] = json.loads(values["params"])
    return StreamingJob(**values)


def _segment_row(s: StreamingSegment) -> tuple[Any, ...]:
    return (
        s.id, s.model_id, s.project, s.start_offset, s.end_offset, s.min_event_time,
        s.max_event_time, s.row_count, s.size_bytes, s.create_time, s.layer, s.status,
    )  # fmt: skip


def _stats_row(s: BatchStats) -> tuple[Any, ...]:
    return (
        s.job_id, s.project, s.batch_row_num, s.rows_per_second, s.processing_time,
        s.min_data_latency, s.max_data_latency, s.create_time,
    )  # fmt: skip
