"""End-to-end against real ``kjobs serve`` processes on free loopback ports.

There is no event stream across the process boundary, so these tests poll the REST API with
small sleeps, always inside a bounded deadline.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx

FULL = {"startTime": 0, "endTime": 0, "buildType": "BUILD"}
DEADLINE_S = 30.0
Server = Callable[..., Any]


def poll(client: httpx.Client, job_id: str, done: Callable[[dict], bool]) -> dict:
    """GET the job until ``done(job)``; fails after ``DEADLINE_S``."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if done(job):
            return dict(job)
        assert time.monotonic() < deadline, f"job stuck: {job['job_status']}"
        time.sleep(0.02)


def status_is(*states: str) -> Callable[[dict], bool]:
    return lambda job: job["job_status"] in states


def step_running(sequence: int) -> Callable[[dict], bool]:
    return lambda job: job["steps"][sequence]["step_status"] == "RUNNING"


def build(client: httpx.Client, cube: str) -> dict:
    response = client.put(f"/cubes/{cube}/build", json=FULL)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_build_a_cube_to_finished(kjobs_server: Server) -> None:
    server = kjobs_server()
    with server.client() as client:
        job = build(client, "kylin_sales_cube")
        done = poll(client, job["uuid"], status_is("FINISHED", "ERROR"))
        assert done["job_status"] == "FINISHED"
        assert done["progress"] == 100.0
        assert done["build_instance"] == f"{server.process.pid}@{socket.gethostname()}"
        listed = client.get("/jobs", params={"status": 4}).json()
        assert [j["uuid"] for j in listed] == [job["uuid"]]
        output = client.get(f"/jobs/{job['uuid']}/steps/{job['uuid']}-2/output").json()
        assert "map 100% reduce 100%" in output["cmd_output"]


def test_flaky_cube_error_then_resume_to_finished(kjobs_server: Server) -> None:
    server = kjobs_server()
    with server.client() as client:
        job = build(client, "flaky_cube")
        failed = poll(client, job["uuid"], status_is("ERROR", "FINISHED"))
        assert failed["job_status"] == "ERROR"
        assert failed["steps"][2]["step_status"] == "ERROR"
        assert client.put(f"/jobs/{job['uuid']}/resume").status_code == 200
        done = poll(client, job["uuid"], status_is("FINISHED", "ERROR"))
        assert done["job_status"] == "FINISHED"
        assert done["exec_interrupt_time"] > 0
        for before, after in zip(failed["steps"][:2], done["steps"][:2], strict=True):
            assert after["exec_start_time"] == before["exec_start_time"]


def test_pause_resume_and_discard_a_running_slow_job(kjobs_server: Server) -> None:
    server = kjobs_server(time_scale=50)  # slow_cube's MR steps: ~12 s each
    with server.client() as client:
        job = build(client, "slow_cube")
        jid = job["uuid"]
        poll(client, jid, step_running(2))
        paused = client.put(f"/jobs/{jid}/pause").json()
        assert paused["job_status"] == "STOPPED"
        assert paused["steps"][2]["step_status"] == "STOPPED"
        assert client.put(f"/jobs/{jid}/resume").json()["job_status"] == "PENDING"
        poll(client, jid, step_running(2))
        discarded = client.put(f"/jobs/{jid}/cancel").json()
        assert discarded["job_status"] == "DISCARDED"
        assert [s["step_status"] for s in discarded["steps"][:2]] == ["FINISHED", "FINISHED"]
        assert {s["step_status"] for s in discarded["steps"][2:]} == {"DISCARDED"}
        assert client.get(f"/jobs/{jid}").json()["job_status"] == "DISCARDED"


def test_server_restart_mid_job_finishes_without_rerunning_steps(kjobs_server: Server) -> None:
    first = kjobs_server(time_scale=300)
    with first.client() as client:
        job = build(client, "kylin_sales_cube")
        jid = job["uuid"]
        before = poll(client, jid, lambda j: j["steps"][3]["step_status"] == "FINISHED")
    assert before["job_status"] == "RUNNING"
    out = first.stop(signal.SIGTERM)
    assert "kjobs: stopped" in out  # the engine shut down cleanly
    finished_before = [s for s in before["steps"] if s["step_status"] == "FINISHED"]
    assert len(finished_before) >= 4

    second = kjobs_server(store=first.store)
    with second.client() as client:
        done = poll(client, jid, status_is("FINISHED", "ERROR"))
    assert done["job_status"] == "FINISHED"
    assert done["exec_start_time"] == before["exec_start_time"]
    for step in finished_before:
        after = done["steps"][step["sequence_id"]]
        assert (after["exec_start_time"], after["exec_end_time"]) == (
            step["exec_start_time"],
            step["exec_end_time"],
        ), f"step {step['sequence_id']} re-ran"
    assert done["build_instance"].startswith(f"{second.process.pid}@")
