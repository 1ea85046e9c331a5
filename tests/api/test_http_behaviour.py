"""HTTP concerns: Basic auth, Accept values, body-less PUTs, unknown routes, faults, OpenAPI."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from engine.api.app import create_app
from engine.config import Config
from engine.core.states import State
from engine.facade import Engine

FastApi = Callable[..., Any]
ERROR_KEYS = ["code", "data", "msg", "exception", "url", "error_code"]
FULL = {"startTime": 0, "endTime": 0, "buildType": "BUILD"}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("ADMIN", "wrong"),
        basic("admin", "KYLIN"),
        basic("NOBODY", "KYLIN"),
        basic("ADMIN", ""),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer abc",
    ],
)
@pytest.mark.parametrize("path", ["/jobs", "/jobs/overview", "/no/such/route", ""])
async def test_unauthenticated_requests_get_401_and_nothing_else(
    fast_api: FastApi, authorization: str | None, path: str
) -> None:
    async with fast_api() as (_, client):
        headers = {"Authorization": authorization} if authorization else {}
        request = client.build_request("GET", path, headers=headers)
        response = await client.send(request, auth=None)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="kylin"'
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert list(body) == ERROR_KEYS
        assert body["msg"] == body["exception"] == "Unauthorized"


async def test_passwords_are_never_logged(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        with capture_logs() as logs:
            await client.get("/jobs", auth=("ADMIN", "sup3r-secret-pw"))
            await client.get("/jobs")
        assert logs, "the refusal is logged"
        assert "sup3r-secret-pw" not in repr(logs)
        assert "KYLIN" not in repr(logs)


async def test_docs_and_openapi_need_no_auth(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        root = httpx.URL(str(client.base_url).removesuffix("/kylin/api"))
        for path in ("/openapi.json", "/docs"):
            response = await client.get(root.join(path), auth=None)
            assert response.status_code == 200
        doc = (await client.get(root.join("/openapi.json"))).json()
        assert doc["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"
        assert doc["paths"]["/health"]["get"].get("security") is None  # for load balancers
        for path, operations in doc["paths"].items():
            if path == "/health":
                continue
            assert path.startswith("/kylin/api/")
            for operation in operations.values():
                assert operation["security"] == [{"basicAuth": []}]
                assert "422" not in operation["responses"]
                assert {"400", "401"} <= set(operation["responses"])


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "application/vnd.apache.kylin-v4-public+json",
        "application/vnd.apache.kylin-v4+json",
        "*/*",
    ],
)
async def test_kylin_accept_values(fast_api: FastApi, accept: str | None) -> None:
    async with fast_api() as (_, client):
        headers = {"Accept": accept} if accept else {}
        request = client.build_request("GET", "/jobs/overview", headers=headers)
        if accept is None:
            request.headers.pop("Accept", None)
        response = await client.send(request)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"


async def test_put_without_body_or_content_type(fast_api: FastApi) -> None:
    """kylinpy's PUTs carry neither a body nor a Content-Type."""
    async with fast_api(**{"kjobs.time-scale": 1}) as (engine, client):
        job = (await client.put("/cubes/slow_cube/build", json=FULL)).json()
        for action, status in (
            ("pause", "STOPPED"),
            ("resume", "PENDING"),
            ("cancel", "DISCARDED"),
        ):
            request = client.build_request("PUT", f"/jobs/{job['uuid']}/{action}")
            request.headers.pop("Content-Type", None)
            assert "content-type" not in request.headers
            response = await client.send(request)
            assert response.status_code == 200, response.text
            assert response.json()["job_status"] == status
            if status == "PENDING":
                await engine.wait_for(job["uuid"], {State.RUNNING}, timeout=20)


async def test_json_body_without_content_type(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        request = client.build_request(
            "PUT", "/cubes/kylin_sales_cube/build", content=b'{"buildType": "BUILD"}'
        )
        assert "content-type" not in request.headers
        response = await client.send(request)
        assert response.status_code == 200, response.text


async def test_unknown_routes_and_methods(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        for path in ("/nothing", "/jobs/", "/jobs/a/b/c/d", "/cubes/kylin_sales_cube/explode"):
            response = await client.get(path)
            assert response.status_code == 404, path
            body = response.json()
            assert list(body) == ERROR_KEYS
            assert body["code"] == "999"
        response = await client.post("/jobs/overview")
        assert response.status_code == 405
        assert list(response.json()) == ERROR_KEYS
        assert "GET" in response.headers["allow"]


def _app_with_a_faulty_route(engine: Engine, debug: bool) -> Any:
    app = create_app(engine, debug=debug)

    @app.get("/kylin/api/fault")
    async def fault() -> None:
        raise RuntimeError("disk on fire")

    return app


@pytest.mark.parametrize("debug", [False, True])
async def test_real_faults_are_500_with_kylin_body(
    make_config: Callable[..., Config], debug: bool
) -> None:
    async with Engine(make_config()) as engine:
        transport = httpx.ASGITransport(
            app=_app_with_a_faulty_route(engine, debug), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", auth=("ADMIN", "KYLIN")
        ) as client:
            with capture_logs() as logs:
                response = await client.get("/kylin/api/fault")
        assert response.status_code == 500
        body = response.json()
        assert list(body)[:6] == ERROR_KEYS
        assert body["msg"] == "Internal server error: RuntimeError"
        assert ("stacktrace" in body) is debug
        if debug:
            assert "disk on fire" in body["stacktrace"]
        assert any(e["event"] == "kjobs.api.internal_error" for e in logs)
