"""Streaming actions (SPEC §5, §6): START, STOP, FORCE_STOP, RESTART, their records and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.streaming.kit import (
    ALREADY_STARTED,
    BAD_PARAMETER,
    BROKEN,
    INVALID_ACTION,
    INVALID_ACTION_CODE,
    OK,
    PROJECT,
    START_REFUSED,
    UNKNOWN_JOB,
    UNKNOWN_PROJECT,
    OpenApi,
    act,
    assert_error,
    job_id,
    listed,
    ok,
    record_actions,
    start_running,
    wait_batches,
    wait_status,
)

# -- actions ------------------------------------------------------------------------------------


async def test_start_stop_force_stop_restart_and_their_records(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        await ok(client, "START", sales)
        assert (await listed(client, sales))["job_status"] in ("STARTING", "RUNNING")
        await wait_status(engine, sales, "RUNNING")
        await wait_batches(engine, sales)
        await ok(client, "STOP", sales)  # graceful: STOPPED once the current batch is written
        await wait_status(engine, sales, "STOPPED")
        stopped = await listed(client, sales)
        assert stopped["action"] == "STOP"
        assert stopped["last_end_time"] >= stopped["last_start_time"]
        assert await record_actions(client, sales) == ["STOP", "START"]
        await ok(client, "STOP", sales)  # no change, no write
        assert await listed(client, sales) | {"last_status_duration": 0} == stopped | {
            "last_status_duration": 0
        }
        await ok(client, "FORCE_STOP", sales)  # on STOPPED: STOPPING, STOPPED again
        assert await record_actions(client, sales) == ["STOP", "STOP", "START"]
        forced = await listed(client, sales)
        assert forced["mvcc"] == stopped["mvcc"] + 2
        assert forced["last_end_time"] >= stopped["last_end_time"]
        await ok(client, "RESTART", sales)
        await wait_status(engine, sales, "RUNNING")
        assert (await record_actions(client, sales))[:2] == ["START", "STOP"]
        running = await listed(client, sales)
        assert running["job_execution_id"] == 2 and running["action"] == "RESTART"
        await ok(client, "FORCE_STOP", sales)
        assert (await listed(client, sales))["job_status"] == "STOPPED"


async def test_double_start_is_409(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        await start_running(engine, client, sales)
        again = await act(client, "START", sales, project=PROJECT)
        assert_error(again, 409, START_REFUSED, ALREADY_STARTED)
        assert await record_actions(client, sales) == ["START"]
        assert (await listed(client, sales))["job_status"] == "RUNNING"


async def test_start_of_a_broken_model_is_409_and_changes_nothing(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        broken = job_id(engine, "broken_stream_model")
        before = await listed(client, broken)
        for action in ("START", "RESTART"):
            response = await act(client, action, broken, project=PROJECT)
            assert_error(response, 409, START_REFUSED, BROKEN)
        after = await listed(client, broken)
        assert after == before and after["mvcc"] == 0 and after["job_status"] == "STOPPED"
        assert await record_actions(client, broken) == []


async def test_jobs_are_handled_in_order_and_the_first_error_stops_the_rest(
    stream_api: OpenApi,
) -> None:
    async with stream_api() as (engine, client):
        sales, merge = (
            job_id(engine, "sales_stream_model"),
            job_id(engine, "sales_stream_model", "merge"),
        )
        broken = job_id(engine, "broken_stream_model")
        response = await act(client, "START", sales, broken, merge, project=PROJECT)
        assert_error(response, 409, START_REFUSED, BROKEN)
        assert (await listed(client, sales))["job_status"] in ("STARTING", "RUNNING")
        assert (await listed(client, merge))["job_status"] == "STOPPED"


@pytest.mark.parametrize("action", ["PAUSE", "start", "RESUME", " START", "DISCARD", "STOPPED"])
async def test_an_invalid_action_is_400_with_kylins_text(stream_api: OpenApi, action: str) -> None:
    async with stream_api() as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        response = await act(client, action, sales, project=PROJECT)
        assert_error(response, 400, INVALID_ACTION_CODE, INVALID_ACTION)
        assert (await listed(client, sales))["mvcc"] == 0


async def test_an_empty_action_is_invalid_too(stream_api: OpenApi) -> None:
    async with stream_api() as (_, client):
        response = await act(client, "", "x_build")
        assert_error(response, 400, INVALID_ACTION_CODE, INVALID_ACTION)


@pytest.mark.parametrize(
    "body",
    [
        {"job_ids": ["x_build"]},
        {"action": None, "job_ids": ["x_build"]},
        {"action": 1, "job_ids": ["x_build"]},
        {"action": "START"},
        {"action": "START", "job_ids": []},
        {"action": "START", "job_ids": "x_build"},
        {"action": "START", "job_ids": [1]},
        {"action": "START", "job_ids": ["x_build"], "project": 5},
    ],
)
async def test_a_body_without_action_or_job_ids_is_400(
    stream_api: OpenApi, body: dict[str, Any]
) -> None:
    async with stream_api() as (_, client):
        response = await client.put("/streaming_jobs/status", json=body)
        assert_error(response, 400, BAD_PARAMETER)


async def test_unknown_jobs_and_projects_in_actions(stream_api: OpenApi) -> None:
    async with stream_api(extended=True) as (engine, client):
        assert_error(await act(client, "START", "no_such_job_build"), 404, UNKNOWN_JOB)
        beta = job_id(engine, "Beta_stream")
        # a job of another project is unknown under this one; nothing changes
        assert_error(await act(client, "START", beta, project=PROJECT), 404, UNKNOWN_JOB)
        assert (await listed(client, beta, "other_project"))["mvcc"] == 0
        missing = await act(client, "START", beta, project="no_such_project")
        assert_error(missing, 404, UNKNOWN_PROJECT)
        # the project's name is case-insensitive, and optional
        response = await act(client, "FORCE_STOP", beta, project="Other_Project")
        assert response.status_code == 200, response.text
        assert (await act(client, "FORCE_STOP", beta)).status_code == 200


async def test_bad_bodies_are_400_and_a_body_without_content_type_works(
    stream_api: OpenApi,
) -> None:
    async with stream_api() as (engine, client):
        for content in (b"{not json", b'{"action": "START", "job_ids": "x"}', b"[]", b"null"):
            response = await client.put(
                "/streaming_jobs/status",
                content=content,
                headers={"Content-Type": "application/json"},
            )
            assert_error(response, 400, BAD_PARAMETER)
        sales = job_id(engine, "sales_stream_model", "merge")
        request = client.build_request(
            "PUT",
            "/streaming_jobs/status",
            content=json.dumps({"action": "FORCE_STOP", "job_ids": [sales]}).encode(),
        )
        request.headers.pop("Content-Type", None)
        response = await client.send(request)
        assert response.status_code == 200, response.text
        assert response.json() == OK
        assert await record_actions(client, sales) == ["STOP"]
