"""The streaming tables' rows, one codec for every SQL adapter (SQLite and PostgreSQL).

Both schemas (``0002_streaming.sql``) have the same columns; an adapter differs only in how it
writes a placeholder (``?`` or ``$1``), so the statements are built from ``placeholders`` here and
the rows are encoded and decoded here, once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from engine.core.states import RecordAction, StreamingJobType, StreamingStatus
from engine.core.streaming import BatchStats, StreamingJob, StreamingRecord, StreamingSegment

#: ``streaming_jobs`` in column order; each column is the ``StreamingJob`` field of that name
JOB_FIELDS: Final = (
    "uuid", "model_id", "model_alias", "project", "owner", "job_type", "status", "mvcc",
    "create_time", "last_modified", "params", "fact_table", "subscribe", "last_update_time",
    "last_start_time", "last_end_time", "last_batch_count", "yarn_app_id", "yarn_app_url",
    "process_id", "node_info", "job_execution_id", "action", "skip_listener",
    "last_record_time", "data_latency",
)  # fmt: skip
SEGMENT_COLUMNS: Final = (
    "id, model_id, project, start_offset, end_offset, min_event_time, max_event_time, "
    "row_count, size_bytes, create_time, layer, status"
)
_JOB_COLUMNS: Final = ", ".join(JOB_FIELDS)


@dataclass(frozen=True, slots=True)
class StreamingStatements:
    """The SQL of a streaming store, in one adapter's placeholder style."""

    insert_job: str
    #: the compare-and-set: matches no row when another write got there first; its arguments
    #: are ``update_args``
    update_job: str
    select_job: str
    select_jobs: str
    insert_record: str
    select_records: str  #: ``(job_id, limit)``
    insert_stats: str
    select_stats: str  #: ``(job_id, since)``
    insert_segment: str
    delete_segment: str
    select_segments: str  #: ``(model_id,)``


def statements(placeholders: Callable[[int], str]) -> StreamingStatements:
    """The statements, with ``placeholders(n)`` for the n-th (1-based) parameter."""

    def values(count: int, first: int = 1) -> str:
        return ", ".join(placeholders(n) for n in range(first, first + count))

    mutable = JOB_FIELDS[1:]
    assignments = ", ".join(f"{c} = {placeholders(n)}" for n, c in enumerate(mutable, 1))
    last = len(mutable)
    return StreamingStatements(
        insert_job=f"INSERT INTO streaming_jobs ({_JOB_COLUMNS}) VALUES ({values(len(JOB_FIELDS))})"
        " ON CONFLICT (uuid) DO NOTHING",
        update_job=f"UPDATE streaming_jobs SET {assignments} "
        f"WHERE uuid = {placeholders(last + 1)} AND mvcc = {placeholders(last + 2)}",
        select_job=f"SELECT {_JOB_COLUMNS} FROM streaming_jobs WHERE uuid = {placeholders(1)}",
        select_jobs=f"SELECT {_JOB_COLUMNS} FROM streaming_jobs ORDER BY uuid",
        insert_record="INSERT INTO streaming_records (job_id, project, action, create_time) "
        f"VALUES ({values(4)})",
        select_records="SELECT id, job_id, project, action, create_time FROM streaming_records "
        f"WHERE job_id = {placeholders(1)} ORDER BY create_time DESC, id DESC "
        f"LIMIT {placeholders(2)}",
        insert_stats="INSERT INTO streaming_stats (job_id, project, batch_row_num, "
        "rows_per_second, processing_time, min_data_latency, max_data_latency, create_time) "
        f"VALUES ({values(8)})",
        select_stats="SELECT id, job_id, project, batch_row_num, rows_per_second, "
        "processing_time, min_data_latency, max_data_latency, create_time FROM streaming_stats "
        f"WHERE job_id = {placeholders(1)} AND create_time >= {placeholders(2)} "
        "ORDER BY create_time DESC, id DESC",
        insert_segment=f"INSERT INTO streaming_segments ({SEGMENT_COLUMNS}) VALUES ({values(12)})",
        delete_segment=f"DELETE FROM streaming_segments WHERE id = {placeholders(1)}",
        select_segments=f"SELECT {SEGMENT_COLUMNS} FROM streaming_segments "
        f"WHERE model_id = {placeholders(1)} ORDER BY start_offset, end_offset, id",
    )


def job_row(job: StreamingJob) -> tuple[Any, ...]:
    """The job's ``streaming_jobs`` row, in ``JOB_FIELDS`` order (params as sorted JSON)."""
    return (
        job.uuid, job.model_id, job.model_alias, job.project, job.owner, job.job_type.value,
        job.status.value, job.mvcc, job.create_time, job.last_modified,
        json.dumps(dict(job.params), sort_keys=True, ensure_ascii=False), job.fact_table,
        job.subscribe, job.last_update_time, job.last_start_time, job.last_end_time,
        job.last_batch_count, job.yarn_app_id, job.yarn_app_url, job.process_id, job.node_info,
        job.job_execution_id, job.action, job.skip_listener, job.last_record_time,
        job.data_latency,
    )  # fmt: skip


def update_args(job: StreamingJob, expected_mvcc: int) -> tuple[Any, ...]:
    """The arguments of ``update_job``: every column but the key, the key, the expected mvcc."""
    row = job_row(job)
    return (*row[1:], job.uuid, expected_mvcc)


def decode_job(row: Iterable[Any]) -> StreamingJob:
    """A ``streaming_jobs`` row (``JOB_FIELDS`` order) as the job."""
    values = dict(zip(JOB_FIELDS, row, strict=True))
    values["job_type"] = StreamingJobType(values["job_type"])
    values["status"] = StreamingStatus(values["status"])
    values["params"] = json.loads(values["params"])
    values["skip_listener"] = bool(values["skip_listener"])
    return StreamingJob(**values)


def record_row(record: StreamingRecord) -> tuple[Any, ...]:
    """The arguments of ``insert_record``."""
    return (record.job_id, record.project, record.action.value, record.create_time)


def decode_record(row: Iterable[Any]) -> StreamingRecord:
    """A ``select_records`` row as the record."""
    rid, job, project, action, created = row
    return StreamingRecord(job, project, RecordAction(action), created, id=rid)


def stats_row(s: BatchStats) -> tuple[Any, ...]:
    """The arguments of ``insert_stats``."""
    return (
        s.job_id, s.project, s.batch_row_num, s.rows_per_second, s.processing_time,
        s.min_data_latency, s.max_data_latency, s.create_time,
    )  # fmt: skip


def decode_stats(row: Iterable[Any]) -> BatchStats:
    """A ``select_stats`` row as the batch's statistics."""
    sid, job, project, rows, rate, processing, low, high, created = row
    return BatchStats(job, project, rows, rate, processing, low, high, created, id=sid)


def segment_row(s: StreamingSegment) -> tuple[Any, ...]:
    """The arguments of ``insert_segment`` (``SEGMENT_COLUMNS`` order)."""
    return (
        s.id, s.model_id, s.project, s.start_offset, s.end_offset, s.min_event_time,
        s.max_event_time, s.row_count, s.size_bytes, s.create_time, s.layer, s.status,
    )  # fmt: skip


def decode_segment(row: Iterable[Any]) -> StreamingSegment:
    """A ``select_segments`` row as the segment."""
    return StreamingSegment(*row)
