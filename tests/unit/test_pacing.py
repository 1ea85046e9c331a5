"""The runner pacer: free on an idle loop, a FIFO past the budget, other work runs between."""

from __future__ import annotations

import asyncio

import pytest

from engine.batch.pacing import Pacer

#: a budget every iteration overspends: every turn after an iteration's first one queues
SPENT: float = 1e-12


def overspent(budget_s: float) -> Pacer:
    """A pacer whose current iteration spent its budget long ago; its tick is the test's."""
    pacer = Pacer(budget_s=budget_s)
    pacer._ticking = True
    pacer._began = -1e9
    return pacer


async def test_a_turn_on_an_idle_loop_does_not_yield() -> None:
    pacer = Pacer()
    ran: list[str] = []
    asyncio.get_running_loop().call_soon(ran.append, "other")
    await pacer.turn()
    assert ran == []  # had the turn yielded, the callback scheduled before it would have run
    assert pacer.waits == 0


async def test_past_the_budget_runners_go_one_per_iteration_in_order() -> None:
    pacer = Pacer(budget_s=SPENT)
    order: list[str] = []
    iteration = 0

    async def runner(name: str) -> None:
        await pacer.turn()
        order.append(f"{name}@{iteration}")

    async def probe() -> None:  # other work: one step per loop iteration
        nonlocal iteration
        for _ in range(12):
            await asyncio.sleep(0)
            iteration += 1

    async with asyncio.TaskGroup() as tg:
        tg.create_task(probe())
        for name in "abcde":
            tg.create_task(runner(name))
    names = [entry.split("@")[0] for entry in order]
    iterations = [int(entry.split("@")[1]) for entry in order]
    assert names == list("abcde")  # first come, first served
    # each iteration overspent its budget: one runner per iteration, the probe ran between
    assert iterations == sorted(set(iterations)) and len(set(iterations)) == 5
    assert pacer.waits == 4 and pacer.waiting == 0


async def test_short_iterations_let_more_runners_through_each_time() -> None:
    pacer = overspent(60.0)  # once ticking, its iterations are short: only the queue waits
    done: list[int] = []

    async def runner(index: int) -> None:
        await pacer.turn()
        done.append(index)

    tasks = [asyncio.create_task(runner(i)) for i in range(10)]
    await asyncio.sleep(0)  # all queued (nothing ticks yet: the test set the tick aside)
    assert pacer.waiting == 10
    asyncio.get_running_loop().call_soon(pacer._tick)
    per_iteration: list[int] = []
    while len(done) < 10:
        before = len(done)
        await asyncio.sleep(0)
        per_iteration.append(len(done) - before)
    await asyncio.gather(*tasks)
    assert sorted(done) == list(range(10)) and done == sorted(done)
    grants = [n for n in per_iteration if n]
    assert grants == sorted(grants) and grants[-1] > grants[0]  # 1, 2, 3, 4: growing


async def test_a_cancelled_runner_gives_its_place_to_the_next() -> None:
    pacer = overspent(SPENT)
    got: list[str] = []

    async def runner(name: str) -> None:
        await pacer.turn()
        got.append(name)

    first = asyncio.create_task(runner("cancelled"))
    second = asyncio.create_task(runner("next"))
    await asyncio.sleep(0)
    assert pacer.waiting == 2
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    asyncio.get_running_loop().call_soon(pacer._tick)  # one turn per iteration: "next"'s
    await second
    assert got == ["next"]


async def test_without_a_budget_no_turn_ever_waits() -> None:
    pacer = Pacer(None)  # a simulation's: runners keep the order the virtual clock gives them
    ran: list[str] = []
    asyncio.get_running_loop().call_soon(ran.append, "other")
    for _ in range(100):
        await pacer.turn()
    assert ran == [] and pacer.waits == 0


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget_s must be positive"):
        Pacer(budget_s=0)
