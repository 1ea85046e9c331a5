"""The order of the measurements, their sizes, and turning each one's result into figures.

Each stage runs in a fresh event loop (``anyio.run``) or in its own processes, one after the
other, so that no measurement shares the CPU with another. A stage that fails leaves its
figures null, with the reason under ``details``, and the run goes on.
"""

from __future__ import annotations

import functools
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import structlog

from bench import (
    api,
    baseline,
    batch,
    listing,
    memory,
    monitor,
    ops,
    rest,
    shell,
    simulation,
    streaming,
)
from bench.common import rounded
from bench.profile import sampled
from engine.clock import monotonic

log = structlog.get_logger("kjobs")


@dataclass(frozen=True, slots=True)
class Sizes:
    """Workload sizes (the issue's by default; ``QUICK`` for a fast check of the harness)."""

    jobs: int = 2000
    steps: int = 10
    concurrency: int = 100
    latency_jobs: int = 200
    shell_jobs: int = 20
    shell_steps: int = 25
    cancel_samples: int = 7
    grace_s: float = 0.5
    api_clients: int = 50
    api_seconds: float = 5.0
    stored_jobs: int = 100_000
    stored_jobs_large: int = 1_000_000  #: the store grown to this many for the ``_1m`` keys
    list_rounds: int = 50
    rest_builds: int = 1000
    rest_clients: int = 10
    streaming_jobs: int = 10_000
    sim_hours: float | None = None  #: None: the scenario's 24 hours
    notifications: int = 2_000
    swept_jobs: int = 100_000
    page_rounds: int = 5
    sse_clients: int = 100
    sse_jobs: int = 20


FULL: Final = Sizes()
QUICK: Final = Sizes(
    jobs=100, steps=5, concurrency=20, latency_jobs=20, shell_jobs=4, shell_steps=3,
    cancel_samples=1, grace_s=0.2, api_clients=4, api_seconds=0.5, stored_jobs=2_000,
    stored_jobs_large=4_000, list_rounds=3, rest_builds=20, rest_clients=4, streaming_jobs=200,
    sim_hours=0.25, notifications=50,
    swept_jobs=500, page_rounds=1, sse_clients=3, sse_jobs=2,
)  # fmt: skip

Progress = Callable[[str], None]
Figures = tuple[dict[str, Any], dict[str, Any]]  #: (the issue's figures, details)
StageFn = Callable[[], Figures]
Stage = Callable[[Path, Sizes], Figures]


@dataclass
class Results:
    """Figures (the issue's keys) and details (how each was measured, extra numbers)."""

    figures: dict[str, Any]
    details: dict[str, Any]


def run_stage(
    results: Results, name: str, keys: tuple[str, ...], fn: StageFn, progress: Progress
) -> None:
    """Run one stage into ``results``; on failure its ``keys`` are null and the error noted."""
    progress(name)
    started = monotonic()
    try:
        figures, detail = fn()
    except Exception as exc:  # a broken stage must not lose the other figures
        for key in keys:
            results.figures.setdefault(key, None)
        results.details[name] = {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=4).splitlines()[-6:],
        }
        log.warning("kjobs.bench.stage_failed", stage=name, error=repr(exc))
        return
    results.figures.update(figures)
    detail["stage_s"] = round(monotonic() - started, 2)
    results.details[name] = detail


def run_all(sizes: Sizes, only: frozenset[str] | None, progress: Progress) -> Results:
    """Every stage (or those named in ``only``), in order."""
    results = Results({}, {})
    with tempfile.TemporaryDirectory(prefix="kjobs-bench-") as tmp:
        root = Path(tmp)
        for name, keys, fn in _stages(root, sizes):
            if only is None or name in only:
                run_stage(results, name, keys, fn, progress)
    base = results.figures.get("baseline_steps_per_s")
    durable = results.figures.get("durable_steps_per_s")
    results.figures["ratio_to_baseline"] = (
        rounded(durable / base, 3) if durable is not None and base else None
    )
    return results


STAGES: Final = (
    "baseline", "durable", "latency", "shell", "cancel", "api", "rest", "listing", "streaming",
    "simulation", "ops", "monitor",
)  # fmt: skip


def _folder(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _baseline(root: Path, s: Sizes) -> Figures:
    path = _folder(root, "baseline") / "baseline.sqlite"
    out = anyio.run(baseline.group_commit_loop, path, s.jobs, s.steps, s.concurrency)
    return {"baseline_steps_per_s": rounded(out["steps_per_s"], 0)}, out


def _durable(root: Path, s: Sizes) -> Figures:
    with sampled() as profile:
        out = anyio.run(
            batch.durable_throughput, _folder(root, "durable"), s.jobs, s.steps, s.concurrency
        )
    out["durability"] = "WAL synchronous=NORMAL (the store's default)"
    out["profile"] = profile
    return {"durable_steps_per_s": rounded(out["steps_per_s"], 0)}, out


def _latency(root: Path, s: Sizes) -> Figures:
    with sampled() as profile:
        out = anyio.run(batch.step_latency, _folder(root, "latency"), s.latency_jobs, s.steps)
    out["profile"] = profile
    figures = {
        "step_overhead_us_p50": rounded(out["step_overhead_us_p50"]),
        "step_overhead_us_p99": rounded(out["step_overhead_us_p99"]),
        "submit_to_running_ms_p50": rounded(out["submit_to_running_ms_p50"], 3),
    }
    return figures, out


def _shell(root: Path, s: Sizes) -> Figures:
    out = anyio.run(shell.shell_throughput, _folder(root, "shell"), s.shell_jobs, s.shell_steps)
    return {"shell_steps_per_s": rounded(out["steps_per_s"], 0)}, out


def _cancel(root: Path, s: Sizes) -> Figures:
    out = anyio.run(shell.cancel_latency, _folder(root, "cancel"), s.cancel_samples, s.grace_s)
    figures = {
        "cancel_to_sigterm_ms": rounded(out["cancel_to_sigterm_ms"], 2),
        "cancel_to_group_dead_ms": rounded(out["cancel_to_group_dead_ms"], 1),
    }
    return figures, out


def _api(root: Path, s: Sizes) -> Figures:
    out = api.get_job_load(_folder(root, "api"), s.api_clients, s.api_seconds)
    figures = {
        "api_get_job_rps": rounded(out["rps"], 0),
        "api_p99_ms": rounded(out["p99_ms"], 2),
    }
    return figures, out


def _rest(root: Path, s: Sizes) -> Figures:
    out = rest.sample_builds(_folder(root, "rest"), s.rest_builds, s.rest_clients)
    figures = {
        "rest_steps_per_s": rounded(out["steps_per_s"], 0),
        "rest_submit_ms_p50": rounded(out["submit_ms_p50"], 2),
        "rest_submit_ms_p99": rounded(out["submit_ms_p99"], 2),
    }
    return figures, out


def _listing(root: Path, s: Sizes) -> Figures:
    work = _folder(root, "listing")
    store = work / "jobs.sqlite"
    filled = listing.fill(store, s.stored_jobs)
    rss = memory.idle_engine_rss(store)
    listed = listing.list_latency(store, work, s.list_rounds)
    grown = listing.fill(store, s.stored_jobs_large - s.stored_jobs, first=s.stored_jobs)
    rss_large = memory.idle_engine_rss(store)
    listed_large = listing.list_latency(store, work, s.list_rounds)
    figures = {
        "list_jobs_p99_ms_100k": rounded(listed["p99_ms"], 2),
        "rss_mb_100k_jobs": rounded(rss["rss_mb"], 1),
        "list_jobs_p99_ms_1m": rounded(listed_large["p99_ms"], 2),
        "rss_mb_1m_jobs": rounded(rss_large["rss_mb"], 1),
    }
    detail = {"store": filled, "rss": rss, "list": listed}
    detail["large"] = {"store": grown, "rss": rss_large, "list": listed_large}
    return figures, detail


def _streaming(root: Path, s: Sizes) -> Figures:
    work = _folder(root, "streaming")
    try:
        out = streaming.http_list_latency(work, s.streaming_jobs, s.list_rounds)
    except streaming.RouteMissing as missing:
        out = anyio.run(streaming.list_latency, work, s.streaming_jobs, s.list_rounds)
        out["http"] = str(missing)
    return {"streaming_list_p99_ms_10k": rounded(out["p99_ms"], 2)}, out


def _monitor(root: Path, s: Sizes) -> Figures:
    work = _folder(root, "monitor")
    store = work / "jobs.sqlite"
    filled = listing.fill(store, s.stored_jobs)
    page = monitor.page_load(store, work, s.page_rounds)
    fanout = monitor.sse_fanout(work, s.sse_clients, s.sse_jobs)
    figures = {
        "monitor_page_load_ms_100k": rounded(page["p50_ms"], 0),
        "sse_events_per_s_100_clients": rounded(fanout["events_per_s"], 0),
    }
    return figures, {"store": filled, "page": page, "fanout": fanout}


def _simulation(root: Path, s: Sizes) -> Figures:
    out = simulation.scenario_wall(_folder(root, "simulation"), hours=s.sim_hours)
    figures = {
        "sim_24h_wall_s": rounded(out["wall_s"], 1),
        "sim_events_per_s": rounded(out["events"] / out["wall_s"], 0),
    }
    return figures, out


def _ops(root: Path, s: Sizes) -> Figures:
    sent = anyio.run(ops.notifier_throughput, _folder(root, "notifier"), s.notifications)
    swept = anyio.run(ops.sweep_time, _folder(root, "sweep"), s.swept_jobs)
    figures = {
        "notifier_per_s": rounded(sent["per_s"], 0),
        "sweep_100k_s": rounded(swept["wall_s"], 2),
    }
    return figures, {"notifier": sent, "sweep": swept}


#: (stage, the figures it gives, how it runs), in the order a run takes them
STAGE_TABLE: Final[tuple[tuple[str, tuple[str, ...], Stage], ...]] = (
    ("baseline", ("baseline_steps_per_s",), _baseline),
    ("durable", ("durable_steps_per_s",), _durable),
    ("latency", ("step_overhead_us_p50", "step_overhead_us_p99", "submit_to_running_ms_p50"),
     _latency),
    ("shell", ("shell_steps_per_s",), _shell),
    ("cancel", ("cancel_to_sigterm_ms", "cancel_to_group_dead_ms"), _cancel),
    ("api", ("api_get_job_rps", "api_p99_ms"), _api),
    ("rest", ("rest_steps_per_s", "rest_submit_ms_p50", "rest_submit_ms_p99"), _rest),
    ("listing", ("list_jobs_p99_ms_100k", "rss_mb_100k_jobs", "list_jobs_p99_ms_1m",
                 "rss_mb_1m_jobs"), _listing),
    ("streaming", ("streaming_list_p99_ms_10k",), _streaming),
    ("simulation", ("sim_24h_wall_s", "sim_events_per_s"), _simulation),
    ("ops", ("notifier_per_s", "sweep_100k_s"), _ops),
    ("monitor", ("monitor_page_load_ms_100k", "sse_events_per_s_100_clients"), _monitor),
)  # fmt: skip


def _stages(root: Path, s: Sizes) -> list[tuple[str, tuple[str, ...], StageFn]]:
    return [(name, keys, functools.partial(fn, root, s)) for name, keys, fn in STAGE_TABLE]
