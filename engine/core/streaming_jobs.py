"""Streaming jobs as records (SPEC §5): the job, its records, batch statistics and segments.

Frozen; the state machine over them is ``engine.core.streaming``. Times are epoch ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Self

from engine.core.errors import InvalidRequest
from engine.core.jobs import _evolve
from engine.core.states import RecordAction, SegmentStatus, StreamingJobType, StreamingStatus

#: the suffix of a streaming job id: ``{model_id}_build`` / ``{model_id}_merge``
JOB_SUFFIX: Final[Mapping[StreamingJobType, str]] = {
    StreamingJobType.STREAMING_BUILD: "build",
    StreamingJobType.STREAMING_MERGE: "merge",
}


def streaming_job_id(model_id: str, job_type: StreamingJobType) -> str:
    """The id of a model's build or merge job."""
    return f"{model_id}_{JOB_SUFFIX[job_type]}"


def parse_job_id(job_id: str) -> tuple[str, StreamingJobType]:
    """Split ``{model_id}_{build|merge}``; ``InvalidRequest`` when it is not one."""
    model_id, _, suffix = job_id.rpartition("_")
    for job_type, known in JOB_SUFFIX.items():
        if suffix == known and model_id:
            return model_id, job_type
    raise InvalidRequest(f'"{job_id}" is not a streaming job id ({{model_id}}_build or _merge)')


@dataclass(frozen=True, slots=True)
class StreamingJob:
    """One streaming job (Kylin's ``StreamingJobMeta``): the persisted state of SPEC §5."""

    uuid: str  #: ``{model_id}_build`` or ``{model_id}_merge``
    model_id: str
    model_alias: str
    project: str
    owner: str
    job_type: StreamingJobType
    create_time: int
    last_modified: int  #: time of the latest write of any kind
    status: StreamingStatus = StreamingStatus.STOPPED
    mvcc: int = 0  #: +1 on every write; the store's compare-and-set key
    params: Mapping[str, str] = field(default_factory=dict)
    fact_table: str | None = None
    subscribe: str | None = None  #: the source topic
    last_update_time: int | None = None  #: latest effective write (status change or batch)
    last_start_time: int | None = None  #: latest → RUNNING
    last_end_time: int | None = None  #: latest → STOPPED or → ERROR
    last_batch_count: int | None = None  #: rows of the latest micro-batch
    yarn_app_id: str = ""
    yarn_app_url: str = ""
    process_id: str | None = None
    node_info: str | None = None
    job_execution_id: int | None = None  #: +1 per successful launch
    action: str | None = None  #: the latest action that changed the job
    skip_listener: bool = False
    #: derived, written with the job in the same transaction so that listing 10,000 jobs needs
    #: no join: the time of the newest record, and the build's latest ``min_data_latency`` (≥ 0)
    last_record_time: int | None = None
    data_latency: int | None = None

    def evolve(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (``dataclasses.replace``, without its per-field checks:
        every write of a job comes here, so it is on the hot path of the loops)."""
        return _evolve(self, changes)

    @property
    def launching_error(self) -> bool:
        """Whether the job is in LAUNCHING_ERROR (listed as ERROR)."""
        return self.status is StreamingStatus.LAUNCHING_ERROR


@dataclass(frozen=True, slots=True)
class StreamingRecord:
    """One START / STOP / ERROR event of a job (Kylin's ``StreamingJobRecord``)."""

    job_id: str
    project: str
    action: RecordAction
    create_time: int
    id: int | None = None  #: assigned by the store, increasing


@dataclass(frozen=True, slots=True)
class BatchStats:
    """One micro-batch's statistics (Kylin's ``StreamingJobStats``)."""

    job_id: str
    project: str
    batch_row_num: int
    rows_per_second: int
    processing_time: int  #: ms
    min_data_latency: int  #: ms
    max_data_latency: int  #: ms
    create_time: int
    id: int | None = None  #: assigned by the store, increasing


@dataclass(frozen=True, slots=True)
class StreamingSegment:
    """A READY segment of a streaming model: source offsets ``[start_offset, end_offset)``."""

    id: str
    model_id: str
    project: str
    start_offset: int
    end_offset: int
    min_event_time: int  #: epoch ms of the earliest message
    max_event_time: int
    row_count: int
    size_bytes: int
    create_time: int
    layer: int = 0  #: 0 = made by a micro-batch; a merge of layer-n segments has layer n + 1
    status: str = SegmentStatus.READY


# -- derived fields (SPEC §6): what the list shows and sorts on, from fields of the job itself --

#: the keys ``GET /streaming_jobs`` sorts by (``sort_by``); the first is the default
SORT_KEYS: Final = ("last_modified", "model_alias", "data_latency", "last_status_duration")


def data_latency(job: StreamingJob) -> int | None:
    """The listed ``data_latency``: a build's latest ``min_data_latency`` (≥ 0); merge: None."""
    if job.job_type is StreamingJobType.STREAMING_MERGE:
        return None
    return job.data_latency


def last_status_duration(job: StreamingJob, now: int) -> int | None:
    """Milliseconds since the job's latest record; None without records."""
    return None if job.last_record_time is None else now - job.last_record_time


def new_job(
    model_id: str,
    job_type: StreamingJobType,
    now: int,
    *,
    model_alias: str,
    project: str,
    owner: str,
    params: Mapping[str, str],
    fact_table: str | None = None,
    subscribe: str | None = None,
) -> StreamingJob:
    """A model's build or merge job as first created: STOPPED, mvcc 0, no records."""
    return StreamingJob(
        uuid=streaming_job_id(model_id, job_type),
        model_id=model_id,
        model_alias=model_alias,
        project=project,
        owner=owner,
        job_type=job_type,
        create_time=now,
        last_modified=now,
        params=dict(params),
        fact_table=fact_table,
        subscribe=subscribe,
    )
