"""Three ``kjobs serve`` nodes on one PostgreSQL database (SPEC §9): a node SIGKILLed mid-run
loses nothing, no step runs on two nodes at once, the work is spread; an operation sent to any
node stops a job running on another one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.cluster.nodes import (
    check_ledger,
    ledger_config,
    read_ledger,
    start_node,
    statuses,
    submit_builds,
    wait_until,
)
from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow

STEPS = 3
JOBS = 60
STREAMING_PROJECT = "learn_kylin"


def test_three_nodes_finish_every_job_when_one_is_killed_mid_run(
    tmp_path: Path, postgres_url: str
) -> None:
    config = ledger_config(tmp_path, STEPS, sleep="sleep 0.4")
    nodes = [start_node(tmp_path, postgres_url, name, config, slots=4) for name in "abc"]
    a, b, c = nodes
    try:
        ids = submit_builds(a, JOBS // 2) + submit_builds(c, JOBS // 2, first=JOBS // 2)
        wait_until(
            "b ran a few steps",
            lambda: sum(m.node == "b" and m.kind == "end" for m in read_ledger(tmp_path)) >= 3,
        )
        b.process.kill()  # SIGKILL: no clean shutdown, its leases just expire
        b.process.wait(timeout=10)
        wait_until(
            "every job FINISHED",
            lambda: set(statuses(a, ids).values()) == {"FINISHED"},
            timeout=240,
        )
        marks = read_ledger(tmp_path)
        check_ledger(marks, ids, STEPS, killed={"b"})
        for node in "abc":
            assert any(m.node == node for m in marks), f"node {node} took no work"
        with a.client() as client:
            listed = client.get("/cluster/nodes").json()
        assert sorted(n["node_id"] for n in listed) == ["a", "c"]
    finally:
        for node in nodes:
            node.stop()


def test_a_discard_sent_to_one_node_kills_the_step_running_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    config = ledger_config(tmp_path, 1, sleep="sleep 60")
    a = start_node(tmp_path, postgres_url, "a", config)
    b = start_node(tmp_path, postgres_url, "b", config)
    try:
        (job_id,) = submit_builds(b, 1)
        started = wait_until("the step runs", lambda: read_ledger(tmp_path))[0]  # type: ignore[index]
        other: ServerProcess = a if started.node == "b" else b
        with other.client() as client:
            response = client.put(f"/jobs/{job_id}/cancel")
        asked = time.monotonic()
        assert response.status_code == 200, response.text
        assert response.json()["job_status"] == "DISCARDED"
        wait_until("the step's process is killed", lambda: not _alive(started.pid), timeout=30)
        took = time.monotonic() - asked
        assert took < 1.0, f"the step ran on for {took:.2f} s after the discard"
        assert statuses(a, [job_id]) == {job_id: "DISCARDED"}
        assert not [m for m in read_ledger(tmp_path) if m.kind == "end"]
    finally:
        for node in (a, b):
            node.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_streaming_job_of_a_killed_node_runs_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    config = ledger_config(tmp_path)
    a, b = (start_node(tmp_path, postgres_url, name, config) for name in "ab")
    try:
        job_id = streaming_build(a)["uuid"]
        with a.client() as client:
            body = {"action": "START", "job_ids": [job_id], "project": STREAMING_PROJECT}
            answer = client.put("/streaming_jobs/status", json=body)
            assert answer.status_code == 200, answer.text
        wait_until("the job to run on a", lambda: runs_on(a, job_id) == "a")
        # b reads a's writes (within half a second) and leaves the job to a
        wait_until("b to read that it runs on a", lambda: runs_on(b, job_id) == "a", timeout=5)
        time.sleep(3.0)  # b's start-up recovery and several keeper rounds are over
        assert runs_on(a, job_id) == runs_on(b, job_id) == "a"
        a.process.kill()  # SIGKILL: its lease just expires
        a.process.wait(timeout=10)
        killed = time.monotonic()
        wait_until("the job to run on b", lambda: runs_on(b, job_id) == "b")
        print(f"\nthe streaming job ran on b {time.monotonic() - killed:.2f} s after a's SIGKILL")
    finally:
        for node in (a, b):
            node.stop()


def streaming_build(node: ServerProcess) -> dict:
    """The listed build job of the shipped healthy streaming model."""
    with node.client() as client:
        params = {"project": STREAMING_PROJECT, "page_size": 100}
        jobs = client.get("/streaming_jobs", params=params).json()["data"]["value"]
    [job] = [j for j in jobs if j["model_alias"] == "sales_stream_model" and (
        j["job_type"] == "STREAMING_BUILD")]  # fmt: skip
    return dict(job)


def runs_on(node: ServerProcess, job_id: str) -> str | None:
    """The node a RUNNING streaming job was launched on, as ``node`` lists it (else None)."""
    with node.client() as client:
        params = {"project": STREAMING_PROJECT, "job_ids": job_id}
        [job] = client.get("/streaming_jobs", params=params).json()["data"]["value"]
    return job["node_info"] if job["job_status"] == "RUNNING" else None
