"""``GET /kylin/api/events`` on a real ``kjobs serve`` (SPEC §10): order, slow clients, shutdown."""

from __future__ import annotations

import base64
import itertools
import shlex
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import API, AUTH, ServerProcess
from tests.monitor_kit import (
    FLOOD_STEP,
    SseEvent,
    SseReader,
    config_with_steps,
    scrape,
    value,
)

pytestmark = pytest.mark.slow
SCALE = 5000.0
FLOOD_LINES = 15_000  #: ~6 MB of SSE: more than a stalled socket's kernel buffers hold
PAD = "flood" * 60
FINAL = {"FINISHED", "ERROR", "DISCARDED"}
#: a real first step of every build: it waits while the hold file exists (no file: no wait)
HOLD_STEP = """
[[steps]]
name = "Hold While {hold} Exists"
cmd_type = "SHELL_CMD"
mode = "real"
command = "while [ -e {quoted} ]; do sleep 0.02; done"
timeout = 120
"""


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, launch_server: Callable[..., ServerProcess]
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("events")
    config = config_with_steps(folder, FLOOD_STEP.format(lines=FLOOD_LINES, pad=PAD))
    hold_builds_at(config / "templates" / "build.toml", folder / "hold")
    proc = launch_server(folder, folder / "kjobs.sqlite", SCALE, ("--config", str(config)))
    yield proc
    proc.stop()


def hold_builds_at(template: Path, hold: Path) -> None:
    """Make ``HOLD_STEP`` (on ``hold``) the first step of the builds of ``template``."""
    text = template.read_text()
    first = text.index("\n[[steps]]") + 1  # the first table, not a comment naming it
    step = HOLD_STEP.format(hold=hold.name, quoted=shlex.quote(str(hold)))
    template.write_text(text[:first] + step.lstrip() + "\n" + text[first:])


def build(server: ServerProcess, cube: str, start: int = 0, end: int = 0) -> str:
    body = {"startTime": start, "endTime": end, "buildType": "BUILD"}
    with server.client() as client:
        response = client.put(f"/cubes/{cube}/rebuild", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["uuid"])


def is_final_job(job_id: str) -> Callable[[SseEvent], bool]:
    return lambda e: e.name == "job" and e.data["job_id"] == job_id and e.data["status"] in FINAL


def test_events_for_one_job_arrive_in_order(server: ServerProcess) -> None:
    window = int(time.time() * 1000)
    everything = SseReader(server.api + "/events").start()
    hold = Path(server.store).parent / "hold"
    hold.touch()  # the first job waits in its first step until the narrowed reader listens
    try:
        first = build(server, "kylin_sales_cube", window, window + 1000)
        # narrowed to the first job (subscribed late: it sees the rest of that job's life)
        narrowed = SseReader(server.api + "/events", {"job_id": first}).start()
    finally:
        hold.unlink()
    second = build(server, "kylin_sales_cube", window + 1000, window + 2000)
    narrowed.wait_for(is_final_job(first))
    everything.wait_for(is_final_job(second))

    events = [e for e in everything.snapshot() if e.data.get("job_id") == first]
    job_statuses = [e.data["status"] for e in events if e.name == "job"]
    assert job_statuses == ["PENDING", "RUNNING", "FINISHED"]
    with server.client() as client:
        job = client.get(f"/jobs/{first}").json()
    order = [s["id"] for s in job["steps"]]
    steps = [(e.data["step_id"], e.data["status"]) for e in events if e.name == "step"]
    # each step is submitted, runs, then finishes, strictly after the one before it finished
    pending_at = {sid: i for i, (sid, status) in enumerate(steps) if status == "PENDING"}
    finished_at = {sid: i for i, (sid, status) in enumerate(steps) if status == "FINISHED"}
    running_at = {sid: i for i, (sid, status) in enumerate(steps) if status == "RUNNING"}
    assert list(pending_at) == list(finished_at) == order
    for before, after in itertools.pairwise(order):
        assert running_at[before] < finished_at[before] < running_at[after]
    keys = {"job": {"job_id", "status"}, "step": {"job_id", "step_id", "status"}}
    for event in events:
        assert set(event.data) == keys.get(event.name, {"job_id", "step_id", "line"})
    assert any(e.name == "output" for e in events)

    # the job_id filter: only that job's job, step and output events
    narrow = narrowed.snapshot()
    assert {e.name for e in narrow} <= {"job", "step", "output"}
    assert all(e.data["job_id"] == first for e in narrow)
    assert [e.data["status"] for e in narrow if e.name == "job"][-1] == "FINISHED"


def stalled_client(server: ServerProcess) -> socket.socket:
    """A raw connection that reads the response headers and then never reads again."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    token = base64.b64encode(":".join(AUTH).encode()).decode()
    request = f"GET {API}/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {token}\r\n\r\n"
    sock.sendall(request.encode())
    seen = b""
    while b": subscribed" not in seen:
        chunk = sock.recv(4096)
        assert chunk, seen
        seen += chunk
    return sock


def test_a_client_that_never_reads_blocks_neither_engine_nor_others(server: ServerProcess) -> None:
    dropped_before = value(scrape(server.url), "kjobs_events_dropped_total")
    stalled = stalled_client(server)
    try:
        reader = SseReader(server.api + "/events").start()
        flood = build(server, "shell_demo_cube")
        reader.wait_for(is_final_job(flood), timeout=120)
        # the reading client got the flood's output as it happened
        lines = [e for e in reader.snapshot() if e.name == "output" and e.data["job_id"] == flood]
        resyncs = [e for e in reader.snapshot() if e.name == "resync"]
        assert len(lines) + sum(e.data["dropped"] for e in resyncs) >= FLOOD_LINES
        with server.client() as client:
            assert client.get(f"/jobs/{flood}").json()["job_status"] == "FINISHED"
            # the engine still answers and runs new work at once
            quick = build(server, "kylin_sales_cube", 5000, 6000)
            reader.wait_for(is_final_job(quick))
        # the stalled client's buffer overflowed: its events were dropped, not waited for
        metrics = scrape(server.url)
        assert value(metrics, "kjobs_events_dropped_total") > dropped_before
        assert value(metrics, "kjobs_event_clients") >= 2
    finally:
        stalled.close()


def test_stream_ends_cleanly_when_the_server_shuts_down(
    tmp_path: Path, kjobs_server: Callable[..., ServerProcess]
) -> None:
    server = kjobs_server(time_scale=SCALE)
    reader = SseReader(server.api + "/events").start()
    job_id = build(server, "kylin_sales_cube")
    reader.wait_for(lambda e: e.name == "job" and e.data["job_id"] == job_id)
    started = time.monotonic()
    out = server.stop(signal.SIGTERM, timeout=30)
    assert reader.ended.wait(30)
    # a complete response: the reader saw the end of the body, not a broken connection
    assert reader.error is None, reader.error
    assert "kjobs: stopped" in out  # the engine left through its orderly shutdown
    # not cut off by uvicorn's graceful timeout: the stream was told to end
    assert time.monotonic() - started < 30


def test_events_need_credentials(server: ServerProcess) -> None:
    response = httpx.get(server.api + "/events", timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
