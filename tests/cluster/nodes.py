"""Helpers of the cluster tests: a config whose build is a chain of real shell steps that
record themselves in a ledger file, nodes (``kjobs serve`` processes) on one store, and
reading the ledger back.

Every step appends ``{job} {step} start {node} {pid} {ns}`` when it starts and the same with
``end`` when it is done (one short ``echo >>`` each: O_APPEND keeps lines whole).
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.config.load import SHIPPED_CONFIG_DIR
from tests.conftest import ServerProcess, start_server

CUBE = "shell_demo_cube"  #: its BUILD template is replaced by the ledger steps


def ledger_config(folder: Path, steps: int = 3, sleep: str = "sleep 0.2") -> Path:
    """The shipped config with ``shell_demo_cube`` building ``steps`` ledger steps."""
    target = folder / "config"
    if target.exists():
        return target
    shutil.copytree(SHIPPED_CONFIG_DIR, target)
    blocks = ['description = "ledger steps for the cluster tests"', ""]
    for n in range(steps):
        line = f"{{job_id}} {n:02d}"
        mark = '$KJOBS_NODE_ID $$ $(date +%s%N) >> "$TEST_LEDGER"'
        blocks += [
            "[[steps]]",
            f'name = "Ledger Step {n}"',
            'cmd_type = "SHELL_CMD"',
            'mode = "real"',
            f"command = '''echo {line} start {mark}; {sleep}; echo {line} end {mark}'''",
            "timeout = 120",
            "",
        ]
    (target / "templates" / "shell_demo.toml").write_text("\n".join(blocks))
    return target


def start_node(
    folder: Path,
    store: str,
    node_id: str,
    config: Path,
    lease_seconds: float = 2.0,
    slots: int = 10,
) -> ServerProcess:
    """A ``kjobs serve`` node on ``store`` with a short lease; its steps write the ledger."""
    env = {
        "KJOBS_MAX_CONCURRENT_JOBS": str(slots),
        "KJOBS_NODE_ID": node_id,
        "KJOBS_CLUSTER_LEASE_SECONDS": str(lease_seconds),
        "KJOBS_CLUSTER_POLL_INTERVAL": "0.5",
        "KJOBS_KILL_GRACE_PERIOD": "0.5",
        "TEST_LEDGER": str(folder / "ledger.txt"),
    }
    return start_server(folder, store, 1.0, ("--config", str(config)), env)


@dataclass(frozen=True)
class Mark:
    """One ledger line."""

    job_id: str
    step: int
    kind: str  #: start or end
    node: str
    pid: int
    ns: int


def read_ledger(folder: Path) -> list[Mark]:
    """Every complete line of the ledger, in file order."""
    path = folder / "ledger.txt"
    if not path.exists():
        return []
    marks = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 6:
            job, step, kind, node, pid, ns = parts
            marks.append(Mark(job, int(step), kind, node, int(pid), int(ns)))
    return marks


def wait_until(what: str, check: Callable[[], object], timeout: float = 90.0) -> object:
    """Poll ``check`` until it returns something true (bounded); that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def submit_builds(node: ServerProcess, count: int, first: int = 0) -> list[str]:
    """``count`` builds of ``CUBE`` over disjoint ranges (from range number ``first``)."""
    ids = []
    with node.client() as client:
        for n in range(first, first + count):
            body = {"startTime": n * 1000, "endTime": (n + 1) * 1000, "buildType": "BUILD"}
            response = client.put(f"/cubes/{CUBE}/build", json=body)
            assert response.status_code == 200, response.text
            ids.append(response.json()["uuid"])
    return ids


def statuses(node: ServerProcess, ids: list[str]) -> dict[str, str]:
    """Job id -> REST status, as ``node`` answers."""
    with node.client() as client:
        return {i: client.get(f"/jobs/{i}").json()["job_status"] for i in ids}


def check_ledger(marks: list[Mark], ids: list[str], steps: int, killed: set[str]) -> None:
    """Every step ended; its attempts never overlapped; an attempt started after another one
    ended only when that one ran on a killed node (which never recorded it): no step that the
    store knew FINISHED ran again; only killed nodes left an attempt unfinished."""
    by_step: dict[tuple[str, int], list[Mark]] = {}
    for mark in marks:
        by_step.setdefault((mark.job_id, mark.step), []).append(mark)
    for job_id in ids:
        for step in range(steps):
            seen = by_step.get((job_id, step), [])
            assert any(m.kind == "end" for m in seen), (job_id, step, seen)
            spans = []
            for pid in {m.pid for m in seen}:
                pair = [m for m in seen if m.pid == pid]
                start = next(m for m in pair if m.kind == "start")
                end = next((m for m in pair if m.kind == "end"), None)
                assert end is not None or start.node in killed, (job_id, step, pair)
                spans.append((start.ns, end.ns if end else None, start.node))
            spans.sort(key=lambda s: s[0])
            for (_, end, node), (next_start, _, _) in itertools.pairwise(spans):
                # one attempt at a time, and a new one only after an unrecorded one
                assert end is None or end <= next_start, ("overlap", job_id, step, spans)
                assert node in killed, ("re-ran a recorded step", job_id, step, spans)
