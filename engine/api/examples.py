"""Examples of the request and response bodies, put into the OpenAPI document (``/docs`` shows
them).

The answers are not typed by hand: each is made from real objects by the same view function
the route answers with — a job planned from the engine's catalog by the core's ``submit``, the
catalog's own cube, model, tables and streaming models, a streaming job as the core creates it
— so they cannot drift from what the server says. ``tests/api/test_openapi_examples.py`` checks
that every request body and every JSON 2xx answer of ``/openapi.json`` has one, and that each
validates against its own schema.
"""

from __future__ import annotations

from typing import Any, Final

from engine.api.catalog import (
    authentication_view,
    cube_desc_view,
    cube_view,
    model_view,
    project_view,
    table_view,
)
from engine.api.cluster import node_view
from engine.api.errors import error_body, kind_of
from engine.api.schedules import schedule_view
from engine.api.views import envelope, job_view, output_view, overview_view
from engine.batch.output import StepOutput
from engine.catalog import Catalog, Cube, StreamingModel
from engine.core import operations as ops
from engine.core.errors import JobNotFound
from engine.core.jobs import Segment
from engine.core.schedules import Schedule
from engine.core.segments import plan_segment
from engine.core.states import (
    STATUS_CODES,
    BuildType,
    Operation,
    RecordAction,
    SegmentStatus,
    StreamingAction,
    StreamingJobType,
    StreamingStatus,
)
from engine.core.streaming_jobs import BatchStats, StreamingRecord, new_job
from engine.core.streaming_params import default_params
from engine.facade import Engine
from engine.store.ports import NodeInfo
from engine.streaming.query import ModelView, listed_job, partition_desc, record_view, stats_view

BUILD: Final = BuildType.BUILD.value
JOB_ID: Final = "fd328e06-6bb2-4916-9afb-d1f4599900e7"
SEGMENT_ID: Final = "981e22ee-f94a-4ca1-9b19-d5b4df01b326"
NOW: Final = 1704157200000  #: 2024-01-02 01:00:00 UTC, an hour after the example's range
DAY: Final = (1704067200000, 1704153600000)  #: 2024-01-01, the range the examples build
SERVER: Final = "http://127.0.0.1:7070/kylin/api"
MINUTE: Final = 60_000

Examples = dict[str, Any]


def build_examples(engine: Engine) -> Examples:
    """Schema name -> one example body, from ``engine``'s catalog and settings."""
    catalog, version = engine.catalog, engine.settings.version
    found: Examples = {
        "Envelope": envelope(),
        "Overview": overview_view(dict(zip(STATUS_CODES, (0, 1, 2, 14, 1, 0, 0), strict=True))),
        "ErrorBody": _error(),
        "Authentication": authentication_view(engine.settings.users[0]),
        "ClusterNode": node_view(NodeInfo("node-1", "myhost", 16758, NOW - 3_600_000, NOW, 1)),
    }
    if catalog.projects:
        project = catalog.projects[0]
        found["ProjectBody"] = project_view(project, catalog.cubes_of(project.name))
    if catalog.tables:
        found["TableBody"] = table_view(catalog.tables[0])
    if catalog.models:
        found["ModelBody"] = model_view(catalog.models[0])
    if catalog.cubes:
        found |= _cube_examples(catalog, catalog.cubes[0], version)
    if catalog.streaming_models:
        found |= _streaming_examples(engine, catalog.streaming_models[0])
    return found


def _error() -> dict[str, Any]:
    """What ``PUT /jobs/nope/resume`` answers."""
    exc = JobNotFound("nope")
    kind = kind_of(exc)
    assert kind is not None
    return error_body(str(exc), f"{SERVER}/jobs/nope/resume", kind.code)


def _cube_examples(catalog: Catalog, cube: Cube, version: str) -> Examples:
    """The cube, its descriptor, a day's BUILD of it as submitted, and the builds' requests."""
    segment = plan_segment(SEGMENT_ID, cube.name, BUILD, *DAY, [])
    workdir = f"/var/lib/kjobs/work/{JOB_ID}"
    specs = catalog.expand(cube.name, BUILD, job_id=JOB_ID, segment=segment, workdir=workdir)
    decision = ops.submit(JOB_ID, cube.project, cube.name, BUILD, segment, specs, "ADMIN", NOW)
    job = decision.job
    built = Segment(
        segment.uuid, segment.name, cube.name, segment.start, segment.end, SegmentStatus.READY
    )
    return {
        "BuildRequest": {"startTime": DAY[0], "endTime": DAY[1], "buildType": BUILD},
        "Build2Request": {"sourceOffsetStart": 0, "sourceOffsetEnd": 1000, "buildType": BUILD},
        "JobStatusRequest": {
            "action": Operation.RESUME.value,
            "job_ids": [JOB_ID],
            "project": cube.project,
        },
        "ScheduleRequest": {
            "name": f"{cube.name}_hourly",
            "cube": cube.name,
            "cron": "0 * * * *",
            "build_type": BUILD,
        },
        "ScheduleBody": schedule_view(
            Schedule(
                f"{cube.name}_hourly",
                cube.name,
                cube.project,
                "0 * * * *",
                None,
                next_fire_time=NOW + 60 * MINUTE,
                last_job_id=JOB_ID,
            )
        ),
        "JobInstance": job_view(job, NOW, version),
        "StepOutputBody": output_view(
            StepOutput(job.id, job.steps[0].id, f"{job.steps[0].spec.exec_cmd}\n")
        ),
        "CubeBody": cube_view(cube, [built]),
        "CubeDescBody": cube_desc_view(cube),
    }


def _streaming_examples(engine: Engine, model: StreamingModel) -> Examples:
    """The model's build job, running for ten minutes, and what the streaming routes answer."""
    job_type = StreamingJobType.STREAMING_BUILD
    params = {**default_params(job_type, engine.settings.streaming), **model.params}
    started = NOW - 10 * MINUTE
    created = new_job(
        model.model_id,
        job_type,
        started - MINUTE,
        model_alias=model.alias,
        project=model.project,
        owner=model.owner,
        params=params,
        fact_table=model.fact_table,
        subscribe=model.topic,
    )
    batches = [
        BatchStats(created.uuid, model.project, 3000, 100, 900, 1200, 31_200, NOW - n * 30_000)
        for n in range(3)
    ]
    job = created.evolve(
        status=StreamingStatus.RUNNING,
        last_modified=NOW,
        mvcc=3,
        last_update_time=NOW,
        last_start_time=started,
        last_batch_count=batches[0].batch_row_num,
        job_execution_id=1,
        action=StreamingAction.START.value,
        last_record_time=started,
        data_latency=batches[0].min_data_latency,
    )
    partition = model.partition
    desc = partition_desc(model.fact_table, partition.column, partition.date_format)
    view = ModelView(model.broken, model.model_indexes, desc)
    listed = listed_job(job, NOW, version=engine.settings.version, model=view)
    start = StreamingRecord(job.uuid, model.project, RecordAction.START, started, id=1)
    return {
        "StreamingStatusRequest": {
            "project": model.project,
            "action": StreamingAction.START.value,
            "job_ids": [job.uuid],
        },
        "StreamingParamsRequest": {
            "job_id": job.uuid,
            "project": model.project,
            "params": dict(job.params),
        },
        "StreamingJobListEnvelope": envelope(
            {"value": [listed], "offset": 0, "limit": 10, "total_size": 1}
        ),
        "StreamingRecordsEnvelope": envelope([record_view(start)]),
        "StreamingStatsEnvelope": envelope(stats_view(batches)),
    }


def add_examples(document: dict[str, Any], examples: Examples) -> None:
    """Put each example into its component schema (OpenAPI 3.1: JSON Schema ``examples``), and
    a list of one into each JSON answer that is a list of such a component."""
    schemas = document.get("components", {}).get("schemas", {})
    for name, example in examples.items():
        if name in schemas:
            schemas[name]["examples"] = [example]
    for media in _json_media(document):
        item = _ref_name(media.get("schema", {}).get("items", {}))
        if "example" not in media and item in examples:
            media["example"] = [examples[item]]


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _json_media(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON media objects of every request body and 2xx answer."""
    found: list[dict[str, Any]] = []
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            bodies = [operation.get("requestBody", {})]
            bodies += [r for code, r in operation.get("responses", {}).items() if code[0] == "2"]
            for body in bodies:
                found += [m for t, m in body.get("content", {}).items() if "json" in t]
    return found
