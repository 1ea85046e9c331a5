"""``kjobs simulate`` and ``kjobs demo`` from the command line."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest

from engine.cli import main
from engine.cli.simulate import ProgressBar
from tests.simulation.conftest import ScenarioFile

SMALL = """
[simulation]
name = "small"
duration = "1h"
seed = 2
[[arrivals]]
cube = "kylin_sales_cube"
at = ["0s", "10m", "20m"]
[[streaming]]
model = "sales_stream_model"
"""


def test_simulate_prints_the_summary_and_writes_the_outputs(
    scenario_file: ScenarioFile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["simulate", str(scenario_file(SMALL)), "--out", str(out), "--hours", "2"]) == 0
    printed = capsys.readouterr().out
    assert 'Simulated "small" (seed 2)' in printed
    assert "Batch jobs: 3 submitted" in printed and "SUCCEED (FINISHED)" in printed
    assert "Extract Fact Table Distinct Columns" in printed and "p95" in printed
    assert "micro-batches" in printed and "max data latency" in printed
    match = re.search(r"^sha256    ([0-9a-f]{64})$", printed, re.MULTILINE)
    assert match is not None
    assert hashlib.sha256((out / "events.jsonl").read_bytes()).hexdigest() == match.group(1)
    assert (out / "summary.json").is_file() and (out / "timeline.svg").is_file()
    assert "2024-01-01T02:00:00.000Z" in printed  # --hours 2 overrides the file's 1h


def test_simulate_with_a_store_keeps_the_jobs(
    scenario_file: ScenarioFile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "sim.sqlite"
    args = [
        "simulate",
        str(scenario_file(SMALL)),
        "--out",
        str(tmp_path / "o"),
        "--store",
        str(store),
    ]
    assert main(args) == 0
    assert store.stat().st_size > 0
    capsys.readouterr()
    assert main(args) == 2  # never overwrites a store
    assert "exists already" in capsys.readouterr().err


def test_scenario_errors_are_one_line_and_exit_2(
    scenario_file: ScenarioFile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario_file('[[arrivals]]\ncube = "nope"\nat = ["1m"]\n')
    assert main(["simulate", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kjobs: {path}: arrivals[0].cube: no cube is called 'nope'")
    assert "\n" not in err


def test_demo_runs_the_default_scenario_and_explains_the_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--hours", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "kjobs demo: 1 hour of the sample project" in printed
    assert f"Open {tmp_path / 'timeline.svg'}" in printed
    assert "kjobs serve" in printed and "curl -s -u ADMIN:KYLIN" in printed
    assert (tmp_path / "events.jsonl").is_file()


def test_progress_bar_redraws_when_the_percent_moves() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    for done in (0, 10, 20, 3_600_000, 7_200_000):
        bar(done, 7_200_000)
    bar.done()
    text = stream.getvalue()
    assert text.count("\r") == 3  # 0 %, 50 %, 100 %
    assert "[###############...............]  50%  01:00:00 / 02:00:00 simulated" in text
    assert text.endswith("\n")
