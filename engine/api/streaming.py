"""Streaming job routes (SPEC §6), Kylin 5 envelopes ``{"code": "000", "data": ..., "msg": ""}``.

Thin: parse, call the engine's ``StreamingService``, wrap the answer. Mounted under
``/kylin/api`` behind the same authentication and error table as the batch routes. Kylin's
parameter codes ride on ``InvalidStreamingParameter.error_code`` (``errors.kind_of`` reads it):
KE-010043201 for ``job_ids`` without ``project``, KE-010043207 for an unknown action.

The OpenAPI document states exactly what is accepted (patterns, ranges), so that any request
it describes is answered 2xx, 404 or 409: ``job_ids`` is left out of it because it needs
``project`` (a dependency OpenAPI cannot state), and is described in the operation's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.api import schemas, streaming_schemas
from engine.api.deps import EngineDep
from engine.api.schemas import error_responses
from engine.api.views import envelope
from engine.core.errors import CatalogNotFound, InvalidStreamingParameter
from engine.core.states import StreamingJobType, StreamingStatus
from engine.core.streaming_jobs import SORT_KEYS
from engine.facade import Engine
from engine.streaming.query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    StreamingJobQuery,
    record_view,
    stats_view,
)
from engine.streaming.service import MAX_STATS_MINUTES, StreamingService, parse_action

router = APIRouter(responses=error_responses(400, 401))

DEFAULT_STATS_MINUTES: Final = 30
#: the statuses a listed job shows (LAUNCHING_ERROR is listed, and filtered, as ERROR)
LISTED_STATUSES: Final = tuple(s for s in StreamingStatus if s.listed_as == s.value)


def split(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeated and comma separated values as one list (``a,b&x=c`` -> a, b, c); blanks dropped."""
    return tuple(
        part.strip() for value in values or () for part in value.split(",") if part.strip()
    )


def one_or_more(*names: str) -> str:
    """A pattern for an empty value or a comma separated list of ``names``."""
    one = "|".join(names)
    return f"^(({one})(,({one}))*)?$"


JobTypes = Annotated[str, Field(pattern=one_or_more(*StreamingJobType))]
Statuses = Annotated[str, Field(pattern=one_or_more(*LISTED_STATUSES))]


async def streaming_of(request: Request) -> StreamingService:
    """The engine's streaming service; without one the streaming routes do not exist (404)."""
    engine: Engine = request.app.state.engine
    if engine.streaming is None:
        raise StarletteHTTPException(404)
    return engine.streaming


StreamingDep = Annotated[StreamingService, Depends(streaming_of)]


def project_of(engine: Engine, service: StreamingService, name: str | None) -> str | None:
    """The project's catalog spelling (names are case-insensitive); None for no project.

    A project that left the catalog is still known while streaming jobs belong to it;
    any other unknown project is ``CatalogNotFound`` (404).
    """
    if not name:
        return None
    try:
        return engine.catalog.project(name).name
    except CatalogNotFound:
        if service.list_jobs(StreamingJobQuery(project=name, page_size=1)).total_size:
            return name
        raise


@router.get(
    "/streaming_jobs",
    response_model=streaming_schemas.StreamingJobListEnvelope,
    responses=error_responses(404),
    summary="List streaming jobs",
    description=(
        "Filtered, sorted and paged streaming jobs; `total_size` counts every match. List "
        "parameters are repeatable or comma separated. Also `job_ids` (repeatable or comma "
        "separated job ids), which needs `project`: without it the answer is 400 "
        "(KE-010043201)."
    ),
)
async def list_streaming_jobs(
    engine: EngineDep,
    service: StreamingDep,
    model_name: Annotated[str | None, Query(description="case-insensitive substring")] = None,
    model_names: Annotated[list[str] | None, Query(description="exact model aliases")] = None,
    job_types: Annotated[
        list[JobTypes] | None, Query(description="STREAMING_BUILD, STREAMING_MERGE")
    ] = None,
    statuses: Annotated[
        list[Statuses] | None, Query(description="STARTING, RUNNING, STOPPING, ERROR, STOPPED")
    ] = None,
    project: Annotated[str | None, Query(description="project name")] = None,
    page_offset: Annotated[int, Query(ge=0, description="page index")] = 0,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="jobs per page")
    ] = DEFAULT_PAGE_SIZE,
    sort_by: Annotated[
        str | None, Query(pattern=f"^({'|'.join(SORT_KEYS)})?$", description="last_modified")
    ] = None,
    reverse: Annotated[bool, Query(description="descending; nulls sort lowest")] = True,
    job_ids: Annotated[list[str] | None, Query(include_in_schema=False)] = None,
) -> JSONResponse:
    """Filtered, sorted, paged streaming jobs."""
    ids = split(job_ids)
    if ids and not project:
        raise InvalidStreamingParameter.empty("project")
    query = StreamingJobQuery(
        model_name=model_name or None,
        model_names=split(model_names),
        job_types=split(job_types),
        statuses=split(statuses),
        project=project_of(engine, service, project),
        job_ids=ids,
        sort_by=sort_by or SORT_KEYS[0],
        reverse=reverse,
        page_offset=page_offset,
        page_size=page_size,
    )
    return JSONResponse(envelope(service.list_view(query)))


@router.put(
    "/streaming_jobs/status",
    response_model=schemas.Envelope,
    responses=error_responses(404, 409),
    summary="START, STOP, FORCE_STOP or RESTART streaming jobs",
)
async def streaming_job_status(
    engine: EngineDep, service: StreamingDep, body: streaming_schemas.StreamingStatusRequest
) -> JSONResponse:
    """Apply the action to each job in order; the first error stops the rest."""
    project = project_of(engine, service, body.project)
    await service.apply(parse_action(body.action), body.job_ids, project)
    return JSONResponse(envelope(""))


@router.get(
    "/streaming_jobs/records",
    response_model=streaming_schemas.StreamingRecordsEnvelope,
    responses=error_responses(404),
    summary="A streaming job's START/STOP/ERROR records",
)
async def streaming_job_records(
    engine: EngineDep,
    service: StreamingDep,
    job_id: Annotated[str, Query(min_length=1)],
    project: str | None = None,
) -> JSONResponse:
    """The job's records, newest first."""
    records = await service.records(job_id, project_of(engine, service, project))
    return JSONResponse(envelope([record_view(r) for r in records]))


@router.get(
    "/streaming_jobs/stats/{jobId}",
    response_model=streaming_schemas.StreamingStatsEnvelope,
    responses=error_responses(404),
    summary="A streaming job's micro-batch statistics",
)
async def streaming_job_stats(
    engine: EngineDep,
    service: StreamingDep,
    jobId: str,
    time_filter: Annotated[
        int, Query(ge=1, le=MAX_STATS_MINUTES, description="the last N minutes")
    ] = DEFAULT_STATS_MINUTES,
    project: str | None = None,
) -> JSONResponse:
    """Consumption rate, data latency and processing time per micro-batch, newest first."""
    service.get(jobId, project_of(engine, service, project))
    rows = await service.stats(jobId, time_filter)
    return JSONResponse(envelope(stats_view(rows)))


@router.put(
    "/streaming_jobs/params",
    response_model=schemas.Envelope,
    responses=error_responses(404, 409),
    summary="Replace a streaming job's params",
)
async def streaming_job_params(
    engine: EngineDep, service: StreamingDep, body: streaming_schemas.StreamingParamsRequest
) -> JSONResponse:
    """Replace the job's params (only while it is STOPPED or ERROR)."""
    project = project_of(engine, service, body.project)
    await service.update_params(body.job_id, project, body.params)
    return JSONResponse(envelope(""))
