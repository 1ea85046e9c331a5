"""The pure rules of scheduled builds (``engine.core.schedules``) and the slots of cron
expressions and intervals (``engine.clock.slots``)."""

from __future__ import annotations

import pytest

from engine.clock.slots import timing
from engine.core.errors import InvalidRequest
from engine.core.schedules import (
    IntervalTiming,
    Run,
    Schedule,
    new_schedule,
    paused,
    plan,
    resumed,
    slot_job_id,
)

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
HOURLY = timing("0 * * * *", None)


def hourly(**options: str) -> Schedule:
    return new_schedule(
        "s", "c", "p", cron="0 * * * *", interval_s=None, timing=HOURLY, now=T0, **options
    )


def test_cron_slots_are_utc_and_strictly_after() -> None:
    nightly = timing("0 2 * * *", None)
    assert nightly.next_slot(T0) == T0 + 2 * H
    assert nightly.next_slot(T0 + 2 * H) == T0 + 26 * H
    assert nightly.previous_slot(T0 + 26 * H) == T0 + 2 * H  # the run builds yesterday


def test_intervals_are_aligned_to_the_epoch() -> None:
    every = timing(None, 900)
    assert every == IntervalTiming(900)
    assert every.next_slot(T0 + 1) == T0 + 900_000
    assert every.previous_slot(T0 + 900_000) == T0


@pytest.mark.parametrize(
    ("cron", "interval", "message"),
    [
        (None, None, "exactly one"),
        ("0 * * * *", 60, "exactly one"),
        (None, 0, "at least 1"),
        ("every day", None, "Invalid cron"),
        ("0 0 30 2 *", None, "never fires"),
    ],
)
def test_bad_timing_is_refused(cron: str | None, interval: int | None, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        timing(cron, interval)


def test_steady_slots_fire_one_at_a_time_and_overlap_decides() -> None:
    s = hourly()
    assert s.next_fire_time == T0 + H
    assert plan(s, HOURLY, T0 + H - 1, last_active=False, catching_up=False) is None
    fire = plan(s, HOURLY, T0 + H, last_active=False, catching_up=False)
    assert fire is not None and fire.runs == (Run(T0 + H, T0, T0 + H),)
    assert fire.next_fire_time == T0 + 2 * H
    skip = plan(s, HOURLY, T0 + H, last_active=True, catching_up=False)
    assert skip is not None and (skip.runs, skip.skipped) == ((), 1)
    assert skip.next_fire_time == T0 + 2 * H
    queued = plan(hourly(overlap="queue"), HOURLY, T0 + H, last_active=True, catching_up=False)
    assert queued is not None and queued.waiting and queued.next_fire_time == T0 + H


def test_catch_up_policies() -> None:
    now = T0 + 5 * H + 1  # slots 1 h .. 5 h missed
    none = plan(hourly(), HOURLY, now, last_active=False, catching_up=True)
    last = plan(hourly(catch_up="last"), HOURLY, now, last_active=False, catching_up=True)
    every = plan(hourly(catch_up="all"), HOURLY, now, last_active=False, catching_up=True)
    assert none is not None and (none.runs, none.skipped) == ((), 5)
    assert last is not None and last.runs == (Run(T0 + 5 * H, T0, T0 + 5 * H),)
    assert every is not None and [r.start for r in every.runs] == [T0 + n * H for n in range(5)]
    assert {p.next_fire_time for p in (none, last, every)} == {T0 + 6 * H}


def test_pause_resume_and_job_ids() -> None:
    s = hourly()
    stopped = paused(s)
    assert stopped.next_fire_time is None
    assert plan(stopped, HOURLY, T0 + 9 * H, last_active=False, catching_up=False) is None
    assert resumed(stopped, HOURLY, T0 + 9 * H + 5).next_fire_time == T0 + 10 * H
    assert slot_job_id(s, T0 + H) == slot_job_id(s, T0 + H) != slot_job_id(s, T0 + 2 * H)
    assert slot_job_id(s.evolve(create_time=T0 + 1), T0 + H) != slot_job_id(s, T0 + H)


def test_bad_names_build_types_and_policies_are_refused() -> None:
    for bad in ({"overlap": "sometimes"}, {"catch_up": "most"}, {"build_type": "FULL"}):
        with pytest.raises(InvalidRequest):
            hourly(**bad)
    with pytest.raises(InvalidRequest, match="name"):
        new_schedule(" ", "c", "p", cron="0 * * * *", interval_s=None, timing=HOURLY, now=T0)
