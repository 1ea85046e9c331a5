"""Pydantic models of the request bodies and the documented response shapes (OpenAPI) of the
batch and catalog routes (the streaming ones: ``streaming_schemas``).

Responses are rendered by ``engine.api.views`` (plain dicts, SPEC §3 key order); these models
only document them, so that ``/openapi.json`` is exact enough for clients and for schemathesis
to validate every answer. Field names are Kylin's, camelCase included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.core import states
from engine.core.jobs import FULL_BUILD_END

# The literals of the documented shapes come from the enums of core/states.py (one source).
if TYPE_CHECKING:
    RestStatus = str
    BuildType = str
    BulkAction = str
    JobType = str
    CubeStatus = str
else:
    RestStatus = Literal[tuple(s.value for s in states.SHOWN_STATUSES)]
    BuildType = Literal[tuple(t.value for t in states.BuildType)]
    BulkAction = Literal[tuple(o.value for o in states.BULK_OPERATIONS)]
    JobType = Literal[states.BuildType.BUILD.value]  # Kylin shows every cubing job as BUILD
    CubeStatus = Literal[tuple(c.value for c in states.CubeStatus)]


def _bound(what: str) -> Any:
    return Field(default=0, ge=0, le=FULL_BUILD_END, description=what)


def _priority() -> Any:
    return Field(default=0, ge=-(2**31), le=2**31 - 1, description="added to the job's priority")


class Strict(BaseModel):
    """A request body: unknown keys are ignored, as Kylin does."""

    model_config = ConfigDict(extra="ignore")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route answers with (Kylin's error body)."""
    what = {
        400: "Bad parameter or body",
        401: "Missing or wrong credentials",
        404: "Unknown job, step, cube, model, project or route",
        409: "Not allowed in the current state",
        500: "Internal fault",
    }
    return {s: {"model": ErrorBody, "description": what[s]} for s in statuses}


# -- requests -----------------------------------------------------------------------------------


class BuildRequest(Strict):
    """``PUT /cubes/{cube}/build|rebuild``: a segment range in epoch ms (0, 0 = full build)."""

    startTime: int = _bound("segment start, epoch ms")
    endTime: int = _bound("segment end (exclusive), epoch ms")
    buildType: BuildType
    priorityOffset: int = _priority()


class Build2Request(Strict):
    """``PUT /cubes/{cube}/build2|rebuild2``: the range as source offsets."""

    sourceOffsetStart: int = _bound("first source offset")
    sourceOffsetEnd: int = _bound("source offset end (exclusive)")
    buildType: BuildType
    priorityOffset: int = _priority()


class JobStatusRequest(Strict):
    """Kylin 5 bulk ``PUT /jobs/status``."""

    action: BulkAction
    job_ids: list[str] = Field(min_length=1, max_length=10_000)
    project: str | None = None


# -- responses ----------------------------------------------------------------------------------


class JobStep(BaseModel):
    """One step of a job (SPEC §3 ``JobStep``)."""

    interruptCmd: str | None
    id: str
    name: str
    sequence_id: int
    exec_cmd: str | None
    interrupt_cmd: str | None
    exec_start_time: int
    exec_end_time: int
    exec_wait_time: int
    step_status: RestStatus
    cmd_type: str
    info: dict[str, str]
    run_async: bool


class JobInstance(BaseModel):
    """A batch job (SPEC §3 ``JobInstance``)."""

    uuid: str
    last_modified: int
    version: str
    name: str
    projectName: str
    type: JobType
    duration: int
    related_cube: str
    display_cube_name: str
    related_segment: str
    related_segment_name: str
    exec_start_time: int
    exec_end_time: int
    exec_interrupt_time: int
    mr_waiting: int
    steps: list[JobStep]
    submitter: str
    job_status: RestStatus
    build_instance: str
    progress: float


class StepOutputBody(BaseModel):
    """``GET /jobs/{jobId}/steps/{stepId}/output``; ``cmd_output`` is null before a first run."""

    jobId: str
    stepId: str
    cmd_output: str | None


class Overview(BaseModel):
    """Number of jobs per REST status."""

    NEW: int
    PENDING: int
    RUNNING: int
    FINISHED: int
    ERROR: int
    DISCARDED: int
    STOPPED: int


class Envelope(BaseModel):
    """Kylin 5's success envelope."""

    code: Literal["000"]
    data: str
    msg: str


class ErrorBody(BaseModel):
    """Kylin's error body (``stacktrace`` only when the server runs in debug mode)."""

    code: Literal["999"]
    data: None
    msg: str
    exception: str
    url: str
    error_code: str
    stacktrace: str | None = None


# -- catalog ------------------------------------------------------------------------------------


class Authority(BaseModel):
    """A granted authority (Spring Security's shape)."""

    authority: str


class UserDetails(BaseModel):
    """The authenticated user."""

    username: str
    authorities: list[Authority]


class Authentication(BaseModel):
    """``GET /user/authentication``."""

    userDetails: UserDetails


class Realization(BaseModel):
    """A cube of a project."""

    type: Literal["CUBE"]
    realization: str


class ProjectBody(BaseModel):
    """A project."""

    uuid: str
    name: str
    realizations: list[Realization]


class SegmentBody(BaseModel):
    """A cube segment."""

    uuid: str
    name: str
    status: str
    date_range_start: int
    date_range_end: int


class CubeBody(BaseModel):
    """A cube with its segments."""

    uuid: str
    name: str
    project: str
    descriptor: str
    status: CubeStatus
    segments: list[SegmentBody]


class DimensionBody(BaseModel):
    """A cube dimension; ``derived`` lists the derived column (Kylin), else null."""

    name: str
    table: str
    column: str
    derived: list[str] | None


class ParameterBody(BaseModel):
    """A measure's parameter."""

    type: str
    value: str


class FunctionBody(BaseModel):
    """A measure's function."""

    expression: str
    parameter: ParameterBody
    returntype: str


class MeasureBody(BaseModel):
    """A cube measure."""

    name: str
    function: FunctionBody


class CubeDescBody(BaseModel):
    """``GET /cube_desc/{cube}/desc``."""

    uuid: str
    name: str
    model_name: str
    description: str
    dimensions: list[DimensionBody]
    measures: list[MeasureBody]


class JoinBody(BaseModel):
    """How a lookup joins the fact table."""

    type: str
    primary_key: list[str]
    foreign_key: list[str]


class LookupBody(BaseModel):
    """A lookup table of a model."""

    table: str
    alias: str
    join: JoinBody


class ModelDimensionBody(BaseModel):
    """The columns a model offers from one table (by alias)."""

    table: str
    columns: list[str]


class PartitionBody(BaseModel):
    """A model's partition column."""

    partition_date_column: str
    partition_date_format: str
    partition_type: str


class ModelBody(BaseModel):
    """A data model."""

    uuid: str
    name: str
    project: str
    fact_table: str
    lookups: list[LookupBody]
    dimensions: list[ModelDimensionBody]
    metrics: list[str]
    partition_desc: PartitionBody | None


class ColumnBody(BaseModel):
    """A column of a source table."""

    column_NAME: str
    type_NAME: str


class TableBody(BaseModel):
    """A source table with its columns."""

    table_SCHEM: str
    table_NAME: str
    columns: list[ColumnBody]


class ClusterNode(BaseModel):
    """A live node of the cluster (SPEC §9)."""

    node_id: str
    host: str
    pid: int
    started: int = Field(description="epoch ms")
    last_heartbeat: int = Field(description="epoch ms")
    running_jobs: int
