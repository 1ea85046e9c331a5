"""``GET /streaming_jobs`` as pure functions: filter, sort and page jobs; their JSON views.

Every store lists the same way because listing happens here, over ``list_jobs()`` (or the
service's cache of it). Sort keys come from fields kept on the job itself (``data_latency``,
``last_record_time``), so 10,000 jobs sort without a store round trip per job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from engine.core.errors import InvalidRequest, InvalidStreamingParameter
from engine.core.states import STREAMING_LISTED, StreamingJobType, StreamingStatus
from engine.core.streaming import BatchStats, StreamingJob, StreamingRecord
from engine.core.streaming_jobs import SORT_KEYS, data_latency, last_status_duration
from engine.core.timefmt import format_utc

DEFAULT_PAGE_SIZE: Final = 10
MAX_PAGE_SIZE: Final = 1000
PARTITION_CONDITION_BUILDER: Final = (
    "org.apache.kylin.metadata.model.PartitionDesc$DefaultPartitionConditionBuilder"
)
#: what a ``statuses`` filter value matches: a listed status (ERROR covers LAUNCHING_ERROR) or,
#: beyond the listed ones, LAUNCHING_ERROR alone
_MATCHES: Final[Mapping[str, frozenset[StreamingStatus]]] = {
    **{s.value: frozenset({s}) for s in StreamingStatus},
    **STREAMING_LISTED,
}


@dataclass(frozen=True, slots=True)
class StreamingJobQuery:
    """The parameters of ``GET /streaming_jobs`` (SPEC §6)."""

    model_name: str | None = None  #: case-insensitive substring of the model alias
    model_names: Sequence[str] = ()  #: exact aliases
    job_types: Sequence[str] = ()  #: STREAMING_BUILD / STREAMING_MERGE
    statuses: Sequence[str] = ()  #: listed statuses; ERROR also matches LAUNCHING_ERROR
    project: str | None = None
    job_ids: Sequence[str] = ()  #: needs ``project``
    sort_by: str = "last_modified"
    reverse: bool = True  #: descending; nulls sort lowest either way
    page_offset: int = 0  #: page index
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class StreamingJobPage:
    """One page of the filtered, sorted jobs and the total before paging."""

    jobs: tuple[StreamingJob, ...]
    offset: int
    limit: int
    total_size: int


@dataclass(frozen=True, slots=True)
class ModelView:
    """What a listed job shows of its model (from the catalog)."""

    broken: bool = False
    indexes: int | None = None
    partition_desc: Mapping[str, Any] | None = None


def query_jobs(
    jobs: Iterable[StreamingJob], query: StreamingJobQuery, now: int
) -> StreamingJobPage:
    """Filter, sort and page ``jobs``; ``InvalidRequest`` for a bad parameter."""
    keep = _filter(query)
    matched = [job for job in jobs if keep(job)]
    key = _sort_key(query.sort_by, now)
    matched.sort(key=key, reverse=query.reverse)
    start = query.page_offset * query.page_size
    page = tuple(matched[start : start + query.page_size])
    return StreamingJobPage(page, query.page_offset, query.page_size, len(matched))


def _filter(query: StreamingJobQuery) -> Callable[[StreamingJob], bool]:
    if query.job_ids and not query.project:
        raise InvalidStreamingParameter.empty("project")
    if not 1 <= query.page_size <= MAX_PAGE_SIZE:
        raise InvalidRequest(
            f'The parameter "page_size" must be between 1 and {MAX_PAGE_SIZE}: {query.page_size}'
        )
    if query.page_offset < 0:
        raise InvalidRequest(f'The parameter "page_offset" must be ≥ 0: {query.page_offset}')
    name = query.model_name.casefold() if query.model_name else None
    names = frozenset(query.model_names)
    types = frozenset(_job_type(t) for t in query.job_types)
    statuses = frozenset(s for text in query.statuses for s in _status(text))
    ids = frozenset(query.job_ids)

    def keep(job: StreamingJob) -> bool:
        return (
            (name is None or name in job.model_alias.casefold())
            and (not names or job.model_alias in names)
            and (not types or job.job_type in types)
            and (not statuses or job.status in statuses)
            and (not query.project or job.project == query.project)
            and (not ids or job.uuid in ids)
        )

    return keep


def _job_type(text: str) -> StreamingJobType:
    try:
        return StreamingJobType(text.strip().upper())
    except ValueError:
        raise InvalidRequest(
            f'The entered parameter "job_types" is invalid, only supports '
            f'"{", ".join(t.value for t in StreamingJobType)}": "{text}"'
        ) from None


def _status(text: str) -> frozenset[StreamingStatus]:
    try:
        return _MATCHES[text.strip().upper()]
    except KeyError:
        raise InvalidRequest(
            f'The entered parameter "statuses" is invalid, only supports '
            f'"STARTING, RUNNING, STOPPING, ERROR, STOPPED": "{text}"'
        ) from None


SortKey = tuple[bool, Any, str]


def _sort_key(sort_by: str, now: int) -> Callable[[StreamingJob], SortKey]:
    """A key where None sorts below every value; the uuid breaks ties."""
    if sort_by == "last_modified":
        return lambda job: (True, job.last_modified, job.uuid)
    if sort_by == "model_alias":
        return lambda job: (True, (job.model_alias.casefold(), job.model_alias), job.uuid)
    if sort_by == "data_latency":
        return lambda job: _nullable(data_latency(job), job.uuid)
    if sort_by == "last_status_duration":
        return lambda job: _nullable(last_status_duration(job, now), job.uuid)
    raise InvalidRequest(
        f'Invalid request parameter value "{sort_by}". Please enter the correct sort_by '
        f"parameter value ({', '.join(SORT_KEYS)})."
    )


def _nullable(value: int | None, uuid: str) -> SortKey:
    return (False, 0, uuid) if value is None else (True, value, uuid)


# -- JSON views --------------------------------------------------------------------------------


def format_time(ms: int | None) -> str | None:
    """``"yyyy-MM-dd HH:mm:ss"`` in UTC, as the list shows ``last_update_time``."""
    return None if ms is None else format_utc(ms)


def partition_desc(
    fact_table: str | None,
    partition_column: str | None,
    date_format: str = "yyyy-MM-dd HH:mm:ss",
) -> dict[str, Any] | None:
    """Kylin's ``partition_desc`` of a model partitioned on ``partition_column``."""
    if not partition_column:
        return None
    column = partition_column
    if "." not in column and fact_table:
        column = f"{fact_table.rsplit('.', 1)[-1]}.{column}"
    return {
        "partition_date_column": column,
        "partition_date_start": 0,
        "partition_date_format": date_format,
        "partition_type": "APPEND",
        "partition_condition_builder": PARTITION_CONDITION_BUILDER,
    }


def listed_job(
    job: StreamingJob, now: int, *, version: str, model: ModelView | None
) -> dict[str, Any]:
    """One job as ``GET /streaming_jobs`` lists it, fields in the seed's order."""
    return {
        "uuid": job.uuid,
        "last_modified": job.last_modified,
        "create_time": job.create_time,
        "version": version,
        "mvcc": job.mvcc,
        "model_alias": job.model_alias,
        "owner": job.owner,
        "model_id": job.model_id,
        "last_start_time": job.last_start_time,
        "last_end_time": job.last_end_time,
        "last_update_time": format_time(job.last_update_time),
        "last_batch_count": job.last_batch_count,
        "subscribe": job.subscribe,
        "fact_table": job.fact_table,
        "job_status": job.status.listed_as,
        "job_type": job.job_type.value,
        "process_id": job.process_id,
        "node_info": job.node_info,
        "job_execution_id": job.job_execution_id,
        "yarn_app_id": job.yarn_app_id,
        "yarn_app_url": job.yarn_app_url,
        "params": dict(job.params),
        "project": job.project,
        "skip_listener": job.skip_listener,
        "action": job.action,
        "model_broken": True if model is None else model.broken,
        "data_latency": data_latency(job),
        "last_status_duration": last_status_duration(job, now),
        "model_indexes": None if model is None else model.indexes,
        "launching_error": job.launching_error,
        "partition_desc": None if model is None else model.partition_desc,
    }


def record_view(record: StreamingRecord) -> dict[str, Any]:
    """One record as ``GET /streaming_jobs/records`` shows it."""
    return {
        "id": record.id,
        "job_id": record.job_id,
        "project": record.project,
        "action": record.action.value,
        "create_time": record.create_time,
    }


def stats_view(rows: Sequence[BatchStats]) -> dict[str, list[int]]:
    """``GET /streaming_jobs/stats/{jobId}``: parallel lists, newest first as given."""
    return {
        "consumption_rate_hist": [r.rows_per_second for r in rows],
        "data_latency_hist": [max(0, r.min_data_latency) for r in rows],
        "processing_time_hist": [r.processing_time for r in rows],
        "create_time": [r.create_time for r in rows],
    }
