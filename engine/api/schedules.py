"""Scheduled builds over REST (SPEC §11): ``/kylin/api/schedules``. Bare JSON like the rest of
the batch API; every error is Kylin's error body through ``engine.api.errors`` (unknown cube or
schedule 404; bad cron, both or neither of ``cron``/``interval_s``, ``interval_s`` < 1: 400; a
name that exists: 409), and a refused request changes nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.api.deps import EngineDep
from engine.api.schemas import BuildType, error_responses
from engine.core import states
from engine.core.schedules import Schedule

router = APIRouter(responses=error_responses(400, 401))
_NOT_FOUND = error_responses(404)
NAME = r"^[A-Za-z0-9_.-]+$"  #: a schedule's name is a path segment


class ScheduleRequest(BaseModel):
    """``POST /schedules``: exactly one of ``cron`` (UTC) and ``interval_s``."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200, pattern=NAME)
    cube: str = Field(min_length=1, max_length=200)
    cron: str | None = Field(default=None, max_length=200, description="cron expression, UTC")
    interval_s: int | None = Field(default=None, le=10**9, description="seconds, >= 1")
    build_type: BuildType = states.BuildType.BUILD.value
    overlap: Literal["skip", "queue"] = "skip"
    catch_up: Literal["none", "last", "all"] = "none"
    paused: bool = False
    project: str | None = Field(default=None, description="the cube's project (optional)")


class ScheduleBody(BaseModel):
    """A schedule as the API shows it."""

    name: str
    cube: str
    project: str
    cron: str | None
    interval_s: int | None
    build_type: BuildType
    overlap: Literal["skip", "queue"]
    catch_up: Literal["none", "last", "all"]
    paused: bool
    next_fire_time: int | None = Field(description="epoch ms; null while paused")
    last_job_id: str | None


def schedule_view(schedule: Schedule) -> dict[str, Any]:
    """The JSON of ``schedule``."""
    return {
        "name": schedule.name,
        "cube": schedule.cube,
        "project": schedule.project,
        "cron": schedule.cron,
        "interval_s": schedule.interval_s,
        "build_type": schedule.build_type,
        "overlap": schedule.overlap.value,
        "catch_up": schedule.catch_up.value,
        "paused": schedule.paused,
        "next_fire_time": schedule.next_fire_time,
        "last_job_id": schedule.last_job_id,
    }


@router.get("/schedules", response_model=list[ScheduleBody], summary="Schedules")
async def list_schedules(engine: EngineDep) -> JSONResponse:
    """Every schedule, by name."""
    return JSONResponse([schedule_view(s) for s in await engine.ops.schedules.list()])


@router.post(
    "/schedules",
    response_model=ScheduleBody,
    responses=error_responses(404, 409),
    summary="Create a schedule",
)
async def create_schedule(engine: EngineDep, body: ScheduleRequest) -> JSONResponse:
    """A new schedule of the cube's builds; its first run is at the first slot to come."""
    created = await engine.ops.schedules.create(
        body.name, body.cube, cron=body.cron, interval_s=body.interval_s,
        build_type=body.build_type, overlap=body.overlap, catch_up=body.catch_up,
        paused=body.paused, project=body.project,
    )  # fmt: skip
    return JSONResponse(schedule_view(created))


@router.get(
    "/schedules/{name}", response_model=ScheduleBody, responses=_NOT_FOUND, summary="A schedule"
)
async def get_schedule(engine: EngineDep, name: str) -> JSONResponse:
    """The schedule called ``name``."""
    return JSONResponse(schedule_view(await engine.ops.schedules.get(name)))


@router.delete(
    "/schedules/{name}",
    response_model=ScheduleBody,
    responses=_NOT_FOUND,
    summary="Delete a schedule",
)
async def delete_schedule(engine: EngineDep, name: str) -> JSONResponse:
    """Delete the schedule (the jobs it made stay); answers it as it was."""
    return JSONResponse(schedule_view(await engine.ops.schedules.delete(name)))


@router.put(
    "/schedules/{name}/pause",
    response_model=ScheduleBody,
    responses=_NOT_FOUND,
    summary="Pause a schedule",
)
async def pause_schedule(engine: EngineDep, name: str) -> JSONResponse:
    """No runs until resumed (``next_fire_time`` null)."""
    return JSONResponse(schedule_view(await engine.ops.schedules.pause(name)))


@router.put(
    "/schedules/{name}/resume",
    response_model=ScheduleBody,
    responses=_NOT_FOUND,
    summary="Resume a schedule",
)
async def resume_schedule(engine: EngineDep, name: str) -> JSONResponse:
    """Runs again from the next slot to come (paused slots are not caught up)."""
    return JSONResponse(schedule_view(await engine.ops.schedules.resume(name)))
