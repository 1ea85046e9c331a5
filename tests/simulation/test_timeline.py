"""``timeline.svg`` is well-formed XML with one row per job of the log."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from engine.simulation import load_scenario, prepare, simulate
from engine.simulation.timeline import TimelineBuilder
from tests.simulation.conftest import ScenarioFile

SVG = "{http://www.w3.org/2000/svg}"
SCENARIO = """
[simulation]
duration = "3h"
seed = 5
[[arrivals]]
cube = "kylin_sales_cube"
rate_per_hour = 4
[[arrivals]]
cube = "broken_cube"
at = ["30m"]
[[arrivals]]
cube = "slow_cube"
at = ["2h"]
segment = "1d"
[[actions]]
at = "1h"
action = "PAUSE"
cube = "kylin_sales_cube"
[[actions]]
at = "1h10m"
action = "RESUME"
cube = "kylin_sales_cube"
[[streaming]]
model = "sales_stream_model"
[[streaming]]
model = "flaky_stream_model"
start = "20m"
"""


def _rows(svg: Path) -> list[ET.Element]:
    root = ET.parse(svg).getroot()
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "row"]


def test_one_row_per_job_of_the_log(scenario_file: ScenarioFile, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = simulate(prepare(load_scenario(scenario_file(SCENARIO))), out_dir=out)
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    batch_jobs = {r["job"] for r in records if r["kind"] == "job"}
    streaming_jobs = {r["job"] for r in records if r["kind"] in ("streaming", "batch", "merge")}
    rows = _rows(out / "timeline.svg")
    assert [g.get("data-job") for g in rows] == [
        *dict.fromkeys(r["job"] for r in records if r["kind"] == "job"),
        *dict.fromkeys(r["job"] for r in records if r["kind"] in ("streaming", "batch", "merge")),
    ]
    assert len(rows) == len(batch_jobs) + len(streaming_jobs) == result.rows
    assert len(batch_jobs) > 5 and len(streaming_jobs) == 4
    # every step run is a bar in its job's row, with a tooltip naming the step
    runs = sum(1 for r in records if r["kind"] == "step" and r["state"] == "RUNNING")
    bars = [
        rect
        for g in rows[: len(batch_jobs)]
        for rect in g.iter(f"{SVG}rect")
        if rect.find(f"{SVG}title") is not None
    ]
    assert len(bars) == runs
    text = (out / "timeline.svg").read_text()
    for legend in ("step succeeded", "failed (ERROR)", "micro-batch", "merge"):
        assert legend in text


def test_jobs_still_running_at_the_end_get_open_bars(tmp_path: Path) -> None:
    builder = TimelineBuilder()
    start = 1_704_067_200_000
    segment = "20240101000000_20240101010000"
    records = [
        {"t": start, "kind": "simulation", "scenario": "s", "seed": 1},
        {"t": start, "kind": "job", "job": "j1", "state": "READY", "segment": segment},
        {
            "t": start + 1000,
            "kind": "step",
            "job": "j1",
            "step": 0,
            "name": "a",
            "state": "RUNNING",
        },
        {"t": start + 1000, "kind": "job", "job": "j1", "state": "RUNNING"},
    ]
    for record in records:
        builder(record)
    assert builder.render(tmp_path / "t.svg", start + 60_000) == 1
    rows = _rows(tmp_path / "t.svg")
    (bar,) = [r for r in rows[0].iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert "a: RUNNING, 00:00:59.000" in (bar.findtext(f"{SVG}title") or "")


def test_a_large_run_draws_thin_rows_without_labels(tmp_path: Path) -> None:
    builder = TimelineBuilder()
    start = 1_704_067_200_000
    builder({"t": start, "kind": "simulation", "scenario": "s", "seed": 1})
    for i in range(500):
        builder({"t": start + i, "kind": "job", "job": f"j{i}", "state": "READY"})
        builder({"t": start + 10 * i, "kind": "batch", "job": f"m{i}_build", "rows": i})
    assert builder.render(tmp_path / "big.svg") == 1000
    assert len(_rows(tmp_path / "big.svg")) == 1000
