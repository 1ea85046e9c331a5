"""Catalog reads (SPEC §6, §7) in Kylin 3 shapes, and ``GET /user/authentication``.

Enough for Kylin clients that look a cube up before building it (kylinpy's
``get_datasource``: cube desc, model, tables and columns agree with each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from engine.api import schemas
from engine.api.deps import EngineDep, UserDep
from engine.api.jobs import MAX_PAGING, Paging
from engine.api.schemas import error_responses
from engine.catalog import Catalog, Cube, Model, Project, Table
from engine.config.settings import User
from engine.core.jobs import Segment
from engine.core.states import cube_status

router = APIRouter(responses=error_responses(400, 401))

T = TypeVar("T")
_NOT_FOUND = error_responses(404)
Digits = Annotated[Paging, Query()]
#: kylinpy and Kylin's UI ask for pages this large: "everything"
DEFAULT_PAGE_SIZE: Final = 100_000


def page(
    items: Sequence[T],
    offset: int | None,
    limit: int | None,
    page_offset: int | None = None,
    page_size: int | None = None,
) -> list[T]:
    """``offset``/``limit`` (items) when given, else ``pageOffset``/``pageSize`` (pages)."""
    if offset or limit:
        start = min(offset or 0, MAX_PAGING)
        count = min(limit, MAX_PAGING) if limit else len(items)
    else:
        count = min(page_size, MAX_PAGING) if page_size else DEFAULT_PAGE_SIZE
        start = min((page_offset or 0) * count, MAX_PAGING)
    return list(items[start : start + count])


def _project_name(catalog: Catalog, name: str | None) -> str | None:
    """The canonical name of ``name`` (404 for an unknown project); None stays None."""
    return catalog.project(name).name if name else None


# -- views ------------------------------------------------------------------------------------


def project_view(project: Project, cubes: Sequence[Cube]) -> dict[str, Any]:
    """A project and its cubes (Kylin's ``realizations``)."""
    return {
        "uuid": project.uuid,
        "name": project.name,
        "realizations": [{"type": "CUBE", "realization": c.name} for c in cubes],
    }


def segment_view(segment: Segment) -> dict[str, Any]:
    """A cube segment."""
    return {
        "uuid": segment.uuid,
        "name": segment.name,
        "status": segment.status,
        "date_range_start": segment.start,
        "date_range_end": segment.end,
    }


def cube_view(cube: Cube, segments: Sequence[Segment]) -> dict[str, Any]:
    """A cube: READY once a segment is READY, DISABLED before (Kylin's rule)."""
    return {
        "uuid": cube.uuid,
        "name": cube.name,
        "project": cube.project,
        "descriptor": cube.name,
        "status": cube_status(s.status for s in segments),
        "segments": [segment_view(s) for s in segments],
    }


def cube_desc_view(cube: Cube) -> dict[str, Any]:
    """``/cube_desc/{cube}/desc``: dimensions (``derived`` as Kylin lists it) and measures."""
    return {
        "uuid": cube.uuid,
        "name": cube.name,
        "model_name": cube.model,
        "description": cube.description,
        "dimensions": [
            {
                "name": d.name,
                "table": d.table,
                "column": d.column,
                "derived": [d.column] if d.derived else None,
            }
            for d in cube.dimensions
        ],
        "measures": [
            {
                "name": m.name,
                "function": {
                    "expression": m.expression,
                    "parameter": {"type": m.parameter_type, "value": m.parameter_value},
                    "returntype": m.returntype,
                },
            }
            for m in cube.measures
        ],
    }


def model_view(model: Model) -> dict[str, Any]:
    """A data model in Kylin 3's shape."""
    partition = model.partition
    return {
        "uuid": model.uuid,
        "name": model.name,
        "project": model.project,
        "fact_table": model.fact_table,
        "lookups": [
            {
                "table": lk.table,
                "alias": lk.alias,
                "join": {
                    "type": lk.join.type,
                    "primary_key": list(lk.join.primary_key),
                    "foreign_key": list(lk.join.foreign_key),
                },
            }
            for lk in model.lookups
        ],
        "dimensions": [{"table": d.table, "columns": list(d.columns)} for d in model.dimensions],
        "metrics": list(model.metrics),
        "partition_desc": None
        if partition is None
        else {
            "partition_date_column": partition.column,
            "partition_date_format": partition.date_format,
            "partition_type": partition.type,
        },
    }


def table_view(table: Table) -> dict[str, Any]:
    """A source table with its columns (JDBC-style names, as Kylin)."""
    return {
        "table_SCHEM": table.schema,
        "table_NAME": table.name,
        "columns": [{"column_NAME": c.name, "type_NAME": c.type} for c in table.columns],
    }


def authentication_view(user: User) -> dict[str, Any]:
    """``/user/authentication``: the user and its authorities."""
    authorities = [{"authority": a} for a in user.authorities]
    return {"userDetails": {"username": user.name, "authorities": authorities}}


# -- routes -----------------------------------------------------------------------------------


@router.get("/user/authentication", response_model=schemas.Authentication, summary="Current user")
async def authentication(user: UserDep) -> JSONResponse:
    """The authenticated user and its authorities."""
    return JSONResponse(authentication_view(user))


@router.get("/projects", response_model=list[schemas.ProjectBody], summary="Projects")
async def projects(
    engine: EngineDep,
    pageOffset: Digits = None,
    pageSize: Digits = None,
    offset: Digits = None,
    limit: Digits = None,
) -> JSONResponse:
    """Every project with its cubes."""
    catalog = engine.catalog
    views = [project_view(p, catalog.cubes_of(p.name)) for p in catalog.projects]
    return JSONResponse(page(views, offset, limit, pageOffset, pageSize))


@router.get("/cubes", response_model=list[schemas.CubeBody], responses=_NOT_FOUND, summary="Cubes")
async def cubes(
    engine: EngineDep,
    cubeName: str | None = None,
    projectName: str | None = None,
    modelName: str | None = None,
    exactMatch: bool = True,
    offset: Digits = None,
    limit: Digits = None,
    pageOffset: Digits = None,
    pageSize: Digits = None,
) -> JSONResponse:
    """Cubes with their segments; ``cubeName`` matches exactly (case-insensitive) by default."""
    found = engine.catalog.cubes_of(_project_name(engine.catalog, projectName))
    if cubeName:
        wanted = cubeName.lower()
        found = tuple(
            c
            for c in found
            if (c.name.lower() == wanted if exactMatch else wanted in c.name.lower())
        )
    if modelName:
        found = tuple(c for c in found if c.model.lower() == modelName.lower())
    chosen = page(found, offset, limit, pageOffset, pageSize)
    views = [cube_view(c, await engine.segments(c.name)) for c in chosen]
    return JSONResponse(views)


@router.get(
    "/cube_desc/{cubeName}/desc",
    response_model=schemas.CubeDescBody,
    responses=_NOT_FOUND,
    summary="Cube descriptor",
)
async def cube_desc(engine: EngineDep, cubeName: str) -> JSONResponse:
    """The cube's dimensions and measures."""
    return JSONResponse(cube_desc_view(engine.catalog.cube(cubeName)))


@router.get(
    "/models", response_model=list[schemas.ModelBody], responses=_NOT_FOUND, summary="Models"
)
async def models(
    engine: EngineDep,
    projectName: str | None = None,
    modelName: str | None = None,
    pageOffset: Digits = None,
    pageSize: Digits = None,
    offset: Digits = None,
    limit: Digits = None,
) -> JSONResponse:
    """Data models, optionally of one project or one name."""
    found = engine.catalog.models_of(_project_name(engine.catalog, projectName))
    if modelName:
        found = tuple(m for m in found if m.name.lower() == modelName.lower())
    views = [model_view(m) for m in page(found, offset, limit, pageOffset, pageSize)]
    return JSONResponse(views)


@router.get(
    "/tables_and_columns",
    response_model=list[schemas.TableBody],
    responses=_NOT_FOUND,
    summary="Tables and columns",
)
async def tables_and_columns(engine: EngineDep, project: str | None = None) -> JSONResponse:
    """The source tables of a project (every project when none is named)."""
    tables = engine.catalog.tables_of(_project_name(engine.catalog, project))
    return JSONResponse([table_view(t) for t in tables])


# -- segment management (SPEC §6.1) ---------------------------------------------------------


@router.delete(
    "/cubes/{cubeName}/segs/{segmentName}",
    response_model=schemas.CubeBody,
    responses=error_responses(404, 409),
    summary="Delete a segment",
)
async def delete_segment(engine: EngineDep, cubeName: str, segmentName: str) -> JSONResponse:
    """Delete the cube's first or last segment (as Kylin allows); 409 while a job uses it.

    Answers the cube without that segment.
    """
    cube = engine.catalog.cube(cubeName)
    return JSONResponse(cube_view(cube, await engine.delete_segment(cube.name, segmentName)))


@router.put(
    "/cubes/{cubeName}/purge",
    response_model=schemas.CubeBody,
    responses=error_responses(404, 409),
    summary="Purge a cube",
)
async def purge_cube(engine: EngineDep, cubeName: str) -> JSONResponse:
    """Delete every segment of the cube; 409 while one of its jobs is unfinished
    (PENDING, RUNNING, STOPPED or ERROR). Answers the cube with no segments."""
    cube = engine.catalog.cube(cubeName)
    return JSONResponse(cube_view(cube, await engine.purge(cube.name)))
