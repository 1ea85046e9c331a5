"""Scenario files: the shipped ones load, and every mistake is one clear error (file, key, why)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from engine.config import SHIPPED_CONFIG_DIR
from engine.core.errors import ConfigError
from engine.simulation import load_scenario, parse_duration, prepare
from engine.simulation.plan import arrival_times
from engine.simulation.scenario import Arrivals
from tests.simulation.conftest import ScenarioFile

SCENARIOS = sorted((SHIPPED_CONFIG_DIR / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_load_and_fit_the_shipped_catalog(path: Path) -> None:
    plan = prepare(load_scenario(path))
    assert plan.config.engine.time_scale == 1.0
    assert plan.config.engine.seed == plan.seed


def test_default_scenario_knobs_reach_the_run() -> None:
    plan = prepare(load_scenario(SHIPPED_CONFIG_DIR / "scenarios" / "default.toml"), seed=9)
    assert plan.seed == 9 and plan.config.engine.max_concurrent_jobs == 6
    cube = plan.config.catalog.cube("kylin_sales_cube")
    profile = plan.config.catalog.profile(cube.step_profiles["Build N-Dimension Cuboid : level 3"])
    assert profile.failure_rate == 0.04 and profile.min_seconds == 30.0  # the mr profile, copied
    assert "Build Base Cuboid" not in cube.step_profiles
    assert [s.alias for s in plan.streaming] == ["sales_stream_model", "flaky_stream_model"]


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[simulation]\nduraton = "1h"\n', "simulation.duraton", "did you mean 'duration'"),
        ('[simulation]\nduration = "ten minutes"\n', "simulation.duration", "a duration like"),
        ('[simulation]\nduration = "0s"\n', "simulation.duration", "longer than 0"),
        ('[simulation]\nstart = "yesterday"\n', "simulation.start", "ISO 8601"),
        ('[[arrivals]]\ncube = "x"\n', "arrivals[0].at", "exactly one of"),
        ('[[arrivals]]\ncube = "x"\nat = ["1m"]\nevery = "5m"\n', "arrivals[0].at", "exactly one"),
        ('[[arrivals]]\ncube = "x"\ntype = "DROP"\nat = ["1m"]\n', "arrivals[0].type", "DROP"),
        ('[[arrivals]]\ncube = "x"\nat = ["soon"]\n', "arrivals[0].at[0]", "a duration"),
        ('[[failures]]\nstep = "x"\nprobability = 1.5\n', "failures[0].probability", "[0, 1]"),
        ('[[actions]]\nat = "1m"\naction = "PAUSE"\n', "actions[0].cube", "exactly one of"),
        (
            '[[actions]]\nat = "1m"\naction = "START"\ncube = "kylin_sales_cube"\n',
            "actions[0].action",
            "a cube's jobs take",
        ),
        ('[[streaming]]\nmodel = "m"\ncopies = 0\n', "streaming[0].copies", "greater than 0"),
        (
            '[[streaming]]\nmodel = "m"\nfail_at_batches = [0]\n',
            "streaming[0].fail_at_batches",
            "1, 2",
        ),
        ("[engine]\nkylin = { job = { retry = 1 } }\n", "engine.kylin", "dotted key in quotes"),
    ],
)
def test_file_errors_name_the_file_the_key_and_the_reason(
    scenario_file: ScenarioFile, text: str, key: str, reason: str
) -> None:
    path = scenario_file(text)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[[arrivals]]\ncube = "no_such_cube"\nat = ["1m"]\n', "arrivals[0].cube", "no cube"),
        (
            '[[arrivals]]\ncube = "kylin_sales_cube"\nat = ["1m"]\n'
            '[[failures]]\nstep = "Launch Rockets"\nprobability = 0.5\n',
            "failures[0].step",
            "matches no step",
        ),
        ('[[streaming]]\nmodel = "no_such_model"\n', "streaming[0].model", "no streaming model"),
        (
            '[[streaming]]\nmodel = "sales_stream_model"\n'
            '[[actions]]\nat = "1m"\naction = "STOP"\nstreaming = "other_*"\n',
            "actions[0].streaming",
            "matches none",
        ),
        (
            '[[actions]]\nat = "1m"\naction = "PAUSE"\ncube = "nope*"\n',
            "actions[0].cube",
            "no cube",
        ),
        (
            '[engine]\n"kylin.job.max-concurrent-jobs" = 0\n',
            "engine.kylin.job.max-concurrent-jobs",
            "at least 1",
        ),
        ('[engine]\n"kylin.job.retri" = 1\n', "engine.kylin.job.retri", "unknown key"),
    ],
)
def test_catalog_errors_name_the_scenario_file_and_key(
    scenario_file: ScenarioFile, text: str, key: str, reason: str
) -> None:
    path = scenario_file(text)
    with pytest.raises(ConfigError) as caught:
        prepare(load_scenario(path))
    assert (caught.value.file, caught.value.key) == (str(path), key)
    assert reason in caught.value.reason


def test_real_mode_steps_are_refused_with_a_clear_message(scenario_file: ScenarioFile) -> None:
    path = scenario_file('[[arrivals]]\ncube = "shell_demo_cube"\nat = ["5m"]\n')
    with pytest.raises(ConfigError) as caught:
        prepare(load_scenario(path))
    assert caught.value.key == "arrivals[0].cube"
    assert "runs real commands" in caught.value.reason
    assert "simulated steps only" in caught.value.reason


def test_missing_scenario_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_scenario(tmp_path / "nope.toml")


def test_hours_must_be_positive(scenario_file: ScenarioFile) -> None:
    with pytest.raises(ConfigError, match="--hours"):
        prepare(load_scenario(scenario_file("")), hours=0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1d", 86400),
        ("1.5h", 5400),
        (45, 45),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1h 30m", -1, True, "m"])
def test_bad_durations(text: object) -> None:
    assert parse_duration(text) is None


def test_arrival_times_fixed_periodic_and_seeded_poisson() -> None:
    fixed = Arrivals("a", "c", at=(60.0, 7200.0, 99_999.0))
    assert arrival_times(fixed, 0, 10_000, seed=1) == [60.0, 7200.0]
    periodic = Arrivals("a", "c", every_s=600, from_s=300, until_s=2000, limit=2)
    assert arrival_times(periodic, 0, 10_000, seed=1) == [300.0, 900.0]
    poisson = Arrivals("a", "c", rate_per_hour=30)
    first = arrival_times(poisson, 0, 36_000, seed=1)
    assert first == arrival_times(poisson, 0, 36_000, seed=1)
    assert first != arrival_times(poisson, 0, 36_000, seed=2)
    assert first != arrival_times(poisson, 1, 36_000, seed=1)  # each rule its own stream
    assert all(0 < a < b < 36_000 for a, b in itertools.pairwise(first))
    assert 200 < len(first) < 400  # 30 an hour for 10 hours
