"""The report: the issue's keys with their targets, the JSON document and the terminal table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TextIO


@dataclass(frozen=True, slots=True)
class Target:
    """A figure's target: ``value <op> bound`` (``bound`` None: reference only)."""

    key: str
    what: str
    op: str = ">="  #: ">=" or "<="
    bound: float | None = None
    unit: str = ""


#: every key of the issue's table, in its order
TARGETS: Final = (
    Target("durable_steps_per_s", "2,000 jobs x 10 steps, 100 at once, SQLite", ">=", 15_000),
    Target("baseline_steps_per_s", "minimal aiosqlite group-commit loop", bound=None),
    Target("ratio_to_baseline", "durable / baseline", ">=", 0.5),
    Target("step_overhead_us_p50", "one job alone: step end -> next start", "<=", 60, "us"),
    Target("step_overhead_us_p99", "one job alone: step end -> next start", "<=", 1_000, "us"),
    Target("submit_to_running_ms_p50", "idle engine: submit -> first step RUNNING", "<=", 2, "ms"),
    Target("shell_steps_per_s", "real `true` steps, 20 jobs at once", ">=", 400),
    Target("cancel_to_sigterm_ms", "discard -> SIGTERM in the child", "<=", 50, "ms"),
    Target("cancel_to_group_dead_ms", "discard -> process group gone", "<=", None, "ms"),
    Target("api_get_job_rps", "kjobs serve, 50 clients, GET job", ">=", 2_000),
    Target("api_p99_ms", "kjobs serve, 50 clients, GET job", "<=", 25, "ms"),
    Target("rest_steps_per_s", "1,000 sample builds, 10 clients, serve", ">=", 8_000),
    Target("rest_submit_ms_p50", "the same run: build PUT latency", "<=", 5, "ms"),
    Target("rest_submit_ms_p99", "the same run: build PUT latency", "<=", 25, "ms"),
    Target("list_jobs_p99_ms_100k", "100,000 jobs, GET /jobs filtered, paged", "<=", 50, "ms"),
    Target("list_jobs_p99_ms_1m", "1,000,000 jobs, the same queries", "<=", 50, "ms"),
    Target("streaming_list_p99_ms_10k", "10,000 streaming jobs, by data_latency", "<=", 50, "ms"),
    Target("rss_mb_100k_jobs", "idle engine process, 100,000 jobs stored", "<=", 300, "MB"),
    Target("rss_mb_1m_jobs", "idle engine process, 1,000,000 jobs stored", "<=", 300, "MB"),
    Target("sim_24h_wall_s", "24 h scenario on the virtual clock", "<=", 20, "s"),
    Target("sim_events_per_s", "the same run: events recorded per second", bound=None),
    Target("notifier_per_s", "job-end notifications POSTed to a loopback receiver", bound=None),
    Target("sweep_100k_s", "retention sweep of 100,000 old jobs", "<=", None, "s"),
    Target(
        "monitor_page_load_ms_100k", "/kylin/ in Chromium, 100,000 jobs stored", "<=", None, "ms"
    ),
    Target("sse_events_per_s_100_clients", "events delivered to 100 SSE clients", bound=None),
)
KEYS: Final = tuple(t.key for t in TARGETS)


def bound_of(target: Target, details: Mapping[str, Any]) -> float | None:
    """The target's bound; the group-dead bound is the grace period used plus 100 ms."""
    if target.key == "cancel_to_group_dead_ms":
        grace = details.get("cancel", {}).get("grace_s")
        return None if grace is None else grace * 1000.0 + 100.0
    return target.bound


def verdicts(figures: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, bool | None]:
    """Per key: met (True), missed (False), or not measured / reference only (None)."""
    out: dict[str, bool | None] = {}
    for target in TARGETS:
        value, bound = figures.get(target.key), bound_of(target, details)
        if value is None or bound is None:
            out[target.key] = None
        else:
            out[target.key] = value >= bound if target.op == ">=" else value <= bound
    return out


def document(
    figures: Mapping[str, Any],
    details: Mapping[str, Any],
    machine: Mapping[str, Any],
    wall_s: float,
) -> dict[str, Any]:
    """The one JSON document: every key (None when not measured), then the context."""
    doc: dict[str, Any] = {key: figures.get(key) for key in KEYS}
    doc["targets"] = {
        t.key: (None if bound_of(t, details) is None else f"{t.op} {bound_of(t, details):g}")
        for t in TARGETS
    }
    doc["met"] = verdicts(figures, details)
    doc["machine"] = dict(machine)
    doc["bench_wall_s"] = round(wall_s, 1)
    doc["details"] = dict(details)
    return doc


def write_json(doc: Mapping[str, Any], out: TextIO) -> None:
    """The document, indented, on ``out``."""
    out.write(json.dumps(doc, indent=2, default=str) + "\n")
    out.flush()


def table(doc: Mapping[str, Any]) -> str:
    """A readable table of the figures against their targets."""
    met: Mapping[str, bool | None] = doc["met"]
    targets: Mapping[str, str | None] = doc["targets"]
    rows = [("key", "value", "target", "")]
    for target in TARGETS:
        value = doc.get(target.key)
        shown = "null" if value is None else f"{value:,.3f}".rstrip("0").rstrip(".")
        verdict = {True: "ok", False: "MISS", None: ""}[met[target.key]]
        rows.append(
            (target.key, f"{shown} {target.unit}".strip(), targets[target.key] or "", verdict)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    machine = doc.get("machine", {})
    lines.append(
        f"\n{machine.get('cpus')} CPUs ({machine.get('cpu_model')}), Python "
        f"{machine.get('python')}; the bench took {doc.get('bench_wall_s')} s"
    )
    return "\n".join(lines)
