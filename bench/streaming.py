"""``GET /streaming_jobs`` over 10,000 stored streaming jobs: filtered, sorted by data latency.

The jobs (5,000 models × build + merge) are written through ``SqliteStreamingStore.save``; they
rest in STOPPED, ERROR or LAUNCHING_ERROR, so that starting on them relaunches nothing.

``http_list_latency`` times ``GET /kylin/api/streaming_jobs`` through a real ``kjobs serve`` on
that file (its engine loads the jobs at start). Where the server has no such route (404),
``RouteMissing`` is raised and ``list_latency`` times the call the route makes, in process:
``StreamingService.list_view`` (filter, sort and page the in-memory jobs, render the page).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Final

import anyio

from bench.common import percentile
from bench.server import fetch, get_request, kjobs_serve, sequential
from engine.clock import SystemClock, monotonic
from engine.config.settings import StreamingSettings
from engine.core import streaming as core
from engine.core.states import StreamingJobType, StreamingStatus
from engine.core.streaming import StreamingJob
from engine.store.ports import StreamingWrite
from engine.store.sqlite.streaming import SqliteStreamingStore
from engine.streaming.query import StreamingJobQuery
from engine.streaming.service import StreamingService
from engine.streaming.source import StreamingModelSpec

PROJECTS: Final = 10
RESTING: Final = (StreamingStatus.STOPPED, StreamingStatus.ERROR, StreamingStatus.LAUNCHING_ERROR)
SAVE_CHUNK: Final = 500

#: the list queries, timed round-robin; each sorts by data latency and pages
QUERIES: Final = (
    StreamingJobQuery(sort_by="data_latency", page_offset=0, page_size=10),
    StreamingJobQuery(project="project_3", statuses=("ERROR",), sort_by="data_latency",
                      page_offset=2, page_size=10),
    StreamingJobQuery(model_name="model_04", job_types=("STREAMING_BUILD",),
                      sort_by="data_latency", reverse=False, page_size=20),
    StreamingJobQuery(statuses=("STOPPED", "ERROR"), sort_by="data_latency", page_offset=50,
                      page_size=50),
)  # fmt: skip


def models(count: int) -> list[StreamingModelSpec]:
    """``count`` streaming models over ``PROJECTS`` projects."""
    return [
        StreamingModelSpec(
            model_id=f"m{index:05d}",
            alias=f"model_{index:05d}",
            project=f"project_{index % PROJECTS}",
            fact_table="SSB.LINEORDER",
            topic=f"topic_{index}",
            partition_column="LINEORDER.LO_ORDERDATE",
        )
        for index in range(count)
    ]


def jobs_of(specs: list[StreamingModelSpec], seed: int = 6) -> list[StreamingJob]:
    """A build and a merge job per model, resting, with a data latency on the builds."""
    rng = random.Random(seed)
    now = SystemClock().now_ms()
    out = []
    for spec in specs:
        for job_type in StreamingJobType:
            job = core.new_job(
                spec.model_id, job_type, now - rng.randrange(86_400_000),
                model_alias=spec.alias, project=spec.project, owner=spec.owner, params={},
                fact_table=spec.fact_table, subscribe=spec.topic,
            )  # fmt: skip
            latency = rng.randrange(5_000, 120_000) if rng.random() < 0.9 else None
            out.append(
                job.evolve(
                    status=rng.choice(RESTING),
                    data_latency=latency if job_type is StreamingJobType.STREAMING_BUILD else None,
                    last_record_time=job.create_time + rng.randrange(3_600_000),
                )
            )
    return out


ROUTE: Final = "/kylin/api/streaming_jobs"
#: ``QUERIES`` as query strings of ``GET /kylin/api/streaming_jobs``
HTTP_QUERIES: Final = (
    "sort_by=data_latency&page_offset=0&page_size=10",
    "project=project_3&statuses=ERROR&sort_by=data_latency&page_offset=2&page_size=10",
    "model_name=model_04&job_types=STREAMING_BUILD&sort_by=data_latency&reverse=false&page_size=20",
    "statuses=STOPPED&statuses=ERROR&sort_by=data_latency&page_offset=50&page_size=50",
)


class RouteMissing(RuntimeError):
    """The server has no ``GET /kylin/api/streaming_jobs``."""


def http_list_latency(workdir: Path, jobs: int = 10_000, rounds: int = 50) -> dict[str, Any]:
    """Store ``jobs`` streaming jobs, serve them, time ``HTTP_QUERIES`` × ``rounds``."""
    path = workdir / "streaming-http.sqlite"
    fill_s = anyio.run(_fill, path, jobs)
    with kjobs_serve(path, workdir) as server:
        requests = [get_request(server.host, server.port, f"{ROUTE}?{q}") for q in HTTP_QUERIES]
        first = anyio.run(sequential, server.host, server.port, requests)  # warm-up
        if any(status == 404 for status, _ in first):
            raise RouteMissing("GET /kylin/api/streaming_jobs answered 404")
        answers = anyio.run(sequential, server.host, server.port, requests * rounds)
        body = anyio.run(fetch, server.host, server.port, f"{ROUTE}?{HTTP_QUERIES[0]}")
    total = int(json.loads(body)["data"]["total_size"])
    if total < jobs:
        raise RuntimeError(f"the server lists {total} streaming jobs, {jobs} were stored")
    bad = [status for status, _ in answers if status != 200]
    if bad:
        raise RuntimeError(f"GET /streaming_jobs answered {bad[0]}")
    per_query = {
        query: {
            "p50_ms": percentile([ms for _, ms in answers[i :: len(HTTP_QUERIES)]], 50),
            "p99_ms": percentile([ms for _, ms in answers[i :: len(HTTP_QUERIES)]], 99),
        }
        for i, query in enumerate(HTTP_QUERIES)
    }
    every = [ms for _, ms in answers]
    return {
        "p50_ms": percentile(every, 50),
        "p99_ms": percentile(every, 99),
        "jobs": jobs,
        "listed_total": total,
        "fill_s": fill_s,
        "requests": len(every),
        "via": "kjobs serve (HTTP, one client)",
        "queries": per_query,
    }


async def _fill(path: Path, jobs: int) -> float:
    store = SqliteStreamingStore(path)
    await store.open()
    try:
        started = monotonic()
        await _save_all(store, jobs_of(models(jobs // 2)))
        return monotonic() - started
    finally:
        await store.close()


async def list_latency(workdir: Path, jobs: int = 10_000, rounds: int = 50) -> dict[str, Any]:
    """Store ``jobs`` streaming jobs, start a service on them, time ``QUERIES`` × ``rounds``."""
    specs = models(jobs // 2)
    store = SqliteStreamingStore(workdir / "streaming.sqlite")
    await store.open()
    try:
        started = monotonic()
        await _save_all(store, jobs_of(specs))
        fill_s = monotonic() - started
        service = StreamingService(store, SystemClock(), StreamingSettings(), specs)
        async with anyio.create_task_group() as tg:
            await service.start(tg)
            total = service.list_jobs(StreamingJobQuery(page_size=1)).total_size
            timings = _time_queries(service, rounds)
            await service.shutdown()
    finally:
        await store.close()
    per_query = {
        _describe(q): {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)}
        for q, ms in zip(QUERIES, timings, strict=True)
    }
    every = [ms for column in timings for ms in column]
    return {
        "p50_ms": percentile(every, 50),
        "p99_ms": percentile(every, 99),
        "jobs": total,
        "fill_s": fill_s,
        "requests": len(every),
        "via": "StreamingService.list_view in process (no REST route yet)",
        "queries": per_query,
    }


async def _save_all(store: SqliteStreamingStore, jobs: list[StreamingJob]) -> None:
    for first in range(0, len(jobs), SAVE_CHUNK):
        async with anyio.create_task_group() as tg:
            for job in jobs[first : first + SAVE_CHUNK]:
                tg.start_soon(store.save, StreamingWrite(job, None))


def _time_queries(service: StreamingService, rounds: int) -> list[list[float]]:
    timings: list[list[float]] = [[] for _ in QUERIES]
    service.list_view(QUERIES[0])  # warm-up
    for _ in range(rounds):
        for index, query in enumerate(QUERIES):
            started = monotonic()
            service.list_view(query)
            timings[index].append((monotonic() - started) * 1000.0)
    return timings


def _describe(query: StreamingJobQuery) -> str:
    parts = [f"{name}={value}" for name, value in (
        ("project", query.project), ("statuses", ",".join(query.statuses)),
        ("model_name", query.model_name), ("job_types", ",".join(query.job_types)),
    ) if value]  # fmt: skip
    parts.append(f"sort_by={query.sort_by}{'' if query.reverse else ' asc'}")
    parts.append(f"page={query.page_offset}x{query.page_size}")
    return "&".join(parts)
