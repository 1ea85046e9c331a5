"""Sample builds end to end through the REST server: steps per second and submit latency.

A real ``kjobs serve --time-scale 1000000`` (``kylin.job.max-concurrent-jobs`` 100) on a fresh
SQLite file. 10 keep-alive clients submit 1,000 ``kylin_sales_cube`` builds between them
(``PUT /cubes/kylin_sales_cube/rebuild``, one day each, back to back per client), while the
builds already submitted run (18 steps each). ``rest_submit_ms_*`` is the latency of those
``PUT``s under that load; ``rest_steps_per_s`` is every build's steps over the time from the
first ``PUT`` until ``/jobs/overview`` shows every build ended.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Final

from bench.common import percentile
from bench.profile import sampled
from bench.server import AUTH, Connection, fetch, kjobs_serve
from engine.clock import monotonic

API: Final = "/kylin/api"
DAY_MS: Final = 86_400_000
FIRST_DAY_MS: Final = 1_600_000_000_000 // DAY_MS * DAY_MS
ENDED: Final = ("FINISHED", "ERROR", "DISCARDED", "STOPPED")
WAIT_S: Final = 600.0


def build_request(host: str, port: int, day: int) -> bytes:
    """A keep-alive ``PUT .../rebuild`` of day ``day`` (each build its own segment)."""
    start = FIRST_DAY_MS + day * DAY_MS
    body = json.dumps({"startTime": start, "endTime": start + DAY_MS, "buildType": "BUILD"})
    return (
        f"PUT {API}/cubes/kylin_sales_cube/rebuild HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: {AUTH}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def sample_builds(
    workdir: Path, builds: int = 1000, clients: int = 10, concurrent_jobs: int = 100
) -> dict[str, Any]:
    """Submit ``builds`` sample builds from ``clients`` clients and run them all to their end."""
    settings = {"KJOBS_MAX_CONCURRENT_JOBS": str(concurrent_jobs)}
    with (
        kjobs_serve(workdir / "rest.sqlite", workdir, 1_000_000.0, settings) as server,
        sampled(server.pid) as profile,
    ):
        out = asyncio.run(_run(server.host, server.port, builds, clients))
    out.update(builds=builds, clients=clients, max_concurrent_jobs=concurrent_jobs)
    out["profile"] = profile
    return out


async def _run(host: str, port: int, builds: int, clients: int) -> dict[str, Any]:
    requests = [build_request(host, port, day) for day in range(builds)]
    conns = [await Connection.open(host, port) for _ in range(clients)]
    latencies: list[float] = []
    job_ids: list[str] = []
    started = monotonic()

    async def client(conn: Connection, first: int) -> None:
        for raw in requests[first::clients]:
            sent = monotonic()
            status, body = await conn.request(raw)
            latencies.append((monotonic() - sent) * 1000.0)
            if status != 200:
                raise RuntimeError(f"build answered {status}: {body[:300]!r}")
            job_ids.append(json.loads(body)["uuid"])

    try:
        await asyncio.gather(*(client(c, i) for i, c in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()
    submitted = monotonic() - started
    counts = await _wait_ended(host, port, builds)
    wall = monotonic() - started
    steps = len(json.loads(await fetch(host, port, f"{API}/jobs/{job_ids[0]}"))["steps"])
    return {
        "steps_per_s": builds * steps / wall,
        "submit_ms_p50": percentile(latencies, 50),
        "submit_ms_p99": percentile(latencies, 99),
        "submit_ms_max": max(latencies),
        "submit_phase_s": submitted,
        "wall_s": wall,
        "steps_per_build": steps,
        "statuses": counts,
    }


async def _wait_ended(host: str, port: int, builds: int) -> dict[str, int]:
    """Poll ``/jobs/overview`` until ``builds`` jobs have ended; the counts per status."""
    deadline = monotonic() + WAIT_S
    while True:
        counts = json.loads(await fetch(host, port, f"{API}/jobs/overview"))
        if sum(int(counts.get(status, 0)) for status in ENDED) >= builds:
            return {k: int(v) for k, v in counts.items()}
        if monotonic() > deadline:
            raise TimeoutError(f"builds did not end within {WAIT_S} s: {counts}")
        await asyncio.sleep(0.1)
