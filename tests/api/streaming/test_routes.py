"""The streaming routes as a whole: credentials, absence without streaming, OpenAPI."""

from __future__ import annotations

from tests.api.streaming.kit import (
    ERROR_KEYS,
    OpenApi,
)

# -- the rest -----------------------------------------------------------------------------------


async def test_streaming_routes_need_credentials(stream_api: OpenApi) -> None:
    async with stream_api() as (_, client):
        for method, path in (
            ("GET", "/streaming_jobs"),
            ("PUT", "/streaming_jobs/status"),
            ("GET", "/streaming_jobs/records?job_id=x"),
            ("GET", "/streaming_jobs/stats/x"),
            ("PUT", "/streaming_jobs/params"),
        ):
            response = await client.send(client.build_request(method, path), auth=None)
            assert response.status_code == 401
            assert response.json()["msg"] == "Unauthorized"


async def test_without_streaming_the_routes_do_not_exist(stream_api: OpenApi) -> None:
    async with stream_api(with_streaming=False) as (_, client):
        response = await client.get("/streaming_jobs")
        assert response.status_code == 404
        assert list(response.json()) == ERROR_KEYS


async def test_openapi_documents_the_streaming_routes(stream_api: OpenApi) -> None:
    async with stream_api() as (_, client):
        doc = (await client.get("http://kjobs.test/openapi.json")).json()
        paths = doc["paths"]
        expected = {
            "/kylin/api/streaming_jobs": "get",
            "/kylin/api/streaming_jobs/status": "put",
            "/kylin/api/streaming_jobs/records": "get",
            "/kylin/api/streaming_jobs/stats/{jobId}": "get",
            "/kylin/api/streaming_jobs/params": "put",
        }
        for path, method in expected.items():
            operation = paths[path][method]
            assert "422" not in operation["responses"]
            assert {"200", "400", "401", "404"} <= set(operation["responses"])
        listing = paths["/kylin/api/streaming_jobs"]["get"]
        names = {p["name"] for p in listing["parameters"]}
        # job_ids needs project, which OpenAPI cannot state: it is described in the text
        assert names == {
            "model_name", "model_names", "job_types", "statuses", "project", "page_offset",
            "page_size", "sort_by", "reverse",
        }  # fmt: skip
        assert "`job_ids`" in listing["description"]
        status = doc["components"]["schemas"]["StreamingStatusRequest"]["properties"]["action"]
        assert status["enum"] == ["START", "STOP", "FORCE_STOP", "RESTART"]
