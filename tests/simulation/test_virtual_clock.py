"""``VirtualClock``: time moves only when every task waits on it, never while work is in flight."""

from __future__ import annotations

import threading

import anyio
import pytest

from engine.clock.virtual import VirtualClock
from engine.core.timefmt import format_iso, parse_iso

START = 1_000_000


async def test_sleepers_wake_in_deadline_order_then_in_the_order_they_slept() -> None:
    clock = VirtualClock(START)
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now_ms()))

    async with anyio.create_task_group() as tg:
        for name, seconds in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0)]:
            tg.start_soon(sleeper, name, seconds)
        await clock.run_until(START + 10_000)
    assert woke == [
        ("a", START + 1000),
        ("b1", START + 2000),
        ("b2", START + 2000),
        ("c", START + 3000),
    ]
    assert clock.now_ms() == START + 10_000


async def test_advance_stops_exactly_at_the_target_and_leaves_later_timers_pending() -> None:
    clock = VirtualClock(START)
    done = anyio.Event()

    async def late() -> None:
        await clock.sleep(60)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(late)
        await clock.advance(59.999)
        assert clock.now_ms() == START + 59_999 and not done.is_set()
        assert clock.pending == 1
        await clock.advance(0.001)
        assert done.is_set() and clock.pending == 0


async def test_zero_sleep_yields_without_moving_time() -> None:
    clock = VirtualClock(START)
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await clock.sleep(0)
        order.append("after sleep(0)")
    assert order == ["other", "after sleep(0)"]
    assert clock.now_ms() == START


async def test_time_stands_still_while_a_busy_section_waits_on_a_thread() -> None:
    clock = VirtualClock(START)
    release = threading.Event()
    seen: list[str] = []

    async def real_work() -> None:
        with clock.busy():
            # the thread blocks until the test releases it: the loop is idle meanwhile
            await anyio.to_thread.run_sync(release.wait)
            seen.append(f"work done at {clock.now_ms() - START}")

    async def sleeper() -> None:
        await clock.sleep(5)
        seen.append(f"sleeper woke at {clock.now_ms() - START}")

    async def driver() -> None:
        await clock.run_until(START + 60_000)
        seen.append("driver done")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(real_work)
            tg.start_soon(sleeper)
            tg.start_soon(driver)
            await anyio.wait_all_tasks_blocked()
            assert clock.busy_count == 1
            assert seen == []  # the sleeper's 5 s have not passed: the thread is still working
            release.set()
    assert seen == ["work done at 0", "sleeper woke at 5000", "driver done"]


async def test_run_until_true_drives_until_the_predicate_holds_or_the_limit() -> None:
    clock = VirtualClock(START)
    ticks: list[int] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(10)
            ticks.append(clock.now_ms())

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await clock.run_until_true(lambda: len(ticks) == 3, within=3600)
        assert clock.now_ms() == START + 30_000
        with pytest.raises(TimeoutError):
            await clock.run_until_true(lambda: False, within=25)
        assert clock.now_ms() == START + 55_000
        tg.cancel_scope.cancel()


async def test_autojump_lets_plain_waits_finish_and_cancelled_sleeps_leave_no_timer() -> None:
    clock = VirtualClock(START)
    with anyio.fail_after(10):
        async with clock.autojump():
            await clock.sleep(3600 * 24)
            assert clock.now_ms() == START + 86_400_000
            with anyio.move_on_after(5):  # real time: the virtual sleep below never ends first
                async with anyio.create_task_group() as tg:
                    tg.start_soon(clock.sleep, 10.0)
                    await anyio.wait_all_tasks_blocked()
                    tg.cancel_scope.cancel()
    assert clock.pending == 0


async def test_only_one_task_may_drive() -> None:
    clock = VirtualClock(START)
    async with clock.autojump():
        with pytest.raises(RuntimeError, match="already being driven"):
            await clock.advance(1)


async def test_settle_returns_once_every_other_task_is_blocked() -> None:
    clock = VirtualClock(START)
    steps: list[int] = []

    async def chatty() -> None:
        for i in range(5):
            steps.append(i)
            await anyio.lowlevel.checkpoint()
        await clock.sleep(1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(chatty)
        with clock.busy():
            await clock.settle()
        assert steps == [0, 1, 2, 3, 4] and clock.now_ms() == START
        await clock.advance(1)


def test_iso_round_trip() -> None:
    assert format_iso(1_704_067_200_123) == "2024-01-01T00:00:00.123Z"
    assert parse_iso("2024-01-01T00:00:00Z") == 1_704_067_200_000
    assert parse_iso("2024-01-01T01:00:00+01:00") == 1_704_067_200_000
