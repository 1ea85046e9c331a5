"""``GET /metrics`` (SPEC §10), parsed with prometheus_client's own parser."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from engine.config import Config, load_config
from engine.core.errors import ConfigError
from engine.facade import Engine
from tests.conftest import ServerProcess
from tests.monitor_kit import UUID, samples, scrape, value, wait_until

SCALE = 5000.0
ROOT = "http://kjobs.test"  #: the ASGI clients' origin (their base URL is the API)
Metrics = dict[tuple[str, tuple[Any, ...]], float]
LABELS = {"status", "result", "command_type", "state", "model", "le"}
OpenApi = Callable[..., AbstractAsyncContextManager[tuple[Engine, httpx.AsyncClient]]]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, launch_server: Callable[..., ServerProcess]
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("metrics")
    proc = launch_server(folder, folder / "kjobs.sqlite", SCALE)
    yield proc
    proc.stop()


def build(client: httpx.Client, cube: str, start: int, end: int) -> str:
    body = {"startTime": start, "endTime": end, "buildType": "BUILD"}
    response = client.put(f"/cubes/{cube}/rebuild", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["uuid"])


def settle(client: httpx.Client, job_ids: list[str]) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        jobs = [client.get(f"/jobs/{j}").json() for j in job_ids]
        final = all(j["job_status"] in {"FINISHED", "ERROR", "DISCARDED"} for j in jobs)
        return jobs if final else None

    result: list[dict[str, Any]] = wait_until(done, 120, "jobs to end")
    return result


def grew(before: Metrics, after: Metrics, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.mark.slow
def test_counts_agree_with_the_overview_and_histograms_grow(server: ServerProcess) -> None:
    before = scrape(server.url)
    window = int(time.time() * 1000)
    with server.client() as client:
        ids = [build(client, "kylin_sales_cube", window + i, window + i + 1) for i in range(3)]
        ids.append(build(client, "broken_cube", window, window + 1))
        jobs = settle(client, ids)
        overview = client.get("/jobs/overview").json()
    after = scrape(server.url)
    for status, count in overview.items():
        assert value(after, "kjobs_jobs", status=status) == count, status
    finished = value(after, "kjobs_jobs_finished_total", result="FINISHED")
    assert finished - value(before, "kjobs_jobs_finished_total", result="FINISHED") == 3
    errors = value(after, "kjobs_jobs_finished_total", result="ERROR")
    assert errors - value(before, "kjobs_jobs_finished_total", result="ERROR") == 1
    # every step that ended (FINISHED or ERROR) is one observation, under its command type
    ended: dict[str, int] = {}
    for job in jobs:
        for step in job["steps"]:
            if step["step_status"] in {"FINISHED", "ERROR"}:
                ended[step["cmd_type"]] = ended.get(step["cmd_type"], 0) + 1
    for cmd_type, n in ended.items():
        name = "kjobs_step_duration_seconds_count"
        grew = value(after, name, command_type=cmd_type) - value(
            before, name, command_type=cmd_type
        )
        assert grew == n, cmd_type
    waits = "kjobs_job_wait_seconds_count"
    assert value(after, waits) - value(before, waits) == 4
    assert value(after, "kjobs_store_write_seconds_count") > value(
        before, "kjobs_store_write_seconds_count"
    )
    assert (
        value(after, "kjobs_slots", state="used") + value(after, "kjobs_slots", state="free") == 10
    )
    # a lone node (SPEC §9): itself the one live node, no lease lost, nothing to rescue
    assert value(after, "kjobs_nodes") == 1
    assert (after[("kjobs_leases_lost_total", ())], after[("kjobs_jobs_rescued_total", ())]) == (
        0,
        0,
    )


@pytest.mark.slow
def test_no_id_is_ever_a_label(server: ServerProcess) -> None:
    window = int(time.time() * 1000) + 10_000
    with server.client() as client:
        ids = [build(client, "kylin_sales_cube", window, window + 1)]
        settle(client, ids)
        client.put(
            "/streaming_jobs/status", json={"action": "START", "job_ids": [stream_id(client)]}
        )
    metrics = wait_until(
        lambda: (
            (m := scrape(server.url))
            and value(m, "kjobs_streaming_data_latency_seconds", model="sales_stream_model") > 0
            and m
        ),
        60,
        "the streaming latency gauge",
    )
    for name, labels in metrics:
        assert {k for k, _ in labels} <= LABELS, name
        for _, label_value in labels:
            assert not UUID.search(label_value), (name, label_value)
            assert ids[0] not in label_value


def stream_id(client: httpx.Client) -> str:
    page = client.get("/streaming_jobs", params={"model_names": "sales_stream_model"}).json()
    return next(str(j["uuid"]) for j in page["data"]["value"] if j["job_type"] == "STREAMING_BUILD")


async def test_metrics_need_credentials_unless_public(
    make_config: Callable[..., Config], open_api: Callable[..., Any]
) -> None:
    async with open_api(make_config()) as (_, client):
        anonymous = await client.get(ROOT + "/metrics", auth=None)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Basic")
        assert (await client.get(ROOT + "/metrics")).status_code == 200
    async with open_api(make_config(**{"kjobs.metrics.public": True})) as (_, client):
        public = await client.get(ROOT + "/metrics", auth=None)
        assert public.status_code == 200
        assert "kjobs_jobs" in public.text
        # the API and the page stay guarded
        assert (await client.get("/jobs/overview", auth=None)).status_code == 401
        assert (await client.get(ROOT + "/kylin/", auth=None)).status_code == 401


def test_metrics_public_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kjobs\.metrics\.public"):
        load_config(environ={}, overrides={"kjobs.metrics.public": "maybe"})
    config = load_config(environ={"KJOBS_METRICS_PUBLIC": "true"}, overrides={})
    assert config.engine.metrics_public is True


async def test_the_library_exposes_the_registry(make_config: Callable[..., Config]) -> None:
    async with Engine(make_config()) as engine:
        job = await engine.submit_build("kylin_sales_cube")
        await engine.wait_for(job.id, {job.state.SUCCEED}, timeout=60)
        parsed = samples(generate_latest(engine.metrics.registry).decode())
        assert value(parsed, "kjobs_jobs_finished_total", result="FINISHED") == 1
        assert value(parsed, "kjobs_jobs", status="FINISHED") == 1
        assert value(parsed, "kjobs_job_wait_seconds_count") == 1
