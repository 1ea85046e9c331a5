"""``GET /jobs``: ``status`` takes Kylin's codes and the REST names; paging values are integers."""

from __future__ import annotations

from engine.core.states import State
from tests.api.test_jobs_api import WAIT_S, FastApi, assert_error, build


async def test_status_by_code_or_name_in_any_case(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        job = await build(client)
        await engine.wait_for(job["uuid"], {State.SUCCEED}, timeout=WAIT_S)
        answers = [
            [j["uuid"] for j in (await client.get("/jobs", params={"status": value})).json()]
            for value in ("4", "FINISHED", "finished", "")
        ]
        assert answers == [[job["uuid"]]] * 4
        assert (await client.get("/jobs", params={"status": ["ERROR", "8"]})).json() == []
        bad = assert_error(await client.get("/jobs?status=DONE"), 400, "KE-010000003")
        assert "'DONE' is not one of" in bad["msg"] and "4 FINISHED" in bad["msg"]
        assert "pattern" not in bad["msg"]


async def test_paging_values_are_whole_numbers(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        assert (await client.get("/jobs?offset=&limit=")).status_code == 200
        for bad in ("offset=-1", "limit=1.5", "offset=%2B1", "limit=ten"):
            assert_error(await client.get(f"/jobs?{bad}"), 400, "KE-010000003")
        schema = (await client.get("http://kjobs.test/openapi.json")).json()
        params = {p["name"]: p for p in schema["paths"]["/kylin/api/jobs"]["get"]["parameters"]}
        for name in ("offset", "limit"):
            assert params[name]["schema"]["anyOf"][0] == {"type": "integer", "minimum": 0}
