"""Batch job routes (SPEC §6), Kylin 3 shapes: parse, call the ``Engine``, render with views.

Mounted under ``/kylin/api``. Every error goes through ``engine.api.errors``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BeforeValidator, Field, WithJsonSchema

from engine.api import schemas
from engine.api.deps import EngineDep, RendererDep, UserDep
from engine.api.errors import PATTERN_HINTS
from engine.api.schemas import error_responses
from engine.api.views import JobRenderer, envelope, output_view, overview_view
from engine.core.errors import InvalidRequest, JobNotFound
from engine.core.jobs import Job
from engine.core.states import (
    BULK_OPERATIONS,
    STATE_BY_CODE,
    STATUS_CODES,
    JobStatus,
    State,
    status_code,
)
from engine.core.timefmt import utc
from engine.facade import Engine
from engine.store.ports import JobFilter

router = APIRouter(responses=error_responses(400, 401))

DEFAULT_LIMIT: Final = 30
#: paging values past this are clamped (nothing has that many jobs; SQLite needs 64-bit ints)
MAX_PAGING: Final = 2**53
DAY_MS: Final = 86_400_000
STATUS_CHOICES: Final = "Kylin's codes or the REST names, any case: " + ", ".join(
    f"{code} {name}" for name, code in STATUS_CODES.items()
)
STATUS_HELP: Final = f"repeatable; {STATUS_CHOICES}"
#: a code or a name in any case (a character class per letter: JSON Schema has no flags)
STATUS_PATTERN: Final = "^({})?$".format(
    "|".join(
        [str(code) for code in STATUS_CODES.values()]
        + ["".join(f"[{c.upper()}{c.lower()}]" for c in name) for name in STATUS_CODES]
    )
)
StatusValue = Annotated[str, Field(pattern=STATUS_PATTERN)]
PATTERN_HINTS["status"] = STATUS_CHOICES


def _paging_value(value: object) -> object:
    """``"offset="`` means "no value" (as in Kylin's UI); otherwise digits only (no "+1.0")."""
    if value == "":
        return None
    if isinstance(value, str) and not value.isdigit():
        raise ValueError("must be a whole number, 0 or more")
    return value


#: paging numbers: integers; an empty value means the default (and is documented so)
Paging = Annotated[
    Annotated[int, Field(ge=0)] | None,
    BeforeValidator(_paging_value),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "maxLength": 0}]}
    ),
]


def _job_response(renderer: JobRenderer, engine: Engine, job: Job) -> Response:
    return Response(renderer.render(job, engine.now_ms()), media_type="application/json")


# -- list and overview ------------------------------------------------------------------------


def modified_since(time_filter: int, now: int) -> int | None:
    """Kylin's ``timeFilter``: 0 current day (UTC), 1 last day, 2 week, 3 month, 4 year, 5 all."""
    moment = utc(now)
    if time_filter == 0:
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(midnight.timestamp() * 1000)
    if time_filter == 1:
        return now - DAY_MS
    if time_filter == 2:
        return now - 7 * DAY_MS
    if time_filter == 3:
        return _months_back(moment, 1)
    if time_filter == 4:
        return _months_back(moment, 12)
    return None


def _months_back(moment: dt.datetime, months: int) -> int:
    total = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return int(moment.replace(year=year, month=month + 1, day=day).timestamp() * 1000)


def _paging(value: int | None, default: int) -> int:
    return default if value is None else min(value, MAX_PAGING)


def _codes(status: list[str] | None) -> list[int]:
    codes = []
    for value in status or ():
        if not value:
            continue  # an empty value: no filter
        code = status_code(value)
        if code is None:
            raise InvalidRequest(f"Unknown job status {value!r}: use {STATUS_CHOICES}")
        codes.append(code)
    return codes


def job_filter(
    now: int,
    cube: str | None,
    project: str | None,
    status: list[str] | None,
    offset: int | None,
    limit: int | None,
    time_filter: str | None,
) -> JobFilter | None:
    """The store query for ``GET /jobs``; None when the status filter can match nothing."""
    states: frozenset[State] | None = None
    codes = _codes(status)
    if codes:
        states = frozenset(STATE_BY_CODE[c] for c in codes if c in STATE_BY_CODE)
        if not states:
            return None  # NEW (0) only: no job is ever NEW
    return JobFilter(
        cube=cube or None,
        project=project or None,
        states=states,
        modified_since=modified_since(int(time_filter), now) if time_filter else None,
        offset=_paging(offset, 0),
        limit=_paging(limit, DEFAULT_LIMIT),
    )


@router.get("/jobs/overview", response_model=schemas.Overview, summary="Jobs per status")
async def overview(engine: EngineDep) -> JSONResponse:
    """How many jobs are in each REST status."""
    return JSONResponse(overview_view(await engine.overview()))


@router.get("/jobs", response_model=list[schemas.JobInstance], summary="List jobs")
async def list_jobs(
    engine: EngineDep,
    renderer: RendererDep,
    cubeName: Annotated[str | None, Query(description="case-insensitive substring")] = None,
    projectName: Annotated[str | None, Query(description="exact project name")] = None,
    status: Annotated[
        list[StatusValue] | None,
        Query(
            description=STATUS_HELP,
            examples=[["4", "8"], [str(JobStatus.FINISHED), str(JobStatus.ERROR)]],
        ),
    ] = None,
    offset: Annotated[Paging, Query(description="default 0", examples=[0])] = None,
    limit: Annotated[Paging, Query(description="default 30", examples=[30])] = None,
    timeFilter: Annotated[
        str | None,
        Query(
            pattern=r"^[0-5]?$",
            description="0 current day, 1 last day, 2 last week, "
            "3 last month, 4 last year, 5 all (default)",
        ),
    ] = None,
) -> Response:
    """Jobs, newest change first; empty values mean "no filter" as in Kylin's UI."""
    now = engine.now_ms()
    query = job_filter(now, cubeName, projectName, status, offset, limit, timeFilter)
    jobs = await engine.list(query) if query is not None else []
    body = b",".join(renderer.render(job, now) for job in jobs)
    return Response(b"[" + body + b"]", media_type="application/json")


# -- bulk actions (Kylin 5) -------------------------------------------------------------------

Action = Callable[[Engine, str], Awaitable[Job]]
#: each bulk operation is the Engine method of the same name (resume, discard, pause, restart)
BULK_ACTIONS: Final[dict[str, Action]] = {
    op: getattr(Engine, op.value.lower()) for op in BULK_OPERATIONS
}


@router.put(
    "/jobs/status",
    response_model=schemas.Envelope,
    responses=error_responses(404, 409),
    summary="Bulk action (Kylin 5)",
)
async def bulk_status(engine: EngineDep, body: schemas.JobStatusRequest) -> JSONResponse:
    """RESUME, DISCARD, PAUSE or RESTART each job in order; the first error stops the rest."""
    if body.project is not None:
        project = engine.catalog.project(body.project).name
    action = BULK_ACTIONS[body.action]
    for job_id in body.job_ids:
        if body.project is not None:
            job = await engine.get(job_id)
            if job.project.lower() != project.lower():
                raise JobNotFound(job_id)
        await action(engine, job_id)
    return JSONResponse(envelope(""))


# -- one job ----------------------------------------------------------------------------------

_ONE = error_responses(404)
_CHANGE = error_responses(404, 409)


@router.get("/jobs/{jobId}", response_model=schemas.JobInstance, responses=_ONE)
async def get_job(engine: EngineDep, renderer: RendererDep, jobId: str) -> Response:
    """The job with its steps."""
    return _job_response(renderer, engine, await engine.get(jobId))


@router.put("/jobs/{jobId}/resume", response_model=schemas.JobInstance, responses=_CHANGE)
async def resume_job(engine: EngineDep, renderer: RendererDep, jobId: str) -> Response:
    """Resume an ERROR or STOPPED job at its first ERROR/STOPPED step."""
    return _job_response(renderer, engine, await engine.resume(jobId))


@router.put("/jobs/{jobId}/cancel", response_model=schemas.JobInstance, responses=_CHANGE)
async def cancel_job(engine: EngineDep, renderer: RendererDep, jobId: str) -> Response:
    """Discard the job; a running step is interrupted."""
    return _job_response(renderer, engine, await engine.discard(jobId))


@router.put("/jobs/{jobId}/pause", response_model=schemas.JobInstance, responses=_CHANGE)
async def pause_job(engine: EngineDep, renderer: RendererDep, jobId: str) -> Response:
    """Pause a PENDING or RUNNING job; its current step re-runs on resume."""
    return _job_response(renderer, engine, await engine.pause(jobId))


@router.put(
    "/jobs/{jobId}/steps/{stepId}/rollback",
    response_model=schemas.JobInstance,
    responses=_CHANGE,
)
async def rollback_job(
    engine: EngineDep, renderer: RendererDep, jobId: str, stepId: str
) -> Response:
    """Reset the step and every later one to PENDING (padded or unpadded step id)."""
    return _job_response(renderer, engine, await engine.rollback(jobId, stepId))


@router.delete("/jobs/{jobId}/drop", response_model=schemas.JobInstance, responses=_CHANGE)
async def drop_job(engine: EngineDep, renderer: RendererDep, jobId: str) -> Response:
    """Delete a FINISHED or DISCARDED job; answers the job as it was."""
    return _job_response(renderer, engine, await engine.drop(jobId))


@router.get(
    "/jobs/{jobId}/steps/{stepId}/output",
    response_model=schemas.StepOutputBody,
    responses=_ONE,
)
async def step_output(engine: EngineDep, jobId: str, stepId: str) -> JSONResponse:
    """The step's latest output (live while it runs); null before its first run."""
    return JSONResponse(output_view(await engine.step_output(jobId, stepId)))


# -- builds -----------------------------------------------------------------------------------

_BUILD = error_responses(404, 409)


async def _submit(
    renderer: JobRenderer,
    engine: Engine,
    user: str,
    cube: str,
    build_type: str,
    start: int,
    end: int,
    priority: int,
) -> Response:
    job = await engine.submit_build(
        cube, build_type, start, end, submitter=user, priority_offset=priority
    )
    return _job_response(renderer, engine, job)


@router.put("/cubes/{cubeName}/build", response_model=schemas.JobInstance, responses=_BUILD)
@router.put("/cubes/{cubeName}/rebuild", response_model=schemas.JobInstance, responses=_BUILD)
async def build_cube(
    engine: EngineDep,
    renderer: RendererDep,
    user: UserDep,
    cubeName: str,
    body: schemas.BuildRequest,
) -> Response:
    """Submit a BUILD, MERGE or REFRESH over ``[startTime, endTime)``; the job is PENDING."""
    return await _submit(
        renderer, engine, user.name, cubeName, body.buildType, body.startTime, body.endTime,
        body.priorityOffset,
    )  # fmt: skip


@router.put("/cubes/{cubeName}/build2", response_model=schemas.JobInstance, responses=_BUILD)
@router.put("/cubes/{cubeName}/rebuild2", response_model=schemas.JobInstance, responses=_BUILD)
async def build_cube_by_offset(
    engine: EngineDep,
    renderer: RendererDep,
    user: UserDep,
    cubeName: str,
    body: schemas.Build2Request,
) -> Response:
    """Submit a job over the source offset range ``[sourceOffsetStart, sourceOffsetEnd)``."""
    return await _submit(
        renderer, engine, user.name, cubeName, body.buildType, body.sourceOffsetStart,
        body.sourceOffsetEnd, body.priorityOffset,
    )  # fmt: skip
