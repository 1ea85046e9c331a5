"""20 concurrent resumes of one ERROR job: one wins (200), nineteen get 409, the job runs once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

from engine.core.states import State
from engine.events import JobChanged, StepChanged

FULL = {"startTime": 0, "endTime": 0, "buildType": "BUILD"}
RACERS = 20


async def test_concurrent_resumes_on_sqlite(
    make_config: Callable[..., Any], open_api: Callable[..., Any], tmp_path: Path
) -> None:
    config = make_config(**{"kjobs.store": str(tmp_path / "kjobs.sqlite")})
    async with open_api(config) as (engine, client):
        job = (await client.put("/cubes/flaky_cube/build", json=FULL)).json()
        jid = job["uuid"]
        await engine.wait_for(jid, {State.ERROR}, timeout=20)
        failed = (await client.get(f"/jobs/{jid}")).json()
        flaky_step = failed["steps"][2]["id"]

        async with engine.subscribe() as events:
            responses = await asyncio.gather(
                *(client.put(f"/jobs/{jid}/resume") for _ in range(RACERS))
            )
            statuses = Counter(r.status_code for r in responses)
            assert statuses == {200: 1, 409: RACERS - 1}
            for loser in (r for r in responses if r.status_code == 409):
                assert loser.json()["error_code"] == "KE-010032217"
            runs = Counter()
            with anyio.fail_after(20):
                async for event in events:
                    if isinstance(event, StepChanged) and event.state == State.RUNNING.value:
                        runs[event.step_id] += 1
                    if isinstance(event, JobChanged) and event.job_id == jid:
                        runs[event.state] += 1
                        if event.state in (State.SUCCEED.value, State.ERROR.value):
                            break

        done = (await client.get(f"/jobs/{jid}")).json()
        assert done["job_status"] == "FINISHED"
        assert runs[State.RUNNING.value] == 1  # the job was picked up once
        assert runs[flaky_step] == 1  # the failed step re-ran once
        assert all(n == 1 for key, n in runs.items() if key.startswith(jid))
        assert await engine.store.output_attempts(flaky_step) == [1, 2]
        for before, after in zip(failed["steps"][:2], done["steps"][:2], strict=True):
            assert after["exec_start_time"] == before["exec_start_time"]


async def poll(client: httpx.AsyncClient, job_id: str, *states: str) -> dict:
    """GET the job (no events cross the process boundary) until it is in ``states``; bounded."""
    with anyio.fail_after(30):
        while True:
            job = (await client.get(f"/jobs/{job_id}")).json()
            if job["job_status"] in states:
                return dict(job)
            await anyio.sleep(0.02)


async def test_concurrent_resumes_on_a_live_server(kjobs_server: Callable[..., Any]) -> None:
    server = kjobs_server()
    async with httpx.AsyncClient(base_url=server.api, auth=("ADMIN", "KYLIN")) as client:
        job = (await client.put("/cubes/flaky_cube/build", json=FULL)).json()
        jid = job["uuid"]
        await poll(client, jid, "ERROR")
        responses = await asyncio.gather(
            *(client.put(f"/jobs/{jid}/resume") for _ in range(RACERS))
        )
        assert Counter(r.status_code for r in responses) == {200: 1, 409: RACERS - 1}
        assert (await poll(client, jid, "FINISHED", "ERROR"))["job_status"] == "FINISHED"
