"""Streaming jobs survive a crash of a real ``kjobs serve`` (SPEC §5 "Engine restart").

The server runs at 20x: a launch takes 0.1 s and a micro-batch's processing 50 ms. The state
at the moment of the crash is made exact by freezing the server (SIGSTOP) and reading its
SQLite file before the SIGKILL: what the file says then is what the next server recovers.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess

SCALE = 20.0
DEADLINE_S = 20.0
PROJECT = "learn_kylin"
ATTEMPTS = 10  #: tries to catch the job in STOPPING (a STOP lands between batches rarely)


def model_id(client: httpx.Client, alias: str) -> str:
    page = client.get("/streaming_jobs", params={"model_names": alias}).json()["data"]
    return str(page["value"][0]["model_id"])


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    params = {"job_ids": job_id, "project": PROJECT}
    response = client.get("/streaming_jobs", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"]["value"][0])


def records(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    response = client.get("/streaming_jobs/records", params={"job_id": job_id})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def act(client: httpx.Client, action: str, job_id: str) -> None:
    body = {"action": action, "job_ids": [job_id], "project": PROJECT}
    response = client.put("/streaming_jobs/status", json=body)
    assert response.status_code == 200, response.text


def wait_job(client: httpx.Client, job_id: str, done: Callable[[dict[str, Any]], bool]) -> dict:
    """Poll the listed job until ``done`` holds (bounded)."""
    deadline = time.monotonic() + DEADLINE_S
    while not done(current := job(client, job_id)):
        assert time.monotonic() < deadline, current
        time.sleep(0.01)
    return current


def set_duration(client: httpx.Client, job_id: str, seconds: str) -> None:
    params = {**job(client, job_id)["params"], "kylin.streaming.duration": seconds}
    body = {"job_id": job_id, "project": PROJECT, "params": params}
    response = client.put("/streaming_jobs/params", json=body)
    assert response.status_code == 200, response.text


def stored(store: Path, job_id: str) -> tuple[str, int | None, int]:
    """(status, last_batch_count, newest record id) as the SQLite file holds them now."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10) as db:
        status, count = db.execute(
            "SELECT status, last_batch_count FROM streaming_jobs WHERE uuid = ?", (job_id,)
        ).fetchone()
        (newest,) = db.execute(
            "SELECT coalesce(max(id), 0) FROM streaming_records WHERE job_id = ?", (job_id,)
        ).fetchone()
    return str(status), count, int(newest)


def freeze_while_stopping(server: ServerProcess, client: httpx.Client, job_id: str) -> None:
    """STOP the running job and freeze the server while the job is still STOPPING."""
    for _ in range(ATTEMPTS):
        act(client, "STOP", job_id)
        os.kill(server.process.pid, signal.SIGSTOP)
        if stored(server.store, job_id)[0] == "STOPPING":
            return
        os.kill(server.process.pid, signal.SIGCONT)  # the batch ended first: again
        wait_job(client, job_id, lambda j: j["job_status"] == "STOPPED")
        act(client, "START", job_id)
        wait_job(client, job_id, lambda j: j["job_status"] == "RUNNING")
    pytest.fail(f"{job_id} was never caught STOPPING in {ATTEMPTS} attempts")


def test_a_killed_server_relaunches_running_jobs_and_fails_stopping_ones(
    kjobs_server: Callable[..., ServerProcess],
) -> None:
    server = kjobs_server(time_scale=SCALE)
    with server.client() as client:
        sales = f"{model_id(client, 'sales_stream_model')}_build"
        flaky = f"{model_id(client, 'flaky_stream_model')}_build"
        set_duration(client, sales, "1")  # a batch every 50 ms
        set_duration(client, flaky, "0.001")  # always inside a batch: a STOP has to wait
        act(client, "START", flaky)  # the flaky model's first launch fails
        wait_job(client, flaky, lambda j: j["launching_error"])
        act(client, "START", flaky)
        act(client, "START", sales)
        wait_job(client, flaky, lambda j: j["job_status"] == "RUNNING")
        wait_job(client, sales, lambda j: j["job_status"] == "RUNNING" and j["last_batch_count"])
        before = job(client, sales)
        freeze_while_stopping(server, client, flaky)

    status, batches, sales_record = stored(server.store, sales)
    assert status == "RUNNING" and batches is not None
    flaky_record = stored(server.store, flaky)[2]
    server.stop(signal.SIGKILL)
    assert server.process.returncode == -signal.SIGKILL

    again = kjobs_server(time_scale=SCALE, store=server.store)
    with again.client() as client:
        # RUNNING: stopped and launched again by the new server (a STOP, then a new START)
        relaunched = wait_job(client, sales, lambda j: j["job_execution_id"] == 2)
        new = [r for r in records(client, sales) if r["id"] > sales_record]
        assert [r["action"] for r in reversed(new)][:2] == ["STOP", "START"]
        assert relaunched["last_start_time"] == new[-2]["create_time"]
        assert relaunched["node_info"] != before["node_info"]  # another process runs it
        # STOPPING: ERROR with its record, not relaunched
        failed = job(client, flaky)
        assert failed["job_status"] == "ERROR" and failed["launching_error"] is False
        assert failed["job_execution_id"] == 1  # its one successful launch, none since
        new = [r for r in records(client, flaky) if r["id"] > flaky_record]
        assert [r["action"] for r in new] == ["ERROR"]
        assert failed["last_end_time"] == new[0]["create_time"]


def test_a_relaunched_build_job_goes_on_with_its_micro_batches(
    kjobs_server: Callable[..., ServerProcess],
) -> None:
    server = kjobs_server(time_scale=SCALE)
    with server.client() as client:
        sales = f"{model_id(client, 'sales_stream_model')}_build"
        set_duration(client, sales, "1")
        act(client, "START", sales)
        wait_job(client, sales, lambda j: j["job_status"] == "RUNNING" and j["last_batch_count"])
    server.stop(signal.SIGKILL)

    again = kjobs_server(time_scale=SCALE, store=server.store)
    with again.client() as client:
        wait_job(client, sales, lambda j: j["job_execution_id"] == 2)
        seen = stats_count(client, sales)

        def more_batches(current: dict[str, Any]) -> bool:
            assert current["job_status"] == "RUNNING", records(client, sales)
            return stats_count(client, sales) > seen + 2

        wait_job(client, sales, more_batches)
        assert [r["action"] for r in records(client, sales)][:2] == ["START", "STOP"]
        # the relaunched job answers actions as usual
        act(client, "STOP", sales)
        wait_job(client, sales, lambda j: j["job_status"] == "STOPPED")


def stats_count(client: httpx.Client, job_id: str) -> int:
    response = client.get(f"/streaming_jobs/stats/{job_id}")
    assert response.status_code == 200, response.text
    return len(response.json()["data"]["create_time"])
