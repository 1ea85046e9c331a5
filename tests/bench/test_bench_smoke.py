"""Every measurement of ``bench/`` at a tiny size, so the benchmark code cannot rot.

These check what each function returns (keys, types, that the work was really done), never how
fast: speed is the bench's business, not the tests'.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from bench import (
    api,
    baseline,
    batch,
    listing,
    memory,
    monitor,
    ops,
    peers,
    report,
    rest,
    shell,
    simulation,
)
from bench import profile as bench_profile
from bench import streaming as streaming_bench
from bench.common import percentile
from bench.run import QUICK, Results, run_all, run_stage
from engine.core.states import State


def _numbers(result: dict[str, Any], *keys: str) -> None:
    for key in keys:
        assert isinstance(result[key], float | int), key
        assert result[key] >= 0, key


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0


async def test_baseline_loop_commits_every_row(tmp_path: Path) -> None:
    out = await baseline.group_commit_loop(tmp_path / "b.sqlite", jobs=6, steps=3, concurrency=2)
    assert out["succeeded_rows"] == 18
    assert 1 <= out["commits"] <= 36
    _numbers(out, "steps_per_s", "wall_s")


async def test_durable_throughput_runs_every_step(tmp_path: Path) -> None:
    out = await batch.durable_throughput(tmp_path, jobs=6, steps=3, concurrency=2)
    assert out["succeeded"] == 6
    assert out["commits"] is not None and out["commits"] >= 1
    _numbers(out, "steps_per_s", "wall_s")


async def test_durable_throughput_with_a_sleep_profile(tmp_path: Path) -> None:
    out = await batch.durable_throughput(
        tmp_path, jobs=2, steps=2, concurrency=2, profile=peers.SLEEP_PROFILE
    )
    assert out["succeeded"] == 2


async def test_step_latency_samples_every_boundary(tmp_path: Path) -> None:
    out = await batch.step_latency(tmp_path, jobs=3, steps=4, warmup=1)
    assert out["samples_overhead"] == 3 * 3
    assert out["samples_submit"] == 3
    _numbers(out, "step_overhead_us_p50", "step_overhead_us_p99", "submit_to_running_ms_p50")
    assert out["step_overhead_us_p50"] <= out["step_overhead_us_p99"]


async def test_shell_throughput_runs_real_steps(tmp_path: Path) -> None:
    out = await shell.shell_throughput(tmp_path, jobs=2, steps=2)
    assert out["succeeded"] == 2
    _numbers(out, "steps_per_s")


async def test_cancel_latency_sees_sigterm_and_the_group_die(tmp_path: Path) -> None:
    out = await shell.cancel_latency(tmp_path, samples=1, grace_s=0.1)
    _numbers(out, "cancel_to_sigterm_ms", "cancel_to_group_dead_ms")
    # SIGTERM is ignored: the group only dies at SIGKILL, after the SIGTERM
    assert out["cancel_to_group_dead_ms"] >= out["cancel_to_sigterm_ms"]
    assert (tmp_path / "cancel-0" / "sigterm").exists()


def test_group_alive_knows_this_process_group() -> None:
    assert shell.group_alive(os.getpgid(0))
    assert not shell.group_alive(2**22 + 12345)


def test_api_load_gets_the_job(tmp_path: Path) -> None:
    out = api.get_job_load(tmp_path, clients=2, duration_s=0.3, warmup_s=0.1)
    assert out["errors"] == 0
    assert out["requests"] > 0
    assert out["job_status"] == "FINISHED"
    assert out["body_bytes"] > 1000
    _numbers(out, "rps", "p99_ms", "server_rss_mb")


def test_sample_builds_through_the_server(tmp_path: Path) -> None:
    out = rest.sample_builds(tmp_path, builds=6, clients=3, concurrent_jobs=4)
    assert out["statuses"]["FINISHED"] == 6
    assert out["steps_per_build"] == 18
    assert "samples" in out["profile"] or "unavailable" in out["profile"]
    _numbers(out, "steps_per_s", "submit_ms_p50", "submit_ms_p99")


def test_profile_summary_counts_the_loop_thread_only() -> None:
    raw = (
        "main (a.py:1);run_forever (base_events.py:1);save_job (/x/engine/store/j.py:9) 3\n"
        "main (a.py:1);run_forever (base_events.py:1);select (selectors.py:4) 1\n"
        "worker (thread.py:1);execute (/x/engine/store/db.py:5) 50\n"
    )
    out = bench_profile.summarize(raw)
    assert out["samples"] == 4
    assert out["self"][0] == "75.0% save_job (engine/store/j.py)"
    assert out["inclusive"] == ["75.0% save_job (engine/store/j.py)"]


def test_monitor_page_load_and_sse_fanout(tmp_path: Path) -> None:
    store = tmp_path / "jobs.sqlite"
    listing.fill(store, count=200)
    page = monitor.page_load(store, tmp_path, rounds=1)
    assert page["rows_drawn"] > 0  # the page drew its first page of jobs
    _numbers(page, "p50_ms", "max_ms", "cold_ms")
    fanout = monitor.sse_fanout(tmp_path, clients=2, jobs=1)
    # every client saw the job's events, through to its end
    assert fanout["events_per_client"] >= 3
    assert fanout["events_total"] == 2 * fanout["events_per_client"]
    _numbers(fanout, "events_per_s", "elapsed_s")


def test_listing_fill_then_list_and_idle_rss(tmp_path: Path) -> None:
    store = tmp_path / "jobs.sqlite"
    filled = listing.fill(store, count=300)
    assert filled["jobs"] == 300
    grown = listing.fill(store, count=100, first=300)
    assert grown["jobs"] == 400
    rss = memory.idle_engine_rss(store)
    _numbers(rss, "rss_mb", "peak_rss_mb")
    out = listing.list_latency(store, tmp_path, rounds=1)
    assert out["requests"] == len(listing.QUERIES)
    assert set(out["queries"]) == set(listing.QUERIES)
    _numbers(out, "p50_ms", "p99_ms")


def test_filled_jobs_decode_as_their_own() -> None:
    ((jobs, definitions, steps),) = listing.build_jobs(50)
    assert len({row[0] for row in jobs}) == len(definitions) == 50
    assert len(steps) == 500
    assert {row[4] for row in jobs} <= {s.value for s in State}


async def test_streaming_list_over_stored_jobs(tmp_path: Path) -> None:
    out = await streaming_bench.list_latency(tmp_path, jobs=40, rounds=2)
    assert out["jobs"] == 40
    assert out["requests"] == 2 * len(streaming_bench.QUERIES)
    _numbers(out, "p50_ms", "p99_ms")


def test_streaming_list_through_the_server(tmp_path: Path) -> None:
    out = streaming_bench.http_list_latency(tmp_path, jobs=40, rounds=1)
    assert out["listed_total"] >= 40
    assert out["requests"] == len(streaming_bench.HTTP_QUERIES)
    assert set(out["queries"]) == set(streaming_bench.HTTP_QUERIES)
    _numbers(out, "p50_ms", "p99_ms")


def test_simulation_runs_a_short_cut_of_the_scenario(tmp_path: Path) -> None:
    out = simulation.scenario_wall(tmp_path, hours=0.05)
    assert out["events"] > 0
    assert out["sha256"]
    _numbers(out, "wall_s", "process_s")


def test_peer_ratios_pair_rows_by_variant() -> None:
    kjobs = [
        {"engine": "kjobs", "variant": "noop", "steps_per_s": 3000.0},
        {"engine": "kjobs-full", "variant": "noop", "steps_per_s": 1500.0},
    ]
    peer_rows: list[dict[str, Any]] = [
        {"engine": "huey", "variant": "noop", "n": 200, "s": 10, "c": 20, "steps_per_s": 750.0},
        {"engine": "luigi", "variant": "noop", "failed": "TIMEOUT"},
    ]
    out = peers.ratios(kjobs, peer_rows)
    assert out[0]["ratio"] == 4.0
    assert out[0]["ratio_full"] == 2.0
    assert out[1]["ratio"] is None
    assert "huey" in peers.table({"ratios": out})


def test_report_has_every_key_and_verdicts() -> None:
    figures = {key: 1.0 for key in report.KEYS}
    doc = report.document(figures, {"cancel": {"grace_s": 0.5}}, {"cpus": 2}, 1.0)
    assert all(key in doc for key in report.KEYS)
    assert doc["targets"]["cancel_to_group_dead_ms"] == "<= 600"
    assert doc["met"]["durable_steps_per_s"] is False
    assert doc["met"]["api_p99_ms"] is True
    assert doc["met"]["baseline_steps_per_s"] is None
    assert "durable_steps_per_s" in report.table(doc)


def test_a_failing_stage_leaves_nulls_and_the_reason(tmp_path: Path) -> None:
    def broken() -> tuple[dict[str, Any], dict[str, Any]]:
        raise RuntimeError("no server")

    results = Results({}, {})
    run_stage(results, "api", ("api_get_job_rps", "api_p99_ms"), broken, lambda _: None)
    assert results.figures == {"api_get_job_rps": None, "api_p99_ms": None}
    assert "no server" in results.details["api"]["error"]


def test_quick_run_of_two_stages_gives_a_full_document() -> None:
    results = run_all(QUICK, frozenset({"durable", "baseline"}), lambda _: None)
    doc = report.document(results.figures, results.details, {"cpus": 2}, 1.0)
    text = io.StringIO()
    report.write_json(doc, text)
    parsed = json.loads(text.getvalue())
    assert all(key in parsed for key in report.KEYS)
    assert parsed["durable_steps_per_s"] > 0
    assert parsed["ratio_to_baseline"] is not None
    assert parsed["api_get_job_rps"] is None  # not run


async def test_ops_figures_deliver_and_sweep_everything(tmp_path: Path) -> None:
    sent = await ops.notifier_throughput(tmp_path, n=20)
    assert sent["sent"] == 20 and sent["failed_attempts"] == 0
    swept = await ops.sweep_time(tmp_path, n=30)
    assert (swept["deleted"], swept["left"]) == (30, 0)
    _numbers(sent, "per_s", "wall_s")


@pytest.mark.slow
def test_cluster_bench_measures_every_figure(postgres_server: Any) -> None:
    from bench import cluster

    figures = anyio.run(cluster.measure, cluster.QUICK)
    for key in (
        "claims_per_s_1_nodes",
        "claims_per_s_3_nodes",
        "steps_per_s_1_nodes",
        "steps_per_s_3_nodes",
        "rescue_s",
    ):
        assert isinstance(figures[key], float), key
        assert figures[key] > 0, key
