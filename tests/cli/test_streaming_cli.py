"""``kjobs streaming ...``: real ``kjobs`` processes against a live ``kjobs serve``; the chart
helpers as plain functions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from engine.cli.streaming import ASCII_SPARKS, buckets, sparkline, stats_chart

DEADLINE_S = 30.0
PROJECT = "learn_kylin"
HEADER = ["JOB", "ID", "MODEL", "TYPE", "STATUS", "LAST", "BATCH", "LATENCY", "IN", "STATUS"]


@pytest.fixture(scope="module")
def server(launch_server: Callable[..., Any], tmp_path_factory: Any) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("streaming-cli")
    started = launch_server(folder, folder / "kjobs.sqlite", 5000.0)
    yield started
    started.stop()


def kjobs(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``kjobs ARGS`` against ``server`` (``KJOBS_URL``; None: nothing listens), bounded."""
    return kjobs_all(server, args)[0]


def kjobs_all(server: Any, *commands: Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent ``kjobs`` commands side by side (each start-up costs ~0.5 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}
    env["KJOBS_URL"] = server.url if server is not None else "http://127.0.0.1:9"
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for args in commands
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=DEADLINE_S)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def listed(server: Any, job_id: str) -> dict[str, Any]:
    with server.client() as client:
        params = {"job_ids": job_id, "project": PROJECT}
        return dict(client.get("/streaming_jobs", params=params).json()["data"]["value"][0])


def job_id(server: Any, alias: str, kind: str = "build") -> str:
    with server.client() as client:
        page = client.get("/streaming_jobs", params={"model_names": alias}).json()["data"]
    return f"{page['value'][0]['model_id']}_{kind}"


def wait_status(server: Any, jid: str, status: str, batches: bool = False) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        job = listed(server, jid)
        if job["job_status"] == status and (not batches or job["last_batch_count"]):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def rows(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The table's data rows, split on whitespace (header and footer checked and dropped)."""
    assert result.returncode == 0, result.stderr
    header, *lines, footer = result.stdout.splitlines()
    assert header.split() == [*HEADER, "LAST", "UPDATE"]
    assert footer.startswith("jobs ")
    return [line.split() for line in lines]


def test_list_shows_every_job_and_filters(server: Any) -> None:
    sales_ids = {job_id(server, "sales_stream_model", k) for k in ("build", "merge")}
    everything, sales, exact, paged, none = kjobs_all(
        server,
        ["streaming", "list"],
        ["streaming", "list", "--model-name", "SALES"],
        ["streaming", "list", "--model", "sales_stream_model", "--model", "flaky_stream_model",
         "--type", "build", "--project", PROJECT, "--sort-by", "model_alias", "--no-reverse"],
        ["streaming", "list", "--page", "1", "--page-size", "4"],
        ["streaming", "list", "--model-name", "no_such_model"],
    )  # fmt: skip
    assert len(rows(everything)) == 6
    assert {r[1] for r in rows(everything)} == {
        "sales_stream_model", "broken_stream_model", "flaky_stream_model",
    }  # fmt: skip
    assert all(r[2] in ("BUILD", "MERGE") for r in rows(everything))
    assert {r[0] for r in rows(sales)} == sales_ids
    assert [r[1] for r in rows(exact)] == ["flaky_stream_model", "sales_stream_model"]
    assert len(rows(paged)) == 2 and paged.stdout.splitlines()[-1] == "jobs 5-6 of 6"
    assert none.returncode == 0 and none.stdout.strip() == "no streaming jobs (0 match)"


def test_start_list_stats_stop(server: Any) -> None:
    build = job_id(server, "sales_stream_model")
    started = kjobs(server, "streaming", "start", build, "--project", PROJECT)
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == [build, "START"]
    wait_status(server, build, "RUNNING", batches=True)

    running = rows(kjobs(server, "streaming", "list", "--status", "RUNNING"))
    assert [r[0] for r in running] == [build]
    assert running[0][3] == "RUNNING" and running[0][4] != "-"  # LAST BATCH is filled in

    stats = kjobs(server, "streaming", "stats", build, "--minutes", "60", "--width", "20")
    assert stats.returncode == 0, stats.stderr
    title, rate, latency, processing = stats.stdout.splitlines()
    assert title.startswith(f"{build}: ") and "micro-batches" in title
    assert rate.startswith("consumption rate") and "rows/s" in rate
    assert latency.startswith("data latency") and processing.startswith("processing time")
    chart = rate[len("consumption rate") :].split("last")[0].strip()
    assert 0 < len(chart) <= 20

    stopped = kjobs(server, "streaming", "stop", build)
    assert stopped.returncode == 0 and stopped.stdout.split() == [build, "STOP"]
    wait_status(server, build, "STOPPED")
    records = kjobs(server, "streaming", "records", build)
    assert records.returncode == 0
    assert [line.split()[0] for line in records.stdout.splitlines()] == ["ACTION", "STOP", "START"]


def test_force_stop_and_restart_several_jobs(server: Any) -> None:
    build, merge = (
        job_id(server, "flaky_stream_model"),
        job_id(server, "sales_stream_model", "merge"),
    )
    restarted = kjobs(server, "streaming", "restart", merge, "--project", PROJECT)
    assert restarted.returncode == 0, restarted.stderr
    wait_status(server, merge, "RUNNING")
    forced = kjobs(server, "streaming", "force-stop", build, merge)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.splitlines() == [f"{build}  FORCE_STOP", f"{merge}  FORCE_STOP"]
    assert listed(server, merge)["job_status"] == "STOPPED"
    assert listed(server, build)["job_status"] == "STOPPED"


def test_errors_print_one_line_and_exit_1(server: Any) -> None:
    broken, unknown, page, usage = kjobs_all(
        server,
        ["streaming", "start", job_id(server, "broken_stream_model")],
        ["streaming", "stop", "no_such_job_build"],
        ["streaming", "list", "--page-size", "5000"],
        ["streaming", "list", "--status", "PAUSED"],
    )
    assert broken.returncode == 1 and broken.stdout == ""
    assert (
        broken.stderr == 'kjobs: Can\'t start. Model "broken_stream_model" is currently broken.\n'
    )
    assert unknown.returncode == 1
    assert unknown.stderr == "kjobs: Cannot find job 'no_such_job_build'\n"
    assert page.returncode == 1 and len(page.stderr.splitlines()) == 1
    assert "page_size" in page.stderr
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    nobody = kjobs(None, "streaming", "list")
    assert nobody.returncode == 1 and nobody.stderr.startswith("kjobs: cannot reach ")
    assert len(nobody.stderr.splitlines()) == 1


# -- the chart, without a server ----------------------------------------------------------------


def test_sparkline_scales_from_zero_to_the_largest_value() -> None:
    assert sparkline([0, 1, 2, 4, 8]) == " ▁▂▄█"
    assert sparkline([5, 5, 5]) == "███"
    assert sparkline([0, 0]) == "  "
    assert sparkline([1, 1000]) == "▁█"  # a small value still shows
    assert sparkline([0, 9], ASCII_SPARKS) == " @"


def test_buckets_average_down_to_the_width() -> None:
    assert buckets([1, 2, 3], 10) == [1.0, 2.0, 3.0]
    assert buckets([1, 3, 5, 7], 2) == [2.0, 6.0]
    assert len(buckets(list(range(1000)), 60)) == 60


def test_stats_chart_is_oldest_first_with_last_min_max() -> None:
    stats = {
        "consumption_rate_hist": [300, 200, 100],  # newest first, as the endpoint answers
        "data_latency_hist": [1000, 1000, 2000],
        "processing_time_hist": [0, 50, 100],
        "create_time": [3000, 2000, 1000],
    }
    title, rate, latency, processing = stats_chart("j_build", 30, stats, width=60).splitlines()
    assert title == "j_build: 3 micro-batches, 1970-01-01 00:00:01 .. 1970-01-01 00:00:03 UTC"
    assert rate == "consumption rate  ▃▅█  last 300 rows/s, min 100, max 300"
    assert latency == "data latency      █▄▄  last 1,000 ms, min 1,000, max 2,000"
    assert processing == "processing time   █▄   last 0 ms, min 0, max 100"
    empty = {k: [] for k in stats}
    assert (
        stats_chart("j_build", 5, empty, width=60) == "j_build: no micro-batches in the last 5 min"
    )


def test_start_and_stop_by_model_name(server: Any) -> None:
    merge = job_id(server, "sales_stream_model", "merge")
    started = kjobs(server, "streaming", "start", "sales_stream_model", "--type", "MERGE")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == [merge, "START"]
    wait_status(server, merge, "RUNNING")
    stopped = kjobs(server, "streaming", "force-stop", "sales_stream_model", "--type", "merge")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.split() == [merge, "FORCE_STOP"]
    unknown = kjobs(server, "streaming", "start", "no_such_model")
    assert unknown.returncode == 1 and "no streaming model" in unknown.stderr
