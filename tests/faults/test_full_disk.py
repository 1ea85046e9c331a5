"""A real ``kjobs serve`` whose store sits on a small tmpfs that fills up, then is freed.

While the disk is full: a request that needs a write gets 503 with Kylin's error body and a
``Retry-After`` (never a silent success, never a 500), ``GET /health`` says ``degraded``, reads
still answer, and the running job waits (its refused write is retried, counted in
``kjobs_store_write_retries_total``) without the engine dying. Once space is freed the stuck
job continues and finishes, ``/health`` is ``ok`` again, and every acknowledged write is there,
also after a restart. The time from "space is back" to "the stuck job moved on" is printed.

The tmpfs is mounted by the ``tmpfs`` fixture (``conftest.py``: skipped only where ``mount``
is refused, never when ``CI=true``).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import AUTH, ServerProcess, start_server
from tests.faults.conftest import fill

TMPFS_SIZE = "3m"  #: a fresh store takes about 430 KB; builds fill the rest quickly
DEADLINE_S = 60.0
SCALE = 20.0  #: kylin_sales_cube: about 30 s a build, its MR steps 1.5-4.5 s


def submit(client: httpx.Client, n: int) -> httpx.Response:
    body = {"startTime": n * 1000, "endTime": (n + 1) * 1000, "buildType": "BUILD"}
    return client.put("/cubes/kylin_sales_cube/build", json=body)


def retries(server: ServerProcess) -> float:
    text = httpx.get(server.url + "/metrics", auth=AUTH, timeout=10).text
    found = re.search(r"^kjobs_store_write_retries_total (\S+)$", text, re.MULTILINE)
    assert found is not None, "no kjobs_store_write_retries_total in /metrics"
    return float(found.group(1))


def steps_of(job: dict) -> list[str]:
    return [s["step_status"] for s in job["steps"]]


def wait_for(what: str, check: object) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_full_disk_is_ridden_out_and_nothing_acknowledged_is_lost(
    tmp_path: Path, tmpfs: Callable[[str], Path]
) -> None:
    small_disk = tmpfs(TMPFS_SIZE)
    store = small_disk / "kjobs.sqlite"
    server = start_server(tmp_path, store, SCALE)
    try:
        with server.client() as client:
            first = submit(client, 0)
            assert first.status_code == 200, first.text
            stuck_id = first.json()["uuid"]
            wait_for("the first job to run", lambda: client.get(f"/jobs/{stuck_id}").json()[
                "job_status"] == "RUNNING")  # fmt: skip
            filler = fill(small_disk)

            # writes are refused: 503 with Kylin's body, never a 200 that was not stored
            acknowledged, refused = [stuck_id], None
            for n in range(1, 400):
                answer = submit(client, n)
                if answer.status_code == 503:
                    refused = answer
                    break
                assert answer.status_code == 200, answer.text
                acknowledged.append(answer.json()["uuid"])
            assert refused is not None, "the full disk never refused a write"
            body = refused.json()
            assert list(body) == ["code", "data", "msg", "exception", "url", "error_code"]
            assert body["code"] == "999" and body["data"] is None
            assert "refuses writes" in body["msg"] and "full" in body["msg"]
            assert int(refused.headers["Retry-After"]) > 0

            health = httpx.get(server.url + "/health", timeout=10)  # no credentials
            assert health.status_code == 503
            assert health.json() == {
                "status": "degraded", "store": str(store), "node_id": health.json()["node_id"],
            }  # fmt: skip

            # the running job waits: its refused writes are retried; reads still answer
            before = retries(server)
            wait_for("refused writes to be retried", lambda: retries(server) >= before + 3)
            frozen = client.get(f"/jobs/{stuck_id}").json()
            assert frozen["job_status"] == "RUNNING"
            time.sleep(1.0)
            assert steps_of(client.get(f"/jobs/{stuck_id}").json()) == steps_of(frozen)
            assert server.process.poll() is None, "the server died of a full disk"

            filler.unlink()  # space is back
            freed = time.monotonic()
            wait_for("the stuck job to move on", lambda: steps_of(
                client.get(f"/jobs/{stuck_id}").json()) != steps_of(frozen))  # fmt: skip
            moved = time.monotonic() - freed
            print(f"\nthe stuck job continued {moved:.2f} s after space was freed")
            (tmp_path.parent / "full-disk-recovery-seconds.txt").write_text(f"{moved:.3f}\n")

            wait_for("the stuck job to finish", lambda: client.get(f"/jobs/{stuck_id}").json()[
                "job_status"] in ("FINISHED", "ERROR"))  # fmt: skip
            assert client.get(f"/jobs/{stuck_id}").json()["job_status"] == "FINISHED"
            assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "ok"
            again = submit(client, 1000)
            assert again.status_code == 200, again.text
            acknowledged.append(again.json()["uuid"])
            for job_id in acknowledged:
                assert client.get(f"/jobs/{job_id}").status_code == 200
    finally:
        out = server.stop()
    assert "kjobs: stopped" in out
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM jobs")}
    assert set(acknowledged) <= stored
    log = Path(str(server.stderr)).read_text()
    assert "Traceback" not in log and "kjobs.store.degraded" in log
