"""Scheduled builds on the virtual clock (SPEC §11): consecutive ranges, overlap, catch-up after
an outage, pause/resume, and one job per slot with two engines on one SQLite store."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from engine.clock.virtual import DEFAULT_START_MS, VirtualClock
from engine.config import Config, load_config
from engine.core.jobs import Job
from engine.core.states import State
from engine.facade import Engine
from engine.simulation.store import GuardedJobStore, StoreGuard
from engine.store import MemoryJobStore, SqliteJobStore
from engine.store.ports import JobFilter, JobStore
from engine.testing import VirtualTimeEngine

HOUR = 3_600_000
T0 = DEFAULT_START_MS  # 2024-01-01T00:00Z: on an hourly slot


def config() -> Config:
    return load_config(
        environ={},
        overrides={"kjobs.time-scale": 1.0, "kjobs.node-id": "sched", "kjobs.seed": 3},
    )


@asynccontextmanager
async def engine_on(store: JobStore, clock: VirtualClock) -> AsyncIterator[Engine]:
    async with VirtualTimeEngine(config(), store=store, clock=clock) as engine:
        yield engine


async def jobs_of(engine: Engine, cube: str) -> list[Job]:
    """The cube's jobs, oldest range first."""
    found = await engine.list(JobFilter(cube=cube))
    return sorted(found, key=lambda j: j.segment.start)


async def test_a_day_of_hourly_builds_makes_24_consecutive_ranges() -> None:
    clock = VirtualClock()
    async with engine_on(MemoryJobStore(), clock) as engine:
        created = await engine.ops.schedules.create("hourly", "kylin_sales_cube", cron="0 * * * *")
        assert created.next_fire_time == T0 + HOUR and created.project == "learn_kylin"
        await clock.run_until(T0 + 24 * HOUR + HOUR // 2)
        jobs = await jobs_of(engine, "kylin_sales_cube")
        last = await engine.ops.schedules.get("hourly")
    assert [(j.segment.start, j.segment.end) for j in jobs] == [
        (T0 + n * HOUR, T0 + (n + 1) * HOUR) for n in range(24)
    ]
    assert {j.state for j in jobs} == {State.SUCCEED}
    assert last.last_job_id == jobs[-1].id and last.next_fire_time == T0 + 25 * HOUR
    assert engine.ops.stats.schedule_runs == 24


SLOT = 1_200_000  #: 20 minutes: shorter than a slow_cube build (several 10-minute MR steps)


async def test_skip_leaves_no_run_while_a_long_build_runs() -> None:
    clock = VirtualClock()
    async with engine_on(MemoryJobStore(), clock) as engine:
        await engine.ops.schedules.create("slow", "slow_cube", interval_s=SLOT // 1000)
        await clock.run_until(T0 + 12 * HOUR + 60_000)  # slots fire within a ms of their time
        jobs = await jobs_of(engine, "slow_cube")
        skips = engine.ops.stats.schedule_skips
    slots = 12 * HOUR // SLOT
    assert 2 <= len(jobs) < slots // 2 and skips == slots - len(jobs)
    for before, after in itertools.pairwise(jobs):
        assert after.create_time >= before.end_time > 0  # never two at once
        assert after.segment.end - after.segment.start == SLOT  # the range that just ended
        assert after.segment.end == after.create_time  # built at its slot


async def test_queue_runs_every_slot_one_after_another() -> None:
    clock = VirtualClock()
    async with engine_on(MemoryJobStore(), clock) as engine:
        await engine.ops.schedules.create(
            "slow", "slow_cube", interval_s=SLOT // 1000, overlap="queue"
        )
        await clock.run_until(T0 + 6 * HOUR)
        jobs = await jobs_of(engine, "slow_cube")
    ranges = [(j.segment.start, j.segment.end) for j in jobs]
    assert ranges == [(T0 + n * SLOT, T0 + (n + 1) * SLOT) for n in range(len(jobs))]
    assert len(jobs) >= 3
    assert jobs[-1].create_time > jobs[-1].segment.end  # queued: it ran late, none was lost
    for before, after in itertools.pairwise(jobs):
        assert after.create_time >= before.end_time > 0


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("none", []),
        ("last", [(2, 7)]),
        ("all", [(2, 3), (3, 4), (4, 5), (5, 6), (6, 7)]),
    ],
)
async def test_catch_up_after_an_outage(policy: str, expected: list[tuple[int, int]]) -> None:
    clock, store = VirtualClock(), MemoryJobStore()
    async with engine_on(store, clock) as engine:
        await engine.ops.schedules.create(
            "hourly", "kylin_sales_cube", cron="0 * * * *", catch_up=policy
        )
        await clock.run_until(T0 + 2 * HOUR + HOUR // 2)  # slots 1 h and 2 h ran
        before = {j.id for j in await jobs_of(engine, "kylin_sales_cube")}
    await clock.run_until(T0 + 7 * HOUR + HOUR // 2)  # no engine: slots 3 h .. 7 h missed
    async with engine_on(store, clock) as engine:
        await clock.run_until(T0 + 7 * HOUR + HOUR // 2 + 1)
        after = [j for j in await jobs_of(engine, "kylin_sales_cube") if j.id not in before]
        schedule = await engine.ops.schedules.get("hourly")
        await clock.run_until(T0 + 8 * HOUR + HOUR // 2)  # then the next slot as usual
        later = [j for j in await jobs_of(engine, "kylin_sales_cube") if j.id not in before]
    assert len(before) == 2
    assert [((j.segment.start - T0) // HOUR, (j.segment.end - T0) // HOUR) for j in after] == (
        expected
    )
    assert schedule.next_fire_time == T0 + 8 * HOUR
    assert (later[-1].segment.start, later[-1].segment.end) == (T0 + 7 * HOUR, T0 + 8 * HOUR)


async def test_pause_and_resume() -> None:
    clock = VirtualClock()
    async with engine_on(MemoryJobStore(), clock) as engine:
        schedules = engine.ops.schedules
        await schedules.create("every10", "kylin_sales_cube", interval_s=1800)
        await clock.run_until(T0 + HOUR + 1)
        assert len(await jobs_of(engine, "kylin_sales_cube")) == 2
        paused = await schedules.pause("every10")
        assert paused.paused and paused.next_fire_time is None
        await clock.run_until(T0 + 4 * HOUR + 1)
        assert len(await jobs_of(engine, "kylin_sales_cube")) == 2
        resumed = await schedules.resume("every10")
        assert not resumed.paused and resumed.next_fire_time == T0 + 4 * HOUR + HOUR // 2
        await clock.run_until(T0 + 5 * HOUR + 1)
        jobs = await jobs_of(engine, "kylin_sales_cube")
    assert [(j.segment.start - T0) // (HOUR // 2) for j in jobs] == [0, 1, 8, 9]


async def test_two_engines_on_one_sqlite_store_fire_each_slot_once(tmp_path: Path) -> None:
    clock = VirtualClock()
    guard = StoreGuard(clock, threaded=True)
    path = tmp_path / "shared.sqlite"
    first = GuardedJobStore(SqliteJobStore(path), guard)
    second = GuardedJobStore(SqliteJobStore(path), guard)
    async with engine_on(first, clock) as one, engine_on(second, clock) as two:
        await one.ops.schedules.create("hourly", "kylin_sales_cube", cron="0 * * * *")
        await clock.run_until(T0 + 6 * HOUR + HOUR // 2)
        jobs = await jobs_of(one, "kylin_sales_cube")
        fired = one.ops.stats.schedule_runs + two.ops.stats.schedule_runs
    assert [(j.segment.start - T0) // HOUR for j in jobs] == [0, 1, 2, 3, 4, 5]
    assert fired == 6
