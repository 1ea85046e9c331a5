"""Batch job endpoints over ASGI: shapes and key order (SPEC §3), operations and their errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from engine.api import schemas
from engine.config import Config
from engine.core.jobs import Family, StepSpec
from engine.core.states import State
from engine.facade import Engine

JOB_KEYS = [
    "uuid", "last_modified", "version", "name", "projectName", "type", "duration",
    "related_cube", "display_cube_name", "related_segment", "related_segment_name",
    "exec_start_time", "exec_end_time", "exec_interrupt_time", "mr_waiting", "steps",
    "submitter", "job_status", "build_instance", "progress",
]  # fmt: skip
STEP_KEYS = [
    "interruptCmd", "id", "name", "sequence_id", "exec_cmd", "interrupt_cmd", "exec_start_time",
    "exec_end_time", "exec_wait_time", "step_status", "cmd_type", "info", "run_async",
]  # fmt: skip
ERROR_KEYS = ["code", "data", "msg", "exception", "url", "error_code"]
FULL = {"startTime": 0, "endTime": 0, "buildType": "BUILD"}
DAY = 86_400_000
WAIT_S = 20.0
API = Callable[[Config], Any]
FastApi = Callable[..., Any]


async def build(client: httpx.AsyncClient, cube: str = "kylin_sales_cube", **body: Any) -> dict:
    response = await client.put(f"/cubes/{cube}/build", json={**FULL, **body})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def finished(
    engine: Engine, client: httpx.AsyncClient, cube: str = "kylin_sales_cube"
) -> dict:
    job = await build(client, cube)
    await engine.wait_for(job["uuid"], {State.SUCCEED}, timeout=WAIT_S)
    return dict((await client.get(f"/jobs/{job['uuid']}")).json())


async def errored(engine: Engine, client: httpx.AsyncClient) -> dict:
    job = await build(client, "flaky_cube")
    await engine.wait_for(job["uuid"], {State.ERROR}, timeout=WAIT_S)
    return dict((await client.get(f"/jobs/{job['uuid']}")).json())


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ERROR_KEYS
    assert body["code"] == "999"
    assert body["data"] is None
    assert body["error_code"] == code
    assert body["msg"] and body["exception"] == body["msg"]
    assert body["url"] == str(response.request.url)
    return dict(body)


# -- shapes -----------------------------------------------------------------------------------


async def test_build_answers_a_pending_job_in_spec_order(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        job = await build(client)
        assert list(job) == JOB_KEYS
        assert list(job) == list(schemas.JobInstance.model_fields)
        assert job["job_status"] == "PENDING"
        assert job["type"] == "BUILD"
        assert job["submitter"] == "ADMIN"
        assert job["build_instance"] == "unknown"
        assert job["related_cube"] == job["display_cube_name"] == "kylin_sales_cube"
        assert job["related_segment_name"] == "19700101000000_99991231235959"
        assert job["projectName"] == "learn_kylin"
        assert job["version"] == engine.settings.version
        assert job["name"].startswith(
            "BUILD CUBE - kylin_sales_cube - 19700101000000_99991231235959"
        )
        assert (job["duration"], job["exec_start_time"], job["exec_end_time"]) == (0, 0, 0)
        assert job["progress"] == 0.0 and isinstance(job["progress"], float)
        for n, step in enumerate(job["steps"]):
            assert list(step) == STEP_KEYS
            assert list(step) == list(schemas.JobStep.model_fields)
            assert step["id"] == f"{job['uuid']}-{n:02d}"
            assert step["sequence_id"] == n
            assert step["step_status"] == "PENDING"
            assert step["info"] == {}
            assert step["interruptCmd"] == step["interrupt_cmd"]


async def test_finished_job_shows_times_progress_and_mr_info(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        job = await finished(engine, client)
        assert list(job) == JOB_KEYS
        assert job["job_status"] == "FINISHED"
        assert job["progress"] == 100.0
        assert 0 < job["exec_start_time"] <= job["exec_end_time"] <= job["last_modified"]
        assert job["build_instance"] == engine.instance
        assert isinstance(job["duration"], int) and isinstance(job["mr_waiting"], int)
        mr = [s for s in job["steps"] if s["run_async"]]
        assert mr and all(s["cmd_type"].startswith("JAVA_CMD_HADOOP_") for s in mr)
        for step in job["steps"]:
            assert step["step_status"] == "FINISHED"
            assert {"startTime", "endTime"} <= set(step["info"])
            assert all(isinstance(v, str) for v in step["info"].values())
        for step in mr:
            assert {"mr_job_id", "yarn_application_id", "mapReduceWaitTime"} <= set(step["info"])
            assert step["exec_wait_time"] == int(step["info"]["mapReduceWaitTime"]) // 1000


async def test_get_unknown_job_is_404(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        body = assert_error(await client.get("/jobs/no-such-job"), 404, "KE-010032219")
        assert "no-such-job" in body["msg"]


# -- operations -------------------------------------------------------------------------------


async def test_resume_an_error_job_runs_it_to_finished(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        job = await errored(engine, client)
        assert job["job_status"] == "ERROR"
        assert job["exec_end_time"] > 0
        failed = [s for s in job["steps"] if s["step_status"] == "ERROR"]
        assert [s["name"] for s in failed] == ["Extract Fact Table Distinct Columns"]
        resumed = await client.put(f"/jobs/{job['uuid']}/resume")
        assert resumed.status_code == 200
        assert list(resumed.json()) == JOB_KEYS
        assert resumed.json()["job_status"] in ("PENDING", "RUNNING")
        assert resumed.json()["exec_end_time"] == 0
        await engine.wait_for(job["uuid"], {State.SUCCEED}, timeout=WAIT_S)
        done = (await client.get(f"/jobs/{job['uuid']}")).json()
        assert done["job_status"] == "FINISHED"
        assert done["exec_start_time"] == job["exec_start_time"]
        for before, after in zip(job["steps"], done["steps"], strict=True):
            if before["step_status"] == "FINISHED":  # never re-run
                assert after["exec_start_time"] == before["exec_start_time"]


async def test_resume_refused_outside_error_and_stopped(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        job = await finished(engine, client)
        body = assert_error(await client.put(f"/jobs/{job['uuid']}/resume"), 409, "KE-010032217")
        assert job["uuid"] in body["msg"]
        assert_error(await client.put("/jobs/nope/resume"), 404, "KE-010032219")


async def test_pause_resume_and_cancel_a_running_job(
    make_config: Callable[..., Config], open_api: API
) -> None:
    async with open_api(make_config(**{"kjobs.time-scale": 1})) as (engine, client):
        job = await build(client, "slow_cube")
        paused = await client.put(f"/jobs/{job['uuid']}/pause")
        assert paused.status_code == 200
        assert paused.json()["job_status"] == "STOPPED"
        assert "STOPPED" in [s["step_status"] for s in paused.json()["steps"]]
        assert_error(await client.put(f"/jobs/{job['uuid']}/pause"), 409, "KE-010032217")
        resumed = await client.put(f"/jobs/{job['uuid']}/resume")
        assert resumed.json()["job_status"] == "PENDING"
        await engine.wait_for(job["uuid"], {State.RUNNING}, timeout=WAIT_S)
        cancelled = await client.put(f"/jobs/{job['uuid']}/cancel")
        assert cancelled.status_code == 200
        body = cancelled.json()
        assert body["job_status"] == "DISCARDED"
        assert {s["step_status"] for s in body["steps"]} <= {"FINISHED", "DISCARDED"}
        assert_error(await client.put(f"/jobs/{job['uuid']}/cancel"), 409, "KE-010032217")
        assert_error(await client.put("/jobs/nope/pause"), 404, "KE-010032219")
        assert_error(await client.put("/jobs/nope/cancel"), 404, "KE-010032219")


async def test_cancel_a_finished_job_is_refused(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        job = await finished(engine, client)
        body = assert_error(await client.put(f"/jobs/{job['uuid']}/cancel"), 409, "KE-010032217")
        assert "already been finished" in body["msg"]


@pytest.mark.parametrize("style", ["padded", "unpadded"])
async def test_rollback_resets_later_steps(fast_api: FastApi, style: str) -> None:
    async with fast_api() as (engine, client):
        job = await finished(engine, client)
        step = f"{job['uuid']}-05" if style == "padded" else f"{job['uuid']}-5"
        response = await client.put(f"/jobs/{job['uuid']}/steps/{step}/rollback")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["job_status"] == "PENDING"
        assert [s["step_status"] for s in body["steps"][:5]] == ["FINISHED"] * 5
        assert {s["step_status"] for s in body["steps"][5:]} == {"PENDING"}
        assert all(s["info"] == {} for s in body["steps"][5:])
        await engine.wait_for(job["uuid"], {State.SUCCEED}, timeout=WAIT_S)
        again = (await client.get(f"/jobs/{job['uuid']}")).json()
        assert again["steps"][4]["exec_start_time"] == job["steps"][4]["exec_start_time"]
        assert again["steps"][5]["exec_start_time"] > job["steps"][5]["exec_start_time"]


async def test_rollback_errors(make_config: Callable[..., Config], open_api: API) -> None:
    async with open_api(make_config(**{"kjobs.time-scale": 1})) as (_, client):
        job = await build(client, "slow_cube")
        jid = job["uuid"]
        assert_error(await client.put(f"/jobs/{jid}/steps/{jid}-01/rollback"), 409, "KE-010032217")
        assert_error(await client.put(f"/jobs/{jid}/steps/{jid}-99/rollback"), 404, "KE-010032219")
        assert_error(await client.put(f"/jobs/{jid}/steps/other-01/rollback"), 404, "KE-010032219")
        assert_error(await client.put("/jobs/nope/steps/nope-01/rollback"), 404, "KE-010032219")


async def test_drop_answers_the_job_then_it_is_gone(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        job = await finished(engine, client)
        dropped = await client.delete(f"/jobs/{job['uuid']}/drop")
        assert dropped.status_code == 200
        assert list(dropped.json()) == JOB_KEYS
        assert dropped.json()["job_status"] == "FINISHED"
        assert_error(await client.get(f"/jobs/{job['uuid']}"), 404, "KE-010032219")
        assert_error(await client.delete(f"/jobs/{job['uuid']}/drop"), 404, "KE-010032219")


async def test_drop_refused_while_not_final(
    make_config: Callable[..., Config], open_api: API
) -> None:
    async with open_api(make_config(**{"kjobs.time-scale": 1})) as (_, client):
        job = await build(client, "slow_cube")
        assert_error(await client.delete(f"/jobs/{job['uuid']}/drop"), 409, "KE-010032217")


async def test_step_output_padded_unpadded_and_before_first_run(
    fast_api: FastApi,
) -> None:
    async with fast_api() as (engine, client):
        job = await finished(engine, client)
        jid = job["uuid"]
        for step in (f"{jid}-3", f"{jid}-03"):
            response = await client.get(f"/jobs/{jid}/steps/{step}/output")
            assert response.status_code == 200
            body = response.json()
            assert list(body) == ["jobId", "stepId", "cmd_output"]
            assert body["jobId"] == jid and body["stepId"] == f"{jid}-03"
            assert "Build Dimension Dictionary" in body["cmd_output"]
        pending = await errored(engine, client)  # its later steps never ran
        last = pending["steps"][-1]["id"]
        out = (await client.get(f"/jobs/{pending['uuid']}/steps/{last}/output")).json()
        assert out["cmd_output"] is None
        assert_error(await client.get(f"/jobs/{jid}/steps/{jid}-77/output"), 404, "KE-010032219")
        assert_error(await client.get(f"/jobs/{jid}/steps/garbage/output"), 404, "KE-010032219")
        assert_error(await client.get("/jobs/nope/steps/nope-01/output"), 404, "KE-010032219")


# -- list and overview ------------------------------------------------------------------------


async def test_list_filters(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        done = await finished(engine, client)
        failed = await errored(engine, client)

        async def ids(**params: Any) -> list[str]:
            response = await client.get("/jobs", params=params)
            assert response.status_code == 200, response.text
            for job in response.json():
                assert list(job) == JOB_KEYS
            return [j["uuid"] for j in response.json()]

        assert await ids() == [failed["uuid"], done["uuid"]]  # newest change first
        assert await ids(cubeName="SALES") == [done["uuid"]]
        assert await ids(cubeName="flaky") == [failed["uuid"]]
        assert await ids(cubeName="") == [failed["uuid"], done["uuid"]]
        assert await ids(projectName="learn_kylin") == [failed["uuid"], done["uuid"]]
        assert await ids(projectName="other") == []
        assert await ids(status=4) == [done["uuid"]]
        assert await ids(status=8) == [failed["uuid"]]
        assert await ids(status=[4, 8]) == [failed["uuid"], done["uuid"]]
        assert await ids(status=0) == []
        assert await ids(status=2) == []
        assert await ids(offset=1, limit=1) == [done["uuid"]]
        assert await ids(limit=0) == []
        for time_filter in range(6):
            assert await ids(timeFilter=time_filter) == [failed["uuid"], done["uuid"]]
        empties = "cubeName=&projectName=&status=&offset=0&limit=30&timeFilter="
        response = await client.get(f"/jobs?{empties}")
        assert [j["uuid"] for j in response.json()] == [failed["uuid"], done["uuid"]]


@pytest.mark.parametrize(
    "query",
    ["status=3", "status=x", "timeFilter=6", "offset=-1", "limit=abc", "limit=1.5"],
)
async def test_list_bad_parameters_are_400(fast_api: FastApi, query: str) -> None:
    async with fast_api() as (_, client):
        body = assert_error(await client.get(f"/jobs?{query}"), 400, "KE-010000003")
        assert query.split("=")[0] in body["msg"]


async def test_list_default_limit_is_30(make_config: Callable[..., Config], open_api: API) -> None:
    async with open_api(make_config(**{"kjobs.time-scale": 1})) as (_, client):
        for n in range(31):
            await build(client, "slow_cube", startTime=(n + 1) * DAY, endTime=(n + 2) * DAY)
        assert len((await client.get("/jobs")).json()) == 30
        assert len((await client.get("/jobs", params={"limit": 50})).json()) == 31


class MovableClock:
    """The system clock shifted by ``offset_ms`` (a real clock the test can move)."""

    def __init__(self) -> None:
        from engine.clock import SystemClock

        self._system = SystemClock()
        self.offset_ms = 0

    def now_ms(self) -> int:
        return self._system.now_ms() + self.offset_ms

    async def sleep(self, seconds: float) -> None:
        await self._system.sleep(seconds)


async def test_time_filter_uses_the_engine_clock(make_config: Callable[..., Config]) -> None:
    from engine.api.app import create_app

    clock = MovableClock()
    clock.offset_ms = -40 * DAY
    async with Engine(make_config(**{"kjobs.time-scale": 1}), clock=clock) as engine:
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t/kylin/api", auth=("ADMIN", "KYLIN")
        ) as client:
            old = await build(client, "slow_cube")
            await client.put(f"/jobs/{old['uuid']}/cancel")  # final: its time stays put
            clock.offset_ms = 0

            async def listed(time_filter: int) -> bool:
                jobs = (await client.get("/jobs", params={"timeFilter": time_filter})).json()
                return old["uuid"] in [j["uuid"] for j in jobs]

            assert [await listed(t) for t in range(6)] == [False, False, False, False, True, True]


async def test_overview_counts_jobs_per_status(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        empty = (await client.get("/jobs/overview")).json()
        assert list(empty) == [
            "NEW",
            "PENDING",
            "RUNNING",
            "FINISHED",
            "ERROR",
            "DISCARDED",
            "STOPPED",
        ]
        assert set(empty.values()) == {0}
        await finished(engine, client)
        await errored(engine, client)
        counts = (await client.get("/jobs/overview")).json()
        assert counts == {**empty, "FINISHED": 1, "ERROR": 1}


# -- builds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["build", "rebuild"])
async def test_build_routes_by_time(fast_api: FastApi, route: str) -> None:
    async with fast_api() as (_, client):
        body = {"startTime": DAY, "endTime": 3 * DAY, "buildType": "BUILD", "priorityOffset": 5}
        response = await client.put(f"/cubes/kylin_sales_cube/{route}", json=body)
        assert response.status_code == 200
        assert response.json()["related_segment_name"] == "19700102000000_19700104000000"


@pytest.mark.parametrize("route", ["build2", "rebuild2"])
async def test_build_routes_by_offset(fast_api: FastApi, route: str) -> None:
    async with fast_api() as (_, client):
        body = {"sourceOffsetStart": 1000, "sourceOffsetEnd": 5000, "buildType": "BUILD"}
        response = await client.put(f"/cubes/kylin_sales_cube/{route}", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["job_status"] == "PENDING"


async def test_build_errors(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        assert_error(await client.put("/cubes/no_cube/build", json=FULL), 404, "KE-010001002")
        await build(client)
        body = assert_error(await client.put("/cubes/kylin_sales_cube/build", json=FULL), 409,
                            "KE-010022001")  # fmt: skip
        assert "overlap" in body["msg"].lower()
        bad = {"startTime": 5 * DAY, "endTime": 4 * DAY, "buildType": "BUILD"}
        assert_error(await client.put("/cubes/flaky_cube/build", json=bad), 400, "KE-010000003")
        refresh = {"startTime": DAY, "endTime": 2 * DAY, "buildType": "REFRESH"}
        assert_error(await client.put("/cubes/flaky_cube/build", json=refresh), 409, "KE-010032217")
        for invalid in (
            {"startTime": 0, "endTime": 0, "buildType": "SMASH"},
            {"startTime": -1, "endTime": 0, "buildType": "BUILD"},
            {"startTime": "soon", "endTime": 0, "buildType": "BUILD"},
            {"startTime": 0, "endTime": 2**64, "buildType": "BUILD"},
            {"startTime": 0, "endTime": 0},
            [1, 2],
        ):
            response = await client.put("/cubes/flaky_cube/build", json=invalid)
            assert_error(response, 400, "KE-010000003")
        raw = await client.put("/cubes/flaky_cube/build", content=b'{"startTime": 0,')
        assert "Malformed JSON" in assert_error(raw, 400, "KE-010000003")["msg"]
        assert_error(await client.put("/cubes/flaky_cube/build"), 400, "KE-010000003")


async def test_submitter_is_the_authenticated_user(
    make_config: Callable[..., Config], open_api: API
) -> None:
    users = [
        {"name": "ADMIN", "password": "KYLIN"},
        {"name": "ANALYST", "password": "s3cret", "authorities": ["ROLE_ANALYST"]},
    ]
    async with open_api(make_config(**{"kjobs.users": users})) as (_, client):
        response = await client.put(
            "/cubes/kylin_sales_cube/build", json=FULL, auth=("ANALYST", "s3cret")
        )
        assert response.json()["submitter"] == "ANALYST"
        me = await client.get("/user/authentication", auth=("ANALYST", "s3cret"))
        assert me.json() == {
            "userDetails": {"username": "ANALYST", "authorities": [{"authority": "ROLE_ANALYST"}]}
        }


# -- Kylin 5 bulk actions ---------------------------------------------------------------------


async def test_bulk_status_actions(make_config: Callable[..., Config], open_api: API) -> None:
    async with open_api(make_config(**{"kjobs.time-scale": 1})) as (engine, client):
        a = await build(client, "slow_cube", startTime=DAY, endTime=2 * DAY)
        b = await build(client, "slow_cube", startTime=2 * DAY, endTime=3 * DAY)
        ids = [a["uuid"], b["uuid"]]
        response = await client.put("/jobs/status", json={"action": "PAUSE", "job_ids": ids})
        assert response.status_code == 200
        assert response.json() == {"code": "000", "data": "", "msg": ""}
        for jid in ids:
            assert (await client.get(f"/jobs/{jid}")).json()["job_status"] == "STOPPED"
        body = {"action": "RESUME", "job_ids": ids, "project": "learn_kylin"}
        assert (await client.put("/jobs/status", json=body)).status_code == 200
        await engine.wait_for(a["uuid"], {State.RUNNING}, timeout=WAIT_S)
        restart = await client.put("/jobs/status", json={"action": "RESTART", "job_ids": ids[:1]})
        assert restart.status_code == 200
        assert (await client.get(f"/jobs/{a['uuid']}")).json()["job_status"] in (
            "PENDING",
            "RUNNING",
        )
        discard = await client.put("/jobs/status", json={"action": "DISCARD", "job_ids": ids})
        assert discard.status_code == 200
        for jid in ids:
            assert (await client.get(f"/jobs/{jid}")).json()["job_status"] == "DISCARDED"


async def test_bulk_status_errors(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        done = await finished(engine, client)
        jid = done["uuid"]
        cases = [
            ({"action": "EXPLODE", "job_ids": [jid]}, 400, "KE-010000003"),
            ({"action": "RESUME", "job_ids": []}, 400, "KE-010000003"),
            ({"action": "RESUME"}, 400, "KE-010000003"),
            ({"action": "RESUME", "job_ids": ["nope"]}, 404, "KE-010032219"),
            ({"action": "RESUME", "job_ids": [jid]}, 409, "KE-010032217"),
            ({"action": "DISCARD", "job_ids": [jid]}, 409, "KE-010032217"),
            ({"action": "RESUME", "job_ids": [jid], "project": "nowhere"}, 404, "KE-010001002"),
        ]
        spec = StepSpec("Echo", "SHELL_CMD_HADOOP", Family.METADATA, profile="instant")
        elsewhere = await engine.submit_job([spec], project="other")
        await engine.wait_for(elsewhere.id, {State.SUCCEED}, timeout=WAIT_S)
        foreign = {"action": "DISCARD", "job_ids": [elsewhere.id], "project": "learn_kylin"}
        cases.append((foreign, 404, "KE-010032219"))
        for body, status, code in cases:
            assert_error(await client.put("/jobs/status", json=body), status, code)
