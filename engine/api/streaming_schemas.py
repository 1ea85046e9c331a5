"""Pydantic models of the streaming routes' bodies and documented answers (Kylin 5 envelopes).

As ``schemas`` for the batch routes: the models only document what ``engine.api.views`` and
``engine.streaming.query`` render, for ``/openapi.json`` and schemathesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from engine.api.schemas import Strict
from engine.core import states

if TYPE_CHECKING:
    StreamingJobStatus = str
    StreamingJobType = str
    RecordAction = str
else:
    StreamingJobStatus = Literal[tuple(states.STREAMING_LISTED)]
    StreamingJobType = Literal[tuple(t.value for t in states.StreamingJobType)]
    RecordAction = Literal[tuple(a.value for a in states.RecordAction)]


# -- streaming (Kylin 5 envelopes) --------------------------------------------------------------


class StreamingStatusRequest(Strict):
    """``PUT /streaming_jobs/status``. ``action`` is checked by the route, so that an unknown
    one answers Kylin's own code (KE-010043207); the enum documents the accepted values."""

    project: str | None = None
    action: str = Field(
        description="START, STOP, FORCE_STOP or RESTART",
        json_schema_extra={"enum": [a.value for a in states.StreamingAction]},
    )
    job_ids: list[str] = Field(min_length=1, max_length=10_000)


class StreamingParamsRequest(Strict):
    """``PUT /streaming_jobs/params``: the job's new params (only while STOPPED or ERROR)."""

    job_id: str = Field(min_length=1)
    project: str | None = None
    params: dict[str, str] = Field(description="replaces every param of the job")


class StreamingPartitionDesc(BaseModel):
    """A streaming model's partition column, as Kylin 5 lists it."""

    partition_date_column: str
    partition_date_start: int
    partition_date_format: str
    partition_type: str
    partition_condition_builder: str


class StreamingJobBody(BaseModel):
    """A streaming job as ``GET /streaming_jobs`` lists it (SPEC §5, the seed's key order)."""

    uuid: str
    last_modified: int
    create_time: int
    version: str
    mvcc: int
    model_alias: str
    owner: str
    model_id: str
    last_start_time: int | None
    last_end_time: int | None
    last_update_time: str | None = Field(description='"yyyy-MM-dd HH:mm:ss" (UTC)')
    last_batch_count: int | None
    subscribe: str | None
    fact_table: str | None
    job_status: StreamingJobStatus
    job_type: StreamingJobType
    process_id: str | None
    node_info: str | None
    job_execution_id: int | None
    yarn_app_id: str
    yarn_app_url: str
    params: dict[str, str]
    project: str
    skip_listener: bool
    action: str | None
    model_broken: bool
    data_latency: int | None = Field(description="ms; null for merge jobs and before a batch")
    last_status_duration: int | None = Field(description="ms since the latest record")
    model_indexes: int | None
    launching_error: bool
    partition_desc: StreamingPartitionDesc | None


class StreamingJobList(BaseModel):
    """One page of streaming jobs; ``total_size`` counts every match."""

    value: list[StreamingJobBody]
    offset: int
    limit: int
    total_size: int


class StreamingJobListEnvelope(BaseModel):
    """``GET /streaming_jobs``."""

    code: Literal["000"]
    data: StreamingJobList
    msg: str


class StreamingRecordBody(BaseModel):
    """A START, STOP or ERROR record of a streaming job."""

    id: int | None
    job_id: str
    project: str
    action: RecordAction
    create_time: int


class StreamingRecordsEnvelope(BaseModel):
    """``GET /streaming_jobs/records``: newest first."""

    code: Literal["000"]
    data: list[StreamingRecordBody]
    msg: str


class StreamingStatsBody(BaseModel):
    """Per micro-batch, newest first: rows/s, latency (ms), processing time (ms), time."""

    consumption_rate_hist: list[int]
    data_latency_hist: list[int]
    processing_time_hist: list[int]
    create_time: list[int]


class StreamingStatsEnvelope(BaseModel):
    """``GET /streaming_jobs/stats/{jobId}``."""

    code: Literal["000"]
    data: StreamingStatsBody
    msg: str
