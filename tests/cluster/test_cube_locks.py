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
