"""The ``kjobs`` client commands, run as real processes against live ``kjobs serve`` servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow  # every test runs several real `kjobs` processes

DEADLINE_S = 30.0
DAY, TWO_DAYS, THREE_DAYS = (str(n * 86_400_000) for n in (1, 2, 3))


@pytest.fixture(scope="module")
def fast_server(launch_server: Callable[..., Any], tmp_path_factory: Any) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("cli-fast")
    server = launch_server(folder, folder / "kjobs.sqlite", 5000.0)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_server(launch_server: Callable[..., Any], tmp_path_factory: Any) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("cli-slow")
    server = launch_server(folder, folder / "kjobs.sqlite", 50.0)
    yield server
    server.stop()


def kjobs(
    server: Any, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``kjobs ARGS`` against ``server`` (``KJOBS_URL``), bounded."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}
    base["KJOBS_URL"] = server.url if server is not None else "http://127.0.0.1:9"
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=DEADLINE_S,
        check=False,
    )


def submitted_id(result: subprocess.CompletedProcess[str]) -> str:
    first = result.stdout.splitlines()[0]
    assert first.startswith("submitted "), result.stdout
    return first.split()[1]


def wait_rest(server: Any, job_id: str, done: Callable[[dict], bool]) -> dict:
    deadline = time.monotonic() + DEADLINE_S
    with server.client() as client:
        while not done(job := client.get(f"/jobs/{job_id}").json()):
            assert time.monotonic() < deadline, job["job_status"]
            time.sleep(0.02)
    return dict(job)


def test_submit_wait_then_jobs_status_and_output(fast_server: Any) -> None:
    result = kjobs(fast_server, "submit", "kylin_sales_cube", "--start", "0", "--end", DAY,
                   "--wait", "--interval", "0.05")  # fmt: skip
    assert result.returncode == 0, result.stderr
    jid = submitted_id(result)
    assert f"job {jid} FINISHED" in result.stdout
    assert "%" in result.stderr  # the progress bar

    listed = kjobs(fast_server, "jobs", "--cube", "sales", "--status", "FINISHED")
    assert listed.returncode == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["JOB", "ID", "CUBE"]
    assert any(row.startswith(jid) and "FINISHED" in row for row in rows)
    assert kjobs(fast_server, "jobs", "--status", "ERROR").stdout.strip() == "no jobs"

    status = kjobs(fast_server, "status", jid)
    assert status.returncode == 0
    assert status.stdout.startswith(f"{jid}  FINISHED  100%")
    assert "Build Base Cuboid" in status.stdout
    watched = kjobs(fast_server, "status", jid, "--watch")
    assert watched.returncode == 0 and "FINISHED" in watched.stdout

    output = kjobs(fast_server, "output", f"{jid}-03")
    assert output.returncode == 0
    assert "Build Dimension Dictionary" in output.stdout
    unpadded = kjobs(fast_server, "output", f"{jid}-3")
    assert unpadded.stdout == output.stdout


def test_output_follow_waits_for_the_step(fast_server: Any) -> None:
    jid = submitted_id(kjobs(fast_server, "submit", "kylin_sales_cube", "--start", DAY,
                             "--end", TWO_DAYS))  # fmt: skip
    followed = kjobs(fast_server, "output", f"{jid}-02", "--follow", "--interval", "0.05")
    assert followed.returncode == 0, followed.stderr
    assert "map 100% reduce 100%" in followed.stdout
    assert followed.stdout.count("completed successfully") == 1


def test_flaky_job_fails_then_resume(fast_server: Any) -> None:
    failed = kjobs(fast_server, "submit", "flaky_cube", "--wait", "--interval", "0.05")
    assert failed.returncode == 1
    jid = submitted_id(failed)
    assert f"job {jid} ERROR" in failed.stdout
    resumed = kjobs(fast_server, "resume", jid)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"{jid}  PENDING")
    watched = kjobs(fast_server, "status", jid, "--watch", "--interval", "0.05")
    assert watched.returncode == 0
    assert f"{jid}  FINISHED" in watched.stdout


def test_rollback_then_drop(fast_server: Any) -> None:
    result = kjobs(fast_server, "submit", "kylin_sales_cube", "--start", TWO_DAYS, "--end",
                   THREE_DAYS, "--wait", "--interval", "0.05")  # fmt: skip
    jid = submitted_id(result)
    rolled = kjobs(fast_server, "rollback", jid, "5")
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.startswith(f"{jid}  PENDING")
    wait_rest(fast_server, jid, lambda j: j["job_status"] == "FINISHED")
    rolled = kjobs(fast_server, "rollback", jid, f"{jid}-07")
    assert rolled.returncode == 0, rolled.stderr
    wait_rest(fast_server, jid, lambda j: j["job_status"] == "FINISHED")
    dropped = kjobs(fast_server, "drop", jid)
    assert dropped.returncode == 0
    assert dropped.stdout.startswith(f"dropped {jid}")
    again = kjobs(fast_server, "drop", jid)
    assert again.returncode == 1
    assert again.stderr == f"kjobs: Cannot find job '{jid}'\n"


def test_pause_resume_discard_a_running_job(slow_server: Any) -> None:
    jid = submitted_id(kjobs(slow_server, "submit", "slow_cube"))
    wait_rest(slow_server, jid, lambda j: j["job_status"] == "RUNNING")
    paused = kjobs(slow_server, "pause", jid)
    assert paused.returncode == 0 and paused.stdout.startswith(f"{jid}  STOPPED")
    resumed = kjobs(slow_server, "resume", jid)
    assert resumed.returncode == 0 and resumed.stdout.startswith(f"{jid}  PENDING")
    wait_rest(slow_server, jid, lambda j: j["job_status"] == "RUNNING")
    discarded = kjobs(slow_server, "discard", jid)
    assert discarded.returncode == 0 and discarded.stdout.startswith(f"{jid}  DISCARDED")
    refused = kjobs(slow_server, "pause", jid)
    assert refused.returncode == 1
    assert len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith(f"kjobs: Cannot pause job '{jid}'")


def test_errors_print_one_line_and_exit_non_zero(fast_server: Any) -> None:
    unknown = kjobs(fast_server, "status", "no-such-job")
    assert (unknown.returncode, unknown.stderr) == (1, "kjobs: Cannot find job 'no-such-job'\n")
    cube = kjobs(fast_server, "submit", "no_such_cube")
    assert (cube.returncode, cube.stderr) == (1, "kjobs: Cannot find cube 'no_such_cube'\n")
    denied = kjobs(fast_server, "jobs", "--password", "wrong")
    assert (denied.returncode, denied.stderr) == (1, "kjobs: Unauthorized\n")
    env_denied = kjobs(fast_server, "jobs", env={"KJOBS_USER": "ADMIN", "KJOBS_PASSWORD": "x"})
    assert env_denied.stderr == "kjobs: Unauthorized\n"
    by_flag = kjobs(None, "jobs", "--url", fast_server.url, "--user", "ADMIN", "--password",
                    "KYLIN")  # fmt: skip
    assert by_flag.returncode == 0, by_flag.stderr
    unreachable = kjobs(None, "jobs")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("kjobs: cannot reach http://127.0.0.1:9")
    assert len(unreachable.stderr.splitlines()) == 1
    bad_step = kjobs(fast_server, "output", "not-a-step-id")
    assert bad_step.returncode == 1 and len(bad_step.stderr.splitlines()) == 1
    with httpx.Client(base_url=fast_server.api, auth=("ADMIN", "KYLIN")) as client:
        assert client.get("/jobs/overview").status_code == 200


def test_nodes_lists_the_server_as_a_live_node(fast_server: Any) -> None:
    result = kjobs(fast_server, "nodes")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["NODE", "HOST", "PID"]
    assert len(rows) == 1
    assert str(fast_server.process.pid) in rows[0].split()


def test_prefixes_bulk_actions_restart_and_a_failure_that_says_what_next(fast_server: Any) -> None:
    purged = kjobs(fast_server, "purge", "flaky_cube")  # an earlier test built it in full
    assert purged.returncode == 0, purged.stderr
    failed = kjobs(fast_server, "submit", "flaky_cube", "--start", "0", "--end", DAY,
                   "--wait", "--interval", "0.05")  # fmt: skip
    jid = submitted_id(failed)
    assert failed.returncode == 1
    assert f"`kjobs output {jid}-02` shows its output" in failed.stderr
    assert "Extract Fact Table Distinct Columns is ERROR" in failed.stderr

    status = kjobs(fast_server, "status", jid[:8])  # a unique prefix is enough
    assert status.returncode == 0 and status.stdout.startswith(f"{jid}  ERROR")
    assert kjobs(fast_server, "output", f"{jid[:8]}-02").stdout.strip()
    vague = kjobs(fast_server, "status", "")
    assert vague.returncode == 1 and "job ids" in vague.stderr and "give more" in vague.stderr

    bulk = kjobs(fast_server, "resume", "--status", "error", "--project", "learn_kylin")
    assert bulk.returncode == 0, bulk.stderr
    assert any(line.startswith(jid) for line in bulk.stdout.splitlines())
    wait_rest(fast_server, jid, lambda j: j["job_status"] == "FINISHED")
    assert kjobs(fast_server, "resume", "--status", "ERROR").stdout.strip() == "no ERROR jobs"

    restarted = kjobs(fast_server, "restart", jid[:8])
    assert restarted.returncode == 1  # FINISHED jobs do not restart (Kylin 5's rule)
    assert len(restarted.stderr.splitlines()) == 1
