"""At least once across a crash: the receiver is down while the real ``kjobs serve`` is
SIGKILLed; the restarted server still delivers the notification (SPEC §11)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.api.test_server_e2e import build, poll, status_is
from tests.conftest import start_server
from tests.ops.receiver import Receiver, free_port

pytestmark = pytest.mark.slow


def test_a_notification_survives_sigkill_while_the_receiver_is_down(tmp_path: Path) -> None:
    port = free_port()
    settings = {
        "KJOBS_FINISHED_NOTIFIER_URL": f"http://127.0.0.1:{port}/hook",
        "KJOBS_NOTIFIER_RETRY_INTERVAL": "100",
        "KJOBS_NOTIFIER_MAX_RETRIES": "100",
        "KJOBS_NOTIFIER_TIMEOUT": "2",
    }
    store = tmp_path / "kjobs.sqlite"
    first = start_server(tmp_path, store, 5000.0, settings=settings)
    with first.client() as client:
        job = build(client, "kylin_sales_cube")
        done = poll(client, job["uuid"], status_is("FINISHED", "ERROR"))
    assert done["job_status"] == "FINISHED"
    first.stop(signal.SIGKILL)  # the notification is in the outbox, not delivered

    with Receiver(port) as receiver:
        second = start_server(tmp_path, store, 5000.0, settings=settings)
        try:
            bodies = receiver.wait_for(
                lambda got: any(b["job_id"] == job["uuid"] for b in got), timeout=120.0
            )
        finally:
            second.stop()
    mine = [b for b in bodies if b["job_id"] == job["uuid"]]
    assert {b["job_state"] for b in mine} == {"FINISHED"}
    assert len({b["event_id"] for b in mine}) == 1  # at least once, one event id
