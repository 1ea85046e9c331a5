"""Segment management over REST (SPEC §6.1): delete the first or last segment, purge a cube."""

from __future__ import annotations

from typing import Any

import httpx

from engine.core.states import State
from engine.facade import Engine
from tests.api.test_jobs_api import DAY, WAIT_S, FastApi, assert_error

CUBE = "kylin_sales_cube"
DAY0 = 1_704_067_200_000  #: 2024-01-01


async def built(engine: Engine, client: httpx.AsyncClient, day: int, cube: str = CUBE) -> str:
    """Build one day of ``cube`` to its end; the segment's name."""
    body = {"startTime": DAY0 + day * DAY, "endTime": DAY0 + (day + 1) * DAY, "buildType": "BUILD"}
    response = await client.put(f"/cubes/{cube}/build", json=body)
    assert response.status_code == 200, response.text
    job = response.json()
    await engine.wait_for(job["uuid"], {State.SUCCEED}, timeout=WAIT_S)
    return str(job["related_segment_name"])


async def segment_names(client: httpx.AsyncClient, cube: str = CUBE) -> list[str]:
    cubes: list[dict[str, Any]] = (await client.get("/cubes", params={"cubeName": cube})).json()
    return [s["name"] for s in cubes[0]["segments"]]


async def test_only_the_first_or_last_segment_may_be_deleted(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        names = [await built(engine, client, day) for day in range(3)]
        middle = await client.delete(f"/cubes/{CUBE}/segs/{names[1]}")
        body = assert_error(middle, 409, "KE-010032217")
        assert names[0] in body["msg"] and names[2] in body["msg"]
        assert await segment_names(client) == names  # nothing changed

        last = await client.delete(f"/cubes/{CUBE}/segs/{names[2]}")
        assert last.status_code == 200, last.text
        assert [s["name"] for s in last.json()["segments"]] == names[:2]
        assert list(last.json()) == ["uuid", "name", "project", "descriptor", "status", "segments"]

        first = await client.delete(f"/cubes/{CUBE}/segs/{names[0]}")
        assert [s["name"] for s in first.json()["segments"]] == [names[1]]
        gone = await client.delete(f"/cubes/{CUBE}/segs/{names[0]}")
        assert_error(gone, 404, "KE-010001002")
        assert_error(await client.delete("/cubes/nope/segs/x"), 404, "KE-010001002")


async def test_a_segment_a_job_uses_stays_and_a_purge_waits_for_the_jobs(
    fast_api: FastApi,
) -> None:
    async with fast_api() as (engine, client):
        ready = await built(engine, client, 0, "slow_cube")
        body = {"startTime": DAY0 + DAY, "endTime": DAY0 + 2 * DAY, "buildType": "BUILD"}
        running = (await client.put("/cubes/slow_cube/build", json=body)).json()
        await client.put(f"/jobs/{running['uuid']}/pause")  # STOPPED: unfinished

        used = await client.delete(f"/cubes/slow_cube/segs/{running['related_segment_name']}")
        assert running["uuid"] in assert_error(used, 409, "KE-010032217")["msg"]
        purge = await client.put("/cubes/slow_cube/purge")
        assert running["uuid"] in assert_error(purge, 409, "KE-010032217")["msg"]
        assert len(await segment_names(client, "slow_cube")) == 2

        await client.put(f"/jobs/{running['uuid']}/cancel")  # discard drops its NEW segment
        assert await segment_names(client, "slow_cube") == [ready]
        purged = await client.put("/cubes/slow_cube/purge")
        assert purged.status_code == 200, purged.text
        assert purged.json()["segments"] == []
        assert purged.json()["status"] == "DISABLED"
        # and the range can be built again
        again = await client.put("/cubes/slow_cube/build", json={**body, "startTime": DAY0})
        assert again.status_code == 200, again.text


async def test_an_overlap_names_the_free_range_and_the_refresh_alternative(
    fast_api: FastApi,
) -> None:
    async with fast_api() as (engine, client):
        await built(engine, client, 0)
        body = {"startTime": DAY0, "endTime": DAY0 + DAY, "buildType": "BUILD"}
        msg = assert_error(await client.put(f"/cubes/{CUBE}/build", json=body), 409, "KE-010022001")
        assert f"the free range starts at {DAY0 + DAY}" in msg["msg"]
        assert f"REFRESH [{DAY0}, {DAY0 + DAY})" in msg["msg"]
        assert f"kjobs purge {CUBE}" in msg["msg"]
