"""The REST server under load: ``GET /kylin/api/jobs/{id}`` from 50 concurrent clients.

A real ``kjobs serve`` process (``bench.server``) on a fresh SQLite file; one sample-cube build
(18 steps, ~22 KB stored) is submitted through the API and run to its end (time scale 1000),
then every client fetches that job back to back over its own keep-alive connection.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Final

from bench.common import percentile
from bench.memory import rss_mb
from bench.server import fetch, get_request, kjobs_serve, load
from engine.clock import monotonic

API: Final = "/kylin/api"
BUILD_BODY: Final = json.dumps({"startTime": 0, "endTime": 86_400_000, "buildType": "BUILD"})
FINAL_STATUSES: Final = frozenset({"FINISHED", "ERROR", "DISCARDED", "STOPPED"})
WAIT_S: Final = 120.0


def get_job_load(
    workdir: Path, clients: int = 50, duration_s: float = 5.0, warmup_s: float = 1.0
) -> dict[str, Any]:
    """Requests per second and latency percentiles of GET job under ``clients`` clients."""
    with kjobs_serve(workdir / "api.sqlite", workdir) as server:
        job_id, status = asyncio.run(_one_finished_job(server.host, server.port))
        request = get_request(server.host, server.port, f"{API}/jobs/{job_id}")
        result = asyncio.run(
            load(server.host, server.port, [request], clients, duration_s, warmup_s)
        )
        server_rss = rss_mb(server.pid)
    lat = result.latencies_ms
    return {
        "rps": result.rps,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "requests": len(lat),
        "errors": result.errors,
        "clients": clients,
        "duration_s": duration_s,
        "body_bytes": result.body_bytes // max(1, len(lat)),
        "job_status": status,
        "server_rss_mb": server_rss,
    }


async def _one_finished_job(host: str, port: int) -> tuple[str, str]:
    body = await fetch(host, port, f"{API}/cubes/kylin_sales_cube/rebuild", "PUT", BUILD_BODY)
    job_id = str(json.loads(body)["uuid"])
    deadline = monotonic() + WAIT_S
    while monotonic() < deadline:
        job = json.loads(await fetch(host, port, f"{API}/jobs/{job_id}"))
        if job["job_status"] in FINAL_STATUSES:
            return job_id, str(job["job_status"])
        await asyncio.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not finish within {WAIT_S} s")
