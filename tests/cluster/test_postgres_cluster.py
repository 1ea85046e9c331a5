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
