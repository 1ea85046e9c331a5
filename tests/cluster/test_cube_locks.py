"""Two engines on one store never plan overlapping builds of one cube (``CubeLocks``).

Each engine plans a build's segment against the cube's stored segments. Without a lock across
engines, two of them that read the segments at the same moment both accept the same range.
Here two engines (two nodes, as two ``kjobs serve`` would be) on one SQLite file and on one
PostgreSQL database submit the same ranges at once: each range is accepted exactly once, the
others get ``SegmentsOverlap``, and the cube's stored segments never overlap.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import pytest

from engine.batch.cube_locks import PREFIX, CubeLocks
from engine.clock import SystemClock
from engine.core.errors import SegmentsOverlap, StoreUnavailable
from engine.facade import Engine
from engine.store.leases import LocalLeases
from engine.store.memory import MemoryJobStore
from tests.integration.conftest import fast_config

CUBE = "kylin_sales_cube"
RANGES = 12
TRIES = 3  #: submits of each range per engine


@asynccontextmanager
async def two_engines(tmp_path: Path, store: str) -> AsyncIterator[list[Engine]]:
    async with AsyncExitStack() as stack:
        engines = []
        for name in ("a", "b"):
            config = fast_config(
                tmp_path / name,
                **{"kjobs.store": store, "kjobs.node-id": f"node-{name}"},
            )
            engines.append(await stack.enter_async_context(Engine(config, with_streaming=False)))
        yield engines


async def test_two_engines_accept_each_range_once(tmp_path: Path, shared_store: str) -> None:
    accepted: dict[int, list[str]] = {n: [] for n in range(RANGES)}
    refused: list[int] = []

    async def submit(engine: Engine, n: int) -> None:
        try:
            job = await engine.submit_build(CUBE, "BUILD", n * 1000, (n + 1) * 1000)
        except SegmentsOverlap:
            refused.append(n)
        else:
            accepted[n].append(job.id)

    async with two_engines(tmp_path, shared_store) as engines:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for n, engine, _ in itertools.product(range(RANGES), engines, range(TRIES)):
                    tg.start_soon(submit, engine, n)
        segments = await engines[0].segments(CUBE)

    assert {n: len(ids) for n, ids in accepted.items()} == dict.fromkeys(range(RANGES), 1)
    assert len(refused) == RANGES * (len(engines) * TRIES - 1)
    spans = sorted((s.start, s.end) for s in segments)
    assert spans == [(n * 1000, (n + 1) * 1000) for n in range(RANGES)]


async def test_an_engine_waits_for_another_nodes_lock_then_gives_up_with_a_503() -> None:
    leases = LocalLeases(MemoryJobStore())
    leases.shared = True  # as a shared file's leases: the lock is taken
    clock = SystemClock()
    mine = CubeLocks(leases, "node-a", clock, timeout_s=0.2)
    theirs = await leases.claim(PREFIX + CUBE, "node-b", clock.now_ms(), 60_000)
    assert theirs is not None
    with pytest.raises(StoreUnavailable, match="being planned by another node"):
        async with mine.hold(CUBE):
            pytest.fail("the lock of another node was taken")
    await leases.release(theirs)
    async with mine.hold(CUBE), mine.hold(CUBE):  # one engine's submits share the lease
        held = await leases.held("node-a")
        assert list(held) == [PREFIX + CUBE]
    assert await leases.held("node-a") == {}  # the last one out gave it up


async def test_a_stream_of_submits_claims_the_lock_once_and_it_is_let_go_soon_after() -> None:
    leases = LocalLeases(MemoryJobStore())
    leases.shared = True
    locks = CubeLocks(leases, "node-a", SystemClock(), linger_s=0.05)
    async with anyio.create_task_group() as tg:
        locks.attach(tg)  # as a running engine's: the last submit out does not release
        for _ in range(20):
            async with locks.hold(CUBE):
                pass
            assert list(await leases.held("node-a")) == [PREFIX + CUBE]
        held = await leases.held("node-a")
        assert held == {PREFIX + CUBE: 1}  # claimed once, by the first submit
        with anyio.fail_after(10):
            while await leases.held("node-a"):  # noqa: ASYNC110 (polls the store)
                await anyio.sleep(0.01)
        async with locks.hold(CUBE):  # free again: the next submit claims anew
            assert await leases.held("node-a") == {PREFIX + CUBE: 2}
        tg.cancel_scope.cancel()  # the engine stops: the lock lingering then is released
    assert await leases.held("node-a") == {}


async def test_another_node_gets_a_lingering_lock_once_it_is_let_go(
    tmp_path: Path, shared_store: str
) -> None:
    async with two_engines(tmp_path, shared_store) as (a, b):
        first = await a.submit_build(CUBE, "BUILD", 0, 1000)
        with anyio.fail_after(30):  # b waits out a's linger, then plans against a's segment
            second = await b.submit_build(CUBE, "BUILD", 1000, 2000)
            with pytest.raises(SegmentsOverlap):
                await b.submit_build(CUBE, "BUILD", 500, 1500)
        with anyio.fail_after(30):  # a sees b's build by its next write (its heartbeat)
            while len(await a.segments(CUBE)) < 2:  # noqa: ASYNC110 (polls the store)
                await anyio.sleep(0.05)
        segments = await a.segments(CUBE)
    assert first.segment.uuid != second.segment.uuid
    assert sorted((s.start, s.end) for s in segments) == [(0, 1000), (1000, 2000)]


async def test_a_node_plans_against_the_builds_another_node_made(
    tmp_path: Path, shared_store: str
) -> None:
    async with two_engines(tmp_path, shared_store) as (a, b):
        await a.submit_build(CUBE, "BUILD", 0, 1000)  # a has read (and may keep) the segments
        await b.submit_build(CUBE, "BUILD", 1000, 2000)
        with pytest.raises(SegmentsOverlap):  # at once: planning never uses a stale view
            await a.submit_build(CUBE, "BUILD", 1500, 2500)
