"""Scenarios declare schedules as catalog.toml does: a month of nightly builds, simulated on the
virtual clock (SPEC §11), with the retention sweep counting what it removed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import SHIPPED_CONFIG_DIR, load_config
from engine.core.errors import ConfigError
from engine.simulation import load_scenario, prepare, simulate
from engine.simulation.summary import format_table
from engine.testing import virtual_engine

DAY_MS = 86_400_000

MONTH = """
[simulation]
name = "nightly"
duration = "31d"
seed = 5

[engine]
"kylin.job.retention-days" = 7
"kjobs.retention.sweep-interval" = 86400

[[schedules]]
name = "nightly_sales"
cube = "kylin_sales_cube"
cron = "0 2 * * *"
"""


def test_a_month_of_nightly_builds(tmp_path: Path) -> None:
    path = tmp_path / "nightly.toml"
    path.write_text(MONTH)
    result = simulate(prepare(load_scenario(path)))
    jobs = result.summary["jobs"]
    assert jobs["scheduled"] == 31  # 02:00 on each of the 31 days
    assert jobs["submitted"] == 0
    # a sweep every midnight, the last one at the end (day 31): the builds of days 0-23 had
    # ended more than 7 days before it
    assert jobs["swept"] == 24
    assert sum(jobs["by_status"].values()) == jobs["scheduled"] - jobs["swept"]
    table = format_table(result.summary)
    assert "31 by schedules" in table and "24 swept by retention" in table


def test_a_scenario_schedule_on_an_unknown_cube_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(MONTH.replace('cube = "kylin_sales_cube"', 'cube = "nope"'))
    with pytest.raises(ConfigError) as caught:
        prepare(load_scenario(path))
    assert caught.value.key == "schedules[0].cube" and "nope" in caught.value.reason


def _config_with(tmp_path: Path, schedules: str) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG_DIR, folder)
    with (folder / "catalog.toml").open("a") as catalog:
        catalog.write(schedules)
    return folder


async def test_catalog_schedules_exist_when_the_engine_starts(tmp_path: Path) -> None:
    folder = _config_with(tmp_path, MONTH.split("[[schedules]]")[1].join(["\n[[schedules]]", ""]))
    config = load_config(folder, environ={}, overrides={"kjobs.time-scale": 1.0})
    async with virtual_engine(config=config) as sim:
        [schedule] = await sim.engine.ops.schedules.list()
        assert (schedule.name, schedule.cron, schedule.project) == (
            "nightly_sales", "0 2 * * *", "learn_kylin"
        )  # fmt: skip
        await sim.advance(DAY_MS / 1000)
        [job] = await sim.engine.list()
        assert (job.segment.end - job.segment.start, job.submitter) == (
            DAY_MS, "schedule:nightly_sales"
        )  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "key", "reason"),
    [
        ('name = "a"\ncube = "nope"\ncron = "0 2 * * *"\n', "cube", "Cannot find cube"),
        ('name = "a"\ncube = "kylin_sales_cube"\ncron = "99 * * * *"\n', "cron", "Invalid cron"),
        ('name = "a"\ncube = "kylin_sales_cube"\n', "interval_s", "exactly one"),
        ('name = "a"\ncube = "kylin_sales_cube"\ninterval_s = 0\n', "interval_s", "at least 1"),
        ('name = "a"\ncube = "kylin_sales_cube"\ninterval_s = 60\noverlap = "x"\n', "overlap",
         "unknown overlap"),
    ],
)  # fmt: skip
def test_bad_catalog_schedules_are_start_up_errors(
    tmp_path: Path, entry: str, key: str, reason: str
) -> None:
    folder = _config_with(tmp_path, f"\n[[schedules]]\n{entry}")
    with pytest.raises(ConfigError) as caught:
        load_config(folder, environ={})
    assert caught.value.key == f"schedules[0].{key}" and reason in caught.value.reason
