"""The monitor page in a real browser against a real ``kjobs serve`` (SPEC §10)."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow
DAY_MS = 86_400_000


def build(server: ServerProcess, cube: str, start: int = 0, end: int = 0) -> str:
    body = {"startTime": start, "endTime": end, "buildType": "BUILD"}
    with server.client() as client:
        response = client.put(f"/cubes/{cube}/rebuild", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["uuid"])


_WINDOWS = itertools.count()


def window() -> int:
    """A fresh day-long segment range (epoch ms), so that builds of one cube never overlap."""
    return (int(time.time() * 1000) // DAY_MS - 400 + next(_WINDOWS) * 2) * DAY_MS


def status_of(server: ServerProcess, job_id: str) -> str:
    with server.client() as client:
        return str(client.get(f"/jobs/{job_id}").json()["job_status"])


def row(page: Page, job_id: str) -> str:
    return f'tr[data-job-id="{job_id}"]'


def test_jobs_appear_and_change_status_without_a_reload(page: Page, server: ServerProcess) -> None:
    page.evaluate("window.__sameDocument = true")
    start = window()
    job_id = build(server, "kylin_sales_cube", start, start + DAY_MS)
    expect(page.locator(row(page, job_id))).to_have_count(1)
    expect(page.locator(row(page, job_id))).to_have_attribute("data-status", "FINISHED")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    finished = page.locator('[data-overview="FINISHED"] .count')
    with server.client() as client:
        count = client.get("/jobs/overview").json()["FINISHED"]
    expect(finished).to_have_text(str(count))
    # a finished job: drop allowed, resume/pause/discard disabled
    buttons = page.locator(row(page, job_id))
    expect(buttons.locator('[data-action="drop"]')).to_be_enabled()
    for action in ("resume", "pause", "discard"):
        expect(buttons.locator(f'[data-action="{action}"]')).to_be_disabled()


def test_resume_of_an_error_job_from_the_page(page: Page, server: ServerProcess) -> None:
    start = window()
    job_id = build(server, "flaky_cube", start, start + DAY_MS)  # fails once, then succeeds
    job_row = page.locator(row(page, job_id))
    expect(job_row).to_have_attribute("data-status", "ERROR")
    job_row.locator('[data-action="resume"]').click()
    expect(job_row).to_have_attribute("data-status", "FINISHED")
    assert status_of(server, job_id) == "FINISHED"


def test_discard_asks_first_then_discards(page: Page, server: ServerProcess) -> None:
    job_id = build(server, "shell_demo_cube")
    job_row = page.locator(row(page, job_id))
    expect(job_row).to_have_attribute("data-status", "RUNNING")
    dialog = page.locator("dialog#confirm")
    job_row.locator('[data-action="discard"]').click()
    expect(dialog).to_be_visible()
    dialog.locator('[data-action="cancel"]').click()
    expect(dialog).to_be_hidden()
    assert status_of(server, job_id) == "RUNNING"  # cancelling the dialog changed nothing
    job_row.locator('[data-action="discard"]').click()
    dialog.locator('[data-action="confirm"]').click()
    expect(job_row).to_have_attribute("data-status", "DISCARDED")
    assert status_of(server, job_id) == "DISCARDED"


def test_a_refused_action_shows_the_servers_message(page: Page, server: ServerProcess) -> None:
    start = window()
    job_id = build(server, "kylin_sales_cube", start, start + DAY_MS)
    job_row = page.locator(row(page, job_id))
    expect(job_row).to_have_attribute("data-status", "FINISHED")
    job_row.click()
    detail = page.locator("#detail")
    detail.locator('[data-action="drop"]').click()
    expect(page.locator("dialog#confirm")).to_be_visible()
    # while the user reads the dialog, somebody else drops the job
    with server.client() as client:
        assert client.delete(f"/jobs/{job_id}/drop").status_code == 200
        refusal = client.delete(f"/jobs/{job_id}/drop")
    assert refusal.status_code == 404
    message = refusal.json()["msg"]
    page.locator('dialog#confirm [data-action="confirm"]').click()
    expect(page.locator('.toast[role="alert"]')).to_contain_text(message)
    expect(page.locator(row(page, job_id))).to_have_count(0)


def test_live_output_grows_while_a_step_runs(page: Page, server: ServerProcess) -> None:
    job_id = build(server, "shell_demo_cube")
    job_row = page.locator(row(page, job_id))
    expect(job_row).to_have_attribute("data-status", "RUNNING")
    job_row.click()
    # the detail follows the running step; its output grows line by line
    slow = page.locator('.step-row[data-step-status="RUNNING"]', has_text="Count Very Slowly")
    expect(slow).to_be_visible()
    output = page.locator("#step-output")
    expect(output).to_contain_text("slow line 2")
    expect(output).to_contain_text("slow line 6")
    assert status_of(server, job_id) == "RUNNING"
    expect(page.locator(".step-detail .live-tag")).to_be_visible()
    with server.client() as client:
        assert client.put(f"/jobs/{job_id}/cancel").status_code == 200
    expect(job_row).to_have_attribute("data-status", "DISCARDED")


def test_the_streaming_tab_starts_and_stops_a_job(page: Page, server: ServerProcess) -> None:
    page.locator('.tab[data-tab="streaming"]').click()
    with server.client() as client:
        listed = client.get("/streaming_jobs", params={"model_names": "sales_stream_model"})
    stream_id = next(
        j["uuid"] for j in listed.json()["data"]["value"] if j["job_type"] == "STREAMING_BUILD"
    )
    stream_row = page.locator(f'tr[data-streaming-id="{stream_id}"]')
    expect(stream_row).to_have_attribute("data-status", "STOPPED")
    expect(stream_row.locator('[data-action="STOP"]')).to_be_disabled()
    stream_row.locator('[data-action="START"]').click()
    expect(stream_row).to_have_attribute("data-status", "RUNNING")
    expect(stream_row.locator('[data-action="START"]')).to_be_disabled()
    stream_row.click()
    expect(page.locator("#stream-detail .chart")).to_have_count(3)
    expect(page.locator("#stream-detail .record-list li").first).to_contain_text("START")
    stream_row.locator('[data-action="STOP"]').click()
    expect(stream_row).to_have_attribute("data-status", "STOPPED")
    # a broken model's START is refused with the server's message
    broken = next(j for j in client_jobs(server) if j["model_alias"] == "broken_stream_model")
    page.locator(f'tr[data-streaming-id="{broken["uuid"]}"] [data-action="START"]').click()
    expect(page.locator('.toast[role="alert"]')).to_contain_text("broken")


def client_jobs(server: ServerProcess) -> list[dict[str, object]]:
    with server.client() as client:
        return list(
            client.get("/streaming_jobs", params={"page_size": 100}).json()["data"]["value"]
        )


def test_a_screenshot_of_the_page(page: Page, server: ServerProcess, tmp_path: Path) -> None:
    start = window()
    days = [window() for _ in range(3)]
    ids = [build(server, "kylin_sales_cube", day, day + DAY_MS) for day in days]
    ids.append(build(server, "broken_cube", start, start + DAY_MS))
    running = build(server, "shell_demo_cube")
    for job_id in ids:
        expect(page.locator(row(page, job_id))).to_have_attribute(
            "data-status", "FINISHED" if job_id != ids[-1] else "ERROR"
        )
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator(row(page, running)).click()
    expect(page.locator("#step-output")).to_contain_text("slow line 3")
    path = tmp_path / "monitor.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    target = os.environ.get("KJOBS_SCREENSHOTS")  # `KJOBS_SCREENSHOTS=docs` refreshes the README's
    if target:
        shutil.copy(path, Path(target) / "monitor.png")
    with server.client() as client:
        client.put(f"/jobs/{running}/cancel")


def test_the_page_needs_credentials(server: ServerProcess) -> None:
    anonymous = httpx.get(server.url + "/kylin/", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert "<html" not in anonymous.text
    root = httpx.get(server.url + "/", timeout=10)
    assert root.status_code in {307, 401}
    redirect = httpx.get(server.url + "/", auth=("ADMIN", "KYLIN"), timeout=10)
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "/kylin/"
    page = httpx.get(server.url + "/kylin/", auth=("ADMIN", "KYLIN"), timeout=10)
    assert page.status_code == 200
    assert "kjobs-config" in page.text
