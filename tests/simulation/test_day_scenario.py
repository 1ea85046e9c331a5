"""24 simulated hours with the sample catalog (reduced size): the summary agrees with the log.

The counts are recomputed here from ``events.jsonl`` alone, with code of this test's own, and
compared with ``summary.json``. The log itself must only hold legal transitions, in time order.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine.core.states import State, StreamingStatus, can_stream_transition, can_transition
from engine.simulation import SimulationResult, load_scenario, prepare, simulate
from tests.simulation.conftest import HERE

DAY = HERE / "scenarios" / "day.toml"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    out = tmp_path_factory.mktemp("day")
    return simulate(prepare(load_scenario(DAY)), out_dir=out)


def _records(result: SimulationResult) -> list[dict[str, Any]]:
    assert result.events_path is not None
    return [json.loads(line) for line in result.events_path.read_text().splitlines()]


def _nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def recount(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary's numbers, from the records alone."""
    kinds = Counter(r["kind"] for r in records)
    actions = Counter(r["action"] for r in records if r["kind"] == "action")
    refused = Counter(r["action"] for r in records if r["kind"] == "refused")
    final: dict[str, str] = {}
    started: dict[tuple[str, int], int] = {}
    runs: dict[str, list[int]] = {}
    wait_ms = 0
    for r in records:
        if r["kind"] == "job":
            final[r["job"]] = r["state"]
        elif r["kind"] in ("step", "retry"):
            wait_ms += r.get("wait_ms", 0)
        if r["kind"] == "step" and r["state"] == "RUNNING":
            started[(r["job"], r["step"])] = r["t"]
        elif r["kind"] == "step" and r["from"] == "RUNNING":
            began = started.pop((r["job"], r["step"]))
            if r["state"] == "SUCCEED":
                runs.setdefault(r["name"], []).append(r["t"] - began)
    batches = [r for r in records if r["kind"] == "batch"]
    merges = [r for r in records if r["kind"] == "merge"]
    streaming = {r["job"]: r["state"] for r in records if r["kind"] == "streaming"}
    made = sum(1 for b in batches if b["rows"])
    merged = sum(m["segments"] for m in merges)
    return {
        "events": len(records),
        "submitted": actions["SUBMIT"] - refused["SUBMIT"],
        "by_status": dict(Counter(final.values())),
        "retries": kinds["retry"],
        "resumes": actions["RESUME"] - refused["RESUME"],
        "steps": {
            name: (len(ms), _nearest_rank(ms, 0.5) / 1000, _nearest_rank(ms, 0.95) / 1000)
            for name, ms in runs.items()
        },
        "mr_queue_wait_s": wait_ms / 1000,
        "streaming_status": dict(Counter(streaming.values())),
        "batches": len(batches),
        "empty_batches": len(batches) - made,
        "rows": sum(b["rows"] for b in batches),
        "segments": made,
        "merges": len(merges),
        "merged_segments": merged,
        "segments_at_end": made - merged + len(merges),
        "max_latency_s": max((b["latency_ms"] for b in batches), default=0) / 1000,
    }


def test_summary_numbers_agree_with_the_event_log(day: SimulationResult) -> None:
    assert day.summary_path is not None
    summary = json.loads(day.summary_path.read_text())
    assert summary == day.summary
    counted = recount(_records(day))
    stream = summary["streaming"]
    assert summary["events"] == counted["events"] == day.events
    assert summary["jobs"]["submitted"] == counted["submitted"]
    assert summary["jobs"]["by_status"] == counted["by_status"]
    assert sum(summary["jobs"]["by_status"].values()) == summary["jobs"]["submitted"]
    assert summary["retries"] == counted["retries"]
    assert summary["resumes"] == counted["resumes"]
    assert summary["mr_queue_wait_s"] == counted["mr_queue_wait_s"]
    assert {n: (s["runs"], s["p50_s"], s["p95_s"]) for n, s in summary["steps"].items()} == (
        counted["steps"]
    )
    assert stream["by_status"] == counted["streaming_status"]
    for key in ("batches", "empty_batches", "rows", "segments", "merges", "merged_segments"):
        assert stream[key] == counted[key], key
    assert stream["segments_at_end"] == counted["segments_at_end"]
    assert stream["max_data_latency_s"] == counted["max_latency_s"]


def test_the_day_exercised_what_it_promises(day: SimulationResult) -> None:
    s = day.summary
    by_status = s["jobs"]["by_status"]
    assert s["jobs"]["submitted"] >= 40
    assert by_status.get("SUCCEED", 0) >= 30 and by_status.get("DISCARDED", 0) >= 1
    assert s["retries"] > 0 and s["resumes"] > 0 and s["mr_queue_wait_s"] > 0
    assert s["refused"]  # the second START of a running streaming job, at least
    assert s["actions"]["PAUSE"] >= 1 and s["actions"]["RESTART"] >= 1
    assert {"Merge Cuboid Data", "Build Base Cuboid"} <= set(s["steps"])
    assert s["streaming"]["merges"] > 0 and s["streaming"]["empty_batches"] >= 0
    assert s["streaming"]["max_data_latency_s"] > 0


def test_the_log_holds_only_legal_transitions_in_time_order(day: SimulationResult) -> None:
    records = _records(day)
    assert records[0]["kind"] == "simulation" and records[-1]["kind"] == "end"
    assert records[-1]["t"] - records[0]["t"] == 24 * 3_600_000
    times = [r["t"] for r in records]
    assert times == sorted(times)
    for r in records:
        assert list(r)[:3] == ["t", "at", "kind"]
        if r["kind"] in ("job", "step") and "from" in r:
            assert can_transition(State(r["from"]), State(r["state"])), r
        elif r["kind"] == "streaming":
            old, new = StreamingStatus(r["from"]), StreamingStatus(r["state"])
            assert can_stream_transition(old, new), r


def test_outputs_are_written(day: SimulationResult) -> None:
    assert day.out_dir is not None
    assert {p.name for p in day.out_dir.iterdir()} == {
        "events.jsonl",
        "summary.json",
        "timeline.svg",
    }
    assert isinstance(day.sha256, str) and len(day.sha256) == 64


def test_shipped_default_runs_too(tmp_path: Path) -> None:
    from engine.cli.simulate import DEFAULT_SCENARIO

    result = simulate(prepare(load_scenario(DEFAULT_SCENARIO), hours=2), out_dir=tmp_path)
    assert result.summary["jobs"]["submitted"] > 5
