"""``kjobs schedules list|create|pause|resume|delete`` as real processes against a live server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cli.test_client_commands import kjobs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(launch_server: Callable[..., Any], tmp_path_factory: Any) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("cli-schedules")
    live = launch_server(folder, folder / "kjobs.sqlite", 5000.0)
    yield live
    live.stop()


def test_create_list_pause_resume_delete(server: Any) -> None:
    assert kjobs(server, "schedules", "list").stdout.strip() == "no schedules"
    made = kjobs(server, "schedules", "create", "nightly", "kylin_sales_cube", "--cron",
                 "0 2 * * *", "--catch-up", "last")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "nightly" in made.stdout and "0 2 * * *" in made.stdout and "last" in made.stdout
    listed = kjobs(server, "schedules", "list").stdout
    assert listed.splitlines()[0].split()[:3] == ["NAME", "CUBE", "WHEN"]
    assert "02:00:00" in listed
    assert "paused" in kjobs(server, "schedules", "pause", "nightly").stdout
    assert "02:00:00" in kjobs(server, "schedules", "resume", "nightly").stdout
    assert kjobs(server, "schedules", "delete", "nightly").returncode == 0
    assert kjobs(server, "schedules", "list").stdout.strip() == "no schedules"


def test_errors_print_the_server_message_and_exit_1(server: Any) -> None:
    bad = kjobs(server, "schedules", "create", "x", "kylin_sales_cube", "--cron", "nope")
    assert bad.returncode == 1 and "Invalid cron expression" in bad.stderr
    both = kjobs(server, "schedules", "create", "x", "kylin_sales_cube")
    assert both.returncode == 1 and "exactly one of cron and interval_s" in both.stderr
    unknown = kjobs(server, "schedules", "pause", "ghost")
    assert unknown.returncode == 1 and "schedule 'ghost'" in unknown.stderr
