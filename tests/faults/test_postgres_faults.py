"""A real ``kjobs serve`` on a PostgreSQL server that goes away, then comes back.

At start-up an unreachable server is one line naming the store (password hidden) and exit 2.
While the server is down (``pg_ctl stop -m fast``, data kept): a build gets 503 with Kylin's
error body and a ``Retry-After``, ``GET /health`` says ``degraded``, the engine stays up and
retries its running job's refused write. Once the server is back (same port, same data) the
job finishes, ``/health`` is ``ok`` again, the node listens for NOTIFYs again and new builds
are accepted. The time from "server
back" to "the stuck job moved on" is printed. A server that crashes (``immediate``, losing the
last acknowledged commits) three times while builds run: every build still finishes.

The server of this module is its own (``ScratchPostgres``): halting the session's would take
every other PostgreSQL test down with it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest

from engine.store.postgres.scratch import ScratchPostgres, free_port
from tests.conftest import ServerProcess, require_postgres, start_server
from tests.monitor_kit import config_with_steps

pytestmark = pytest.mark.slow
SCALE = 1000.0
DEADLINE_S = 60.0
#: a real step of every shell_demo_cube build: it waits while the gate file exists
GATE_STEP = """
[[steps]]
name = "Wait While {gate} Exists"
cmd_type = "SHELL_CMD"
mode = "real"
command = "while [ -e {quoted} ]; do sleep 0.02; done"
timeout = 120
"""


@pytest.fixture
def own_postgres() -> Iterator[ScratchPostgres]:
    """A PostgreSQL server of this test alone (it is halted and resumed)."""
    require_postgres()
    with ScratchPostgres.start() as server:
        yield server


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def build(client: httpx.Client, n: int) -> httpx.Response:
    body = {"startTime": n * 1000, "endTime": (n + 1) * 1000, "buildType": "BUILD"}
    return client.put("/cubes/shell_demo_cube/build", json=body)


def job_of(client: httpx.Client, job_id: str) -> dict:
    answer = client.get(f"/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def health(server: ServerProcess) -> httpx.Response:
    return httpx.get(server.url + "/health", timeout=10)  # no credentials: load balancers


def test_an_unreachable_server_at_start_up_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"postgresql://kjobs:secret@127.0.0.1:{free_port()}/kjobs"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}
    env["KJOBS_WORKDIR"] = str(tmp_path / "work")
    command = [sys.executable, "-m", "engine.cli", "serve", "--port", "0", "--store", url]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "postgresql://kjobs:***@127.0.0.1" in lines[0] and "cannot connect" in lines[0]
    assert "secret" not in done.stderr + done.stdout
    assert "serving on" not in done.stdout


def test_a_postgres_outage_is_503_and_degraded_then_the_job_goes_on(
    tmp_path: Path, own_postgres: ScratchPostgres
) -> None:
    gate = tmp_path / "gate"
    step = GATE_STEP.format(gate=gate.name, quoted=shlex.quote(str(gate)))
    config = config_with_steps(tmp_path, step)
    url = own_postgres.create_database("outage")
    server = start_server(tmp_path, url, SCALE, ("--config", str(config)))
    try:
        with server.client() as client:
            gate.touch()
            first = build(client, 0)
            assert first.status_code == 200, first.text
            stuck_id = first.json()["uuid"]
            gate_step = f"Wait While {gate.name} Exists"
            wait_for("the gate step to run", lambda: any(
                s["name"] == gate_step and s["step_status"] == "RUNNING"
                for s in job_of(client, stuck_id)["steps"]))  # fmt: skip

            own_postgres.halt()
            refused = build(client, 1)
            assert refused.status_code == 503, refused.text
            body = refused.json()
            assert list(body) == ["code", "data", "msg", "exception", "url", "error_code"]
            assert body["code"] == "999" and body["data"] is None
            assert "refuses writes" in body["msg"] and "PostgreSQL" in body["msg"]
            assert int(refused.headers["Retry-After"]) > 0
            down = health(server)
            assert down.status_code == 503
            assert down.json()["status"] == "degraded"
            assert down.json()["store"] == url  # no password in this URL to hide

            gate.unlink()  # the step ends now: its outcome's write is refused and retried
            time.sleep(1.5)
            assert server.process.poll() is None, "the server died of the outage"
            assert health(server).json()["status"] == "degraded"

            own_postgres.resume()
            back = time.monotonic()
            wait_for("the stuck job to move on", lambda: any(
                s["name"] == gate_step and s["step_status"] == "FINISHED"
                for s in job_of(client, stuck_id)["steps"]))  # fmt: skip
            print(f"\nthe stuck job continued {time.monotonic() - back:.2f} s after the server")
            wait_for("the stuck job to end", lambda: job_of(client, stuck_id)["job_status"] in (
                "FINISHED", "ERROR"))  # fmt: skip
            assert job_of(client, stuck_id)["job_status"] == "FINISHED"
            assert health(server).status_code == 200
            assert health(server).json()["status"] == "ok"
            again = build(client, 2)
            assert again.status_code == 200, again.text
            again_id = again.json()["uuid"]
            wait_for("the new build to finish", lambda: job_of(
                client, again_id)["job_status"] == "FINISHED")  # fmt: skip
    finally:
        out = server.stop()
    assert "kjobs: stopped" in out
    log = Path(str(server.stderr)).read_text()
    assert "Traceback" not in log
    assert "kjobs.store.degraded" in log and "kjobs.store.recovered" in log
    assert "kjobs.store.write_refused" in log and "kjobs.store.write_accepted" in log
    assert "kjobs.store.listening_again" in log  # NOTIFY wake-ups are back
    # in PostgreSQL: both acknowledged builds finished, the refused one was never stored
    stored = anyio.run(states_in, url)
    assert stored == {stuck_id: "SUCCEED", again_id: "SUCCEED"}  # the stored name of FINISHED


def test_a_crashing_postgres_loses_commits_and_every_job_still_finishes(
    tmp_path: Path, own_postgres: ScratchPostgres
) -> None:
    """Three ``immediate`` stops while 30 builds run: the acknowledged commits of the last
    moments (leases, steps) may be gone when the server is back. Each job is then found
    again (a lease that no longer matches ends its runner; the job is adopted once its lease
    is free), no step is failed for the outage, and every build finishes."""
    url = own_postgres.create_database("crashes")
    lease = {"KJOBS_CLUSTER_LEASE_SECONDS": "2.0"}
    server = start_server(tmp_path, url, 20.0, settings=lease)
    try:
        with server.client() as client:
            ids = [build(client, n).json()["uuid"] for n in range(30)]
            for _ in range(3):
                time.sleep(0.7)
                own_postgres.halt(crash=True)
                time.sleep(1.0)
                own_postgres.resume()
            wait_for("every build to end", lambda: all(
                job_of(client, job_id)["job_status"] in ("FINISHED", "ERROR")
                for job_id in ids))  # fmt: skip
            assert {job_of(client, job_id)["job_status"] for job_id in ids} == {"FINISHED"}
    finally:
        server.stop()
    log = Path(str(server.stderr)).read_text()
    assert "kjobs.step.crashed" not in log and "Traceback" not in log
    assert "kjobs.store.degraded" in log and "kjobs.store.recovered" in log


async def states_in(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        return {row[0]: row[1] for row in await conn.fetch("SELECT id, state FROM jobs")}
    finally:
        await conn.close()
