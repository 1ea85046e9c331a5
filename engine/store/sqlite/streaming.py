"""A ``StreamingStore`` on SQLite (``db.py`` owns connections, group commit, migrations).

Tables come from ``schema/0002_streaming.sql``. A job is one row; ``save`` is one guarded
``INSERT``/``UPDATE`` of it, then the records, stats and segment changes of the same write,
all in the writer's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import aiosqlite

from engine.core.errors import ConcurrentModification, JobNotFound
from engine.core.states import RecordAction, StreamingJobType, StreamingStatus
from engine.core.streaming import (
    BatchStats,
    StreamingJob,
    StreamingRecord,
    StreamingSegment,
)
from engine.store.ports import StreamingWrite
from engine.store.sqlite.db import SqliteStoreBase

# -- statements -------------------------------------------------------------------------------

JOB_COLUMNS: Final = (
    "uuid, model_id, model_alias, project, owner, job_type, status, mvcc, create_time, "
    "last_modified, params, fact_table, subscribe, last_update_time, last_start_time, "
    "last_end_time, last_batch_count, yarn_app_id, yarn_app_url, process_id, node_info, "
    "job_execution_id, action, skip_listener, last_record_time, data_latency"
)
_MUTABLE: Final = JOB_COLUMNS.split(", ")[1:]

INSERT_JOB: Final = f"""
INSERT INTO streaming_jobs ({JOB_COLUMNS})
VALUES ({", ".join("?" * len(JOB_COLUMNS.split(", ")))})
ON CONFLICT (uuid) DO NOTHING
"""
# The compare-and-set: matches no row when another write got there first.
UPDATE_JOB: Final = f"""
UPDATE streaming_jobs SET {", ".join(f"{c} = ?" for c in _MUTABLE)}
WHERE uuid = ? AND mvcc = ?
"""
SELECT_JOB: Final = f"SELECT {JOB_COLUMNS} FROM streaming_jobs WHERE uuid = ?"
SELECT_JOBS: Final = f"SELECT {JOB_COLUMNS} FROM streaming_jobs ORDER BY uuid"

INSERT_RECORD: Final = """
INSERT INTO streaming_records (job_id, project, action, create_time) VALUES (?, ?, ?, ?)
"""
SELECT_RECORDS: Final = """
SELECT id, job_id, project, action, create_time FROM streaming_records
WHERE job_id = ? ORDER BY create_time DESC, id DESC LIMIT ?
"""

INSERT_STATS: Final = """
INSERT INTO streaming_stats (job_id, project, batch_row_num, rows_per_second, processing_time,
                             min_data_latency, max_data_latency, create_time)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
SELECT_STATS: Final = """
SELECT id, job_id, project, batch_row_num, rows_per_second, processing_time, min_data_latency,
       max_data_latency, create_time
FROM streaming_stats WHERE job_id = ? AND create_time >= ?
ORDER BY create_time DESC, id DESC
"""

SEGMENT_COLUMNS: Final = (
    "id, model_id, project, start_offset, end_offset, min_event_time, max_event_time, "
    "row_count, size_bytes, create_time, layer, status"
)
INSERT_SEGMENT: Final = f"""
INSERT INTO streaming_segments ({SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
DELETE_SEGMENT: Final = "DELETE FROM streaming_segments WHERE id = ?"
SELECT_SEGMENTS: Final = f"""
SELECT {SEGMENT_COLUMNS} FROM streaming_segments
WHERE model_id = ? ORDER BY start_offset, end_offset, id
"""

_NO_LIMIT: Final = -1


class SqliteStreamingStore(SqliteStoreBase):
    """Streaming jobs, records, stats and segments in a SQLite file."""

    # -- writes -------------------------------------------------------------------------------

    async def save(self, write: StreamingWrite) -> StreamingJob:
        """Compare-and-set the job, then its records, stats and segments, all or nothing."""
        job = write.job
        expected = write.expected_mvcc
        row = _job_row(job)
        if expected is None:
            first: tuple[str, tuple[Any, ...]] = (INSERT_JOB, row)
        elif job.mvcc <= expected:
            raise ConcurrentModification(job.uuid, expected)
        else:
            first = (UPDATE_JOB, (*row[1:], job.uuid, expected))
        extra = _extra_statements(write)
        removed = tuple(write.remove_segments)

        async def op(conn: aiosqlite.Connection) -> StreamingJob:
            cursor = await conn.execute(*first)
            if cursor.rowcount != 1:
                raise ConcurrentModification(job.uuid, -1 if expected is None else expected)
            for segment_id in removed:
                # a lost race after the job's row changed: the writer rolls the batch back
                cursor = await conn.execute(DELETE_SEGMENT, (segment_id,))
                if cursor.rowcount != 1:
                    raise ConcurrentModification(segment_id, job.mvcc)
            for sql, rows in extra:
                await conn.executemany(sql, rows)
            return job

        return await self._db.write(op)

    # -- reads --------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> StreamingJob:
        """The stored job; ``JobNotFound`` when there is none."""
        rows = list(await self._db.reader.execute_fetchall(SELECT_JOB, (job_id,)))
        if not rows:
            raise JobNotFound(job_id)
        return _decode_job(rows[0])

    async def list_jobs(self) -> list[StreamingJob]:
        """Every job, by uuid."""
        rows = await self._db.reader.execute_fetchall(SELECT_JOBS)
        return [_decode_job(row) for row in rows]

    async def records(self, job_id: str, limit: int | None = None) -> list[StreamingRecord]:
        """Newest first."""
        cap = _NO_LIMIT if limit is None else limit
        rows = await self._db.reader.execute_fetchall(SELECT_RECORDS, (job_id, cap))
        return [
            StreamingRecord(job, project, RecordAction(action), created, id=rid)
            for rid, job, project, action, created in rows
        ]

    async def stats(self, job_id: str, since: int) -> list[BatchStats]:
        """Rows at or after ``since``, newest first."""
        rows = await self._db.reader.execute_fetchall(SELECT_STATS, (job_id, since))
        return [
            BatchStats(job, project, rows_, rate, processing, low, high, created, id=sid)
            for sid, job, project, rows_, rate, processing, low, high, created in rows
        ]

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """By ``start_offset``."""
        rows = await self._db.reader.execute_fetchall(SELECT_SEGMENTS, (model_id,))
        return [StreamingSegment(*row) for row in rows]


def _job_row(job: StreamingJob) -> tuple[Any, ...]:
    return (
        job.uuid, job.model_id, job.model_alias, job.project, job.owner, job.job_type.value,
        job.status.value, job.mvcc, job.create_time, job.last_modified,
        json.dumps(dict(job.params), sort_keys=True, ensure_ascii=False), job.fact_table,
        job.subscribe, job.last_update_time, job.last_start_time, job.last_end_time,
        job.last_batch_count, job.yarn_app_id, job.yarn_app_url, job.process_id, job.node_info,
        job.job_execution_id, job.action, int(job.skip_listener), job.last_record_time,
        job.data_latency,
    )  # fmt: skip


def _decode_job(row: Sequence[Any]) -> StreamingJob:
    # fmt: off
    (uuid, model_id, alias, project, owner, job_type, status, mvcc, create_time, last_modified,
     params, fact_table, subscribe, last_update, last_start, last_end, last_batch, yarn_id,
     yarn_url, process_id, node_info, execution_id, action, skip, record_time, latency) = row
    # fmt: on
    return StreamingJob(
        uuid=uuid,
        model_id=model_id,
        model_alias=alias,
        project=project,
        owner=owner,
        job_type=StreamingJobType(job_type),
        create_time=create_time,
        last_modified=last_modified,
        status=StreamingStatus(status),
        mvcc=mvcc,
        params=json.loads(params),
        fact_table=fact_table,
        subscribe=subscribe,
        last_update_time=last_update,
        last_start_time=last_start,
        last_end_time=last_end,
        last_batch_count=last_batch,
        yarn_app_id=yarn_id,
        yarn_app_url=yarn_url,
        process_id=process_id,
        node_info=node_info,
        job_execution_id=execution_id,
        action=action,
        skip_listener=bool(skip),
        last_record_time=record_time,
        data_latency=latency,
    )


def _extra_statements(write: StreamingWrite) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements after the job's own (and the segment deletes), in order."""
    extra: list[tuple[str, list[tuple[Any, ...]]]] = []
    if write.records:
        rows = [(r.job_id, r.project, r.action.value, r.create_time) for r in write.records]
        extra.append((INSERT_RECORD, list(rows)))
    if write.stats:
        extra.append((INSERT_STATS, [_stats_row(s) for s in write.stats]))
    if write.add_segments:
        extra.append((INSERT_SEGMENT, [_segment_row(s) for s in write.add_segments]))
    return extra


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
