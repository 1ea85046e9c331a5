"""``/kylin/api/schedules`` over the real app (ASGI): shapes, pause/resume, and bad input that
answers Kylin's error body with a clear 4xx and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from engine.facade import Engine

Api = Callable[..., AbstractAsyncContextManager[tuple[Engine, httpx.AsyncClient]]]
NIGHTLY = {"name": "nightly", "cube": "kylin_sales_cube", "cron": "0 2 * * *"}
DAY_MS = 86_400_000


async def test_create_list_get_pause_resume_delete(fast_api: Api) -> None:
    async with fast_api() as (engine, client):
        created = await client.post("/schedules", json=NIGHTLY)
        assert created.status_code == 200, created.text
        body = created.json()
        now = engine.now_ms()
        assert body == {
            "name": "nightly", "cube": "kylin_sales_cube", "project": "learn_kylin",
            "cron": "0 2 * * *", "interval_s": None, "build_type": "BUILD", "overlap": "skip",
            "catch_up": "none", "paused": False, "next_fire_time": body["next_fire_time"],
            "last_job_id": None,
        }  # fmt: skip
        assert now < body["next_fire_time"] <= now + DAY_MS
        assert body["next_fire_time"] % DAY_MS == 2 * 3_600_000  # 02:00 UTC
        assert (await client.get("/schedules")).json() == [body]
        assert (await client.get("/schedules/nightly")).json() == body
        paused = (await client.put("/schedules/nightly/pause")).json()
        assert paused["paused"] is True and paused["next_fire_time"] is None
        resumed = (await client.put("/schedules/nightly/resume")).json()
        assert resumed["paused"] is False and resumed["next_fire_time"] == body["next_fire_time"]
        hourly = {"name": "hourly", "cube": "kylin_sales_cube", "interval_s": 3600,
                  "overlap": "queue", "catch_up": "all", "project": "learn_kylin"}  # fmt: skip
        assert (await client.post("/schedules", json=hourly)).json()["interval_s"] == 3600
        assert (await client.delete("/schedules/nightly")).json()["name"] == "nightly"
        assert [s["name"] for s in (await client.get("/schedules")).json()] == ["hourly"]
        missing = await client.get("/schedules/nightly")
        assert missing.status_code == 404 and missing.json()["code"] == "999"


BAD: list[tuple[dict[str, Any], int, str]] = [
    ({**NIGHTLY, "cube": "no_such_cube"}, 404, "Cannot find cube 'no_such_cube'"),
    ({**NIGHTLY, "cron": "61 * * * *"}, 400, "Invalid cron expression"),
    ({**NIGHTLY, "cron": "not a cron"}, 400, "Invalid cron expression"),
    ({**NIGHTLY, "cron": "0 0 30 2 *"}, 400, "never fires"),
    ({**NIGHTLY, "interval_s": 60}, 400, "exactly one of cron and interval_s"),
    ({"name": "x", "cube": "kylin_sales_cube"}, 400, "exactly one of cron and interval_s"),
    ({"name": "x", "cube": "kylin_sales_cube", "interval_s": 0}, 400, "at least 1"),
    ({"name": "x", "cube": "kylin_sales_cube", "interval_s": -5}, 400, "at least 1"),
    ({**NIGHTLY, "name": "taken"}, 409, "already exists"),
    ({**NIGHTLY, "project": "no_such_project"}, 404, "Cannot find project"),
    ({**NIGHTLY, "overlap": "sometimes"}, 400, "overlap"),
    ({**NIGHTLY, "name": "a/b"}, 400, "name"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD)
async def test_bad_input_is_a_clear_4xx_and_changes_nothing(
    fast_api: Api, body: dict[str, Any], status: int, message: str
) -> None:
    async with fast_api() as (_, client):
        assert (await client.post("/schedules", json={**NIGHTLY, "name": "taken"})).is_success
        before = (await client.get("/schedules")).json()
        answer = await client.post("/schedules", json=body)
        assert answer.status_code == status, answer.text
        error = answer.json()
        assert error["code"] == "999" and error["error_code"].startswith("KE-")
        assert message in error["msg"]
        assert (await client.get("/schedules")).json() == before


@pytest.mark.parametrize("method", ["get", "delete"])
async def test_an_unknown_schedule_is_404(fast_api: Api, method: str) -> None:
    async with fast_api() as (_, client):
        answer = await getattr(client, method)("/schedules/nope")
        assert answer.status_code == 404 and "schedule 'nope'" in answer.json()["msg"]
        for action in ("pause", "resume"):
            assert (await client.put(f"/schedules/nope/{action}")).status_code == 404
