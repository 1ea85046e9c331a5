"""The retention sweep on the virtual clock (SPEC §11): old FINISHED and DISCARDED jobs go with
their outputs; newer ones, ERROR jobs and every segment stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_config
from engine.core.errors import ConfigError, JobNotFound
from engine.core.states import State
from engine.testing import virtual_engine

DAY_MS = 86_400_000
ENDED = {State.SUCCEED, State.ERROR, State.DISCARDED}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_jobs_older_than_the_limit_go_with_outputs_and_segments_stay(
    kind: str, tmp_path: Path
) -> None:
    store = ":memory:" if kind == "memory" else str(tmp_path / "kjobs.sqlite")
    overrides = {"kylin.job.retention-days": 2, "kjobs.retention.sweep-interval": 600}
    async with virtual_engine(overrides=overrides, store=store) as sim:
        engine = sim.engine
        t0 = sim.now_ms()
        old = await engine.submit_build("kylin_sales_cube", "BUILD", 0, DAY_MS)
        old = await sim.wait_for_state(old.id, ENDED, within=7200)
        dropped = await engine.submit_build("kylin_sales_cube", "BUILD", DAY_MS, 2 * DAY_MS)
        await engine.discard(dropped.id)
        broken = await engine.submit_build("broken_cube", "BUILD", 0, DAY_MS)
        broken = await sim.wait_for_state(broken.id, ENDED, within=7200)
        await sim.advance(DAY_MS / 1000)
        new = await engine.submit_build("kylin_sales_cube", "BUILD", 2 * DAY_MS, 3 * DAY_MS)
        new = await sim.wait_for_state(new.id, ENDED, within=7200)
        output_step = old.steps[0]
        assert await engine.store.read_output(output_step.id, 1) is not None
        await sim.run_until(t0 + 2 * DAY_MS + 3_600_000)  # old ones ended > 2 days ago

        for gone in (old.id, dropped.id):
            with pytest.raises(JobNotFound):
                await engine.get(gone)
        assert await engine.store.read_output(output_step.id, 1) is None
        assert (await engine.get(new.id)).state is State.SUCCEED
        assert (await engine.get(broken.id)).state is State.ERROR  # may still be resumed
        segments = await engine.segments("kylin_sales_cube")
        assert [(s.start, s.status) for s in segments] == [(0, "READY"), (2 * DAY_MS, "READY")]
        assert engine.ops.stats.jobs_swept == 2
        assert engine.ops.stats.sweeps > 0


async def test_zero_days_keeps_everything() -> None:
    overrides = {"kylin.job.retention-days": 0, "kjobs.retention.sweep-interval": 60}
    async with virtual_engine(overrides=overrides) as sim:
        job = await sim.engine.submit_build("kylin_sales_cube", "BUILD", 0, DAY_MS)
        await sim.wait_for_state(job.id, ENDED, within=7200)
        await sim.advance(400 * DAY_MS / 1000)
        assert (await sim.engine.get(job.id)).state is State.SUCCEED
        assert sim.engine.ops.stats.sweeps == 0


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("kylin.job.retention-days", -1, "must not be negative"),
        ("kjobs.retention.sweep-interval", 0, "greater than 0"),
        ("kylin.job.notifier-max-retries", 101, "from 0 to 100"),
        ("kylin.job.notifier-retry-interval", 0, "greater than 0"),
        ("kylin.job.finished-notifier-url", "ftp://x", "not an http"),
    ],
)
def test_bad_ops_settings_are_start_up_errors_naming_the_key(
    key: str, value: object, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={}, overrides={key: value})
    assert caught.value.key == key and reason in caught.value.reason


def test_a_negative_retention_from_the_environment_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"KJOBS_RETENTION_DAYS": "-3"})
    assert "kylin.job.retention-days" in str(caught.value)
