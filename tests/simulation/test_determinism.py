"""Same scenario, config and seed: a byte-identical ``events.jsonl``; another seed: another log.

Runs are repeated in this process, in fresh processes with different hash seeds (set and dict
orders of strings change between them), and on a real SQLite file, whose calls run on a thread:
every one of them must give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.simulation import load_scenario, prepare, simulate
from tests.simulation.conftest import ScenarioFile

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """
[simulation]
name = "determinism"
duration = "3h"
seed = 11

[engine]
"kylin.job.max-concurrent-jobs" = 3
"kylin.job.retry" = 1
"kylin.job.retry-interval" = 45000

[[arrivals]]
cube = "kylin_sales_cube"
rate_per_hour = 5
segment = "15m"

[[arrivals]]
cube = "flaky_cube"
every = "50m"

[[arrivals]]
cube = "broken_cube"
at = ["20m"]

[[arrivals]]
cube = "kylin_sales_cube"
type = "MERGE"
at = ["1h30m", "2h40m"]

[[failures]]
step = "Build*Cuboid*"
probability = 0.1

[[actions]]
at = "40m"
action = "PAUSE"
cube = "kylin_sales_cube"

[[actions]]
at = "55m"
action = "RESUME"
cube = "kylin_sales_cube"

[[actions]]
at = "2h"
action = "RESTART"
streaming = "sales_stream_model"

[operator]
resume_errors_after = "10m"
max_resumes = 2

[[streaming]]
model = "sales_stream_model"
batch = 20
fail_at_batches = [100]
retry = true

[[streaming]]
model = "flaky_stream_model"

[[actions]]
at = "30m"
action = "START"
streaming = "flaky_stream_model"
"""


def _run(path: Path, out: Path, seed: int | None = None, store: Path | None = None) -> str:
    result = simulate(prepare(load_scenario(path), seed=seed), out_dir=out, store_path=store)
    assert result.sha256 is not None and result.events_path is not None
    assert hashlib.sha256(result.events_path.read_bytes()).hexdigest() == result.sha256
    return result.sha256


def test_same_seed_same_bytes_again_and_again(scenario_file: ScenarioFile, tmp_path: Path) -> None:
    path = scenario_file(SCENARIO)
    hashes = {_run(path, tmp_path / f"run{i}") for i in range(3)}
    assert len(hashes) == 1
    first = (tmp_path / "run0" / "events.jsonl").read_bytes()
    assert first == (tmp_path / "run2" / "events.jsonl").read_bytes()
    assert first.count(b"\n") > 1000  # a run with something in it


def test_another_seed_gives_another_log(scenario_file: ScenarioFile, tmp_path: Path) -> None:
    path = scenario_file(SCENARIO)
    assert _run(path, tmp_path / "a", seed=1) != _run(path, tmp_path / "b", seed=2)


def test_a_sqlite_store_gives_the_same_bytes_as_memory(
    scenario_file: ScenarioFile, tmp_path: Path
) -> None:
    path = scenario_file(SCENARIO)
    in_memory = _run(path, tmp_path / "memory")
    on_disk = _run(path, tmp_path / "sqlite", store=tmp_path / "sim.sqlite")
    assert on_disk == in_memory
    assert (tmp_path / "sim.sqlite").stat().st_size > 0


@pytest.mark.parametrize("hash_seeds", [("1", "2")])
def test_fresh_processes_with_other_hash_seeds_agree(
    scenario_file: ScenarioFile, tmp_path: Path, hash_seeds: tuple[str, str]
) -> None:
    path = scenario_file(SCENARIO)
    expected = _run(path, tmp_path / "here")
    for hash_seed in hash_seeds:
        out = tmp_path / f"proc{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-m", "engine.cli", "simulate", str(path), "--out", str(out)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert f"sha256    {expected}" in done.stdout
        assert hashlib.sha256((out / "events.jsonl").read_bytes()).hexdigest() == expected
