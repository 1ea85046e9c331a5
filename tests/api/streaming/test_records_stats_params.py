"""A streaming job's records, micro-batch statistics and params (SPEC §6)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.streaming.kit import (
    BAD_PARAMETER,
    OK,
    PROJECT,
    START_REFUSED,
    UNKNOWN_JOB,
    UNKNOWN_PROJECT,
    OpenApi,
    assert_error,
    job_id,
    listed,
    ok,
    record_actions,
    start_running,
    wait_batches,
    wait_status,
)

# -- records, stats, params ---------------------------------------------------------------------


async def test_records_newest_first_and_their_errors(stream_api: OpenApi) -> None:
    async with stream_api(extended=True) as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        assert await record_actions(client, sales) == []
        await start_running(engine, client, sales)
        await ok(client, "FORCE_STOP", sales)
        await start_running(engine, client, sales)
        response = await client.get(
            "/streaming_jobs/records", params={"job_id": sales, "project": PROJECT}
        )
        body = response.json()
        assert list(body) == ["code", "data", "msg"] and body["code"] == "000"
        records = body["data"]
        assert [r["action"] for r in records] == ["START", "STOP", "START"]
        for record in records:
            assert list(record) == ["id", "job_id", "project", "action", "create_time"]
            assert (record["job_id"], record["project"]) == (sales, PROJECT)
        assert [r["id"] for r in records] == sorted((r["id"] for r in records), reverse=True)
        times = [r["create_time"] for r in records]
        assert times == sorted(times, reverse=True)
        job = await listed(client, sales)
        assert job["last_start_time"] == times[0] and job["last_end_time"] == times[1]
        for params in ({}, {"job_id": ""}):
            no_id = await client.get("/streaming_jobs/records", params=params)
            assert_error(no_id, 400, BAD_PARAMETER)
            assert "job_id" in no_id.json()["msg"]
        unknown = await client.get("/streaming_jobs/records", params={"job_id": "nope_build"})
        assert_error(unknown, 404, UNKNOWN_JOB)
        other = await client.get(
            "/streaming_jobs/records", params={"job_id": sales, "project": "other_project"}
        )
        assert_error(other, 404, UNKNOWN_JOB)


async def test_stats_newest_first_match_the_listed_latency(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        await start_running(engine, client, sales)
        await wait_batches(engine, sales, 3)
        await ok(client, "STOP", sales)
        await wait_status(engine, sales, "STOPPED")
        response = await client.get(f"/streaming_jobs/stats/{sales}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert list(body) == ["code", "data", "msg"] and body["code"] == "000"
        stats = body["data"]
        keys = ["consumption_rate_hist", "data_latency_hist", "processing_time_hist", "create_time"]
        assert list(stats) == keys
        count = len(stats["create_time"])
        assert count >= 3 and all(len(stats[k]) == count for k in keys)
        assert stats["create_time"] == sorted(stats["create_time"], reverse=True)
        assert all(v >= 0 for k in keys for v in stats[k])
        job = await listed(client, sales)
        assert stats["data_latency_hist"][0] == job["data_latency"]
        assert (
            stats
            == (await client.get(f"/streaming_jobs/stats/{sales}?time_filter=30")).json()["data"]
        )
        week = await client.get(
            f"/streaming_jobs/stats/{sales}", params={"time_filter": 10080, "project": PROJECT}
        )
        assert week.json()["data"] == stats
        merge = job_id(engine, "sales_stream_model", "merge")
        empty = (await client.get(f"/streaming_jobs/stats/{merge}")).json()["data"]
        assert empty == {k: [] for k in keys}


@pytest.mark.parametrize("time_filter", ["0", "10081", "-5", "half"])
async def test_stats_time_filter_out_of_range_is_400(stream_api: OpenApi, time_filter: str) -> None:
    async with stream_api() as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        response = await client.get(
            f"/streaming_jobs/stats/{sales}", params={"time_filter": time_filter}
        )
        assert_error(response, 400, BAD_PARAMETER)


async def test_stats_of_an_unknown_job_is_404(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        assert_error(await client.get("/streaming_jobs/stats/nope_build"), 404, UNKNOWN_JOB)
        sales = job_id(engine, "sales_stream_model")
        response = await client.get(f"/streaming_jobs/stats/{sales}", params={"project": "nope"})
        assert_error(response, 404, UNKNOWN_PROJECT)


async def test_params_are_replaced_only_while_stopped_or_error(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        before = await listed(client, sales)
        params = {**before["params"], "kylin.streaming.duration": "10", "spark.executor.cores": "4"}
        body = {"job_id": sales, "project": PROJECT, "params": params}
        response = await client.put("/streaming_jobs/params", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == OK
        after = await listed(client, sales)
        assert after["params"] == params
        assert after["mvcc"] == before["mvcc"] + 1 and after["job_status"] == "STOPPED"
        await start_running(engine, client, sales)
        running = await client.put("/streaming_jobs/params", json={**body, "params": {}})
        assert_error(running, 409, START_REFUSED)
        assert (await listed(client, sales))["params"] == params
        await ok(client, "FORCE_STOP", sales)
        cleared = await client.put("/streaming_jobs/params", json={**body, "params": {}})
        assert cleared.status_code == 200 and (await listed(client, sales))["params"] == {}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"project": PROJECT, "params": {}}, 400, BAD_PARAMETER),
        ({"job_id": "", "params": {}}, 400, BAD_PARAMETER),
        ({"job_id": "{sales}"}, 400, BAD_PARAMETER),
        ({"job_id": "{sales}", "params": None}, 400, BAD_PARAMETER),
        ({"job_id": "{sales}", "params": {"kylin.streaming.duration": "soon"}}, 400, BAD_PARAMETER),
        ({"job_id": "{sales}", "params": {"kylin.streaming.duration": 10}}, 400, BAD_PARAMETER),
        ({"job_id": "{sales}", "params": ["a"]}, 400, BAD_PARAMETER),
        ({"job_id": "nope_build", "params": {}}, 404, UNKNOWN_JOB),
        ({"job_id": "{sales}", "project": "nope", "params": {}}, 404, UNKNOWN_PROJECT),
    ],
)
async def test_params_errors(
    stream_api: OpenApi, body: dict[str, Any], status: int, code: str
) -> None:
    async with stream_api() as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        if body.get("job_id") == "{sales}":
            body = {**body, "job_id": sales}
        response = await client.put("/streaming_jobs/params", json=body)
        assert_error(response, status, code)
        assert (await listed(client, sales))["mvcc"] == 0
