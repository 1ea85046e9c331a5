"""Several ``kjobs serve`` processes on one SQLite file share the work through leases (SPEC §9):
no job runs twice, and a node paused past its lease loses its job without recording it."""

from __future__ import annotations

import os
import signal
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
from tests.monitor_kit import scrape, value

pytestmark = pytest.mark.slow

STEPS = 3


def test_two_servers_on_one_sqlite_file_never_run_a_job_twice(tmp_path: Path) -> None:
    config = ledger_config(tmp_path, STEPS)
    store = str(tmp_path / "kjobs.sqlite")
    a = start_node(tmp_path, store, "a", config)
    b = start_node(tmp_path, store, "b", config)
    try:
        ids = submit_builds(a, 12) + submit_builds(b, 12, first=12)
        wait_until(
            "every job FINISHED",
            lambda: set(statuses(b, ids).values()) == {"FINISHED"},
            timeout=180,
        )
        marks = read_ledger(tmp_path)
        check_ledger(marks, ids, STEPS, killed=set())
        assert {m.node for m in marks} == {"a", "b"}, "both nodes took work"
        with b.client() as client:
            nodes = client.get("/cluster/nodes").json()
        assert [n["node_id"] for n in nodes] == ["a", "b"]
    finally:
        for node in (a, b):
            node.stop()


def test_a_node_paused_past_its_lease_loses_the_job_and_its_step_is_killed(
    tmp_path: Path,
) -> None:
    # on node "a" the first step takes a minute: long enough to be caught running
    config = ledger_config(
        tmp_path, 2, sleep='if [ "$KJOBS_NODE_ID" = a ]; then sleep 60; else sleep 0.2; fi'
    )
    store = str(tmp_path / "kjobs.sqlite")
    a = start_node(tmp_path, store, "a", config)
    (job_id,) = submit_builds(a, 1)
    first = wait_until("a runs the first step", lambda: read_ledger(tmp_path))
    assert first[0].node == "a"  # type: ignore[index]
    b = start_node(tmp_path, store, "b", config)
    try:
        os.kill(a.process.pid, signal.SIGSTOP)
        try:
            wait_until(
                "b takes the job over",
                lambda: any(m.node == "b" for m in read_ledger(tmp_path)),
                timeout=60,
            )
        finally:
            os.kill(a.process.pid, signal.SIGCONT)
        wait_until("the job FINISHED", lambda: statuses(b, [job_id])[job_id] == "FINISHED")
        a_pid = first[0].pid  # type: ignore[index]
        wait_until("a's step is killed", lambda: not _alive(a_pid), timeout=30)
        marks = read_ledger(tmp_path)
        check_ledger(marks, [job_id], 2, killed={"a"})
        assert not [m for m in marks if m.node == "a" and m.kind == "end"]
        assert a.stderr is not None
        wait_until("a logs the lost lease", lambda: "kjobs.lease.lost" in a.stderr.read_text())
        with b.client() as client:
            job = client.get(f"/jobs/{job_id}").json()
        assert job["build_instance"] == "b"
        # SPEC §9's metrics: the loss counted where it happened, the rescue where it ran
        assert value(scrape(a.url), "kjobs_leases_lost_total") == 1
        assert value(scrape(b.url), "kjobs_leases_lost_total") == 0
        assert value(scrape(b.url), "kjobs_jobs_rescued_total") == 1
        wait_until("both nodes live again", lambda: value(scrape(b.url), "kjobs_nodes") == 2)
    finally:
        for node in (a, b):
            node.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
