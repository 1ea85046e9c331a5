"""The ``LeaseStore`` contract (``engine/store/ports.py``), run against every adapter.

Leases of jobs: claim, renew, release, revoke; fencing (a stale token's write is refused and
changes nothing); candidates for claiming; the nodes' registry. Two claimers never get the
same job, whatever the interleaving (Hypothesis).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.errors import LeaseLost
from engine.core.states import State
from engine.store import MemoryJobStore, SqliteJobStore
from engine.store.ports import JobStore, JobWrite, LeaseStore, NodeInfo
from tests.integration.test_store_contract import create, make_job

T0 = 1_700_000_000_000
TTL = 30_000

Opened = tuple[JobStore, LeaseStore]


@asynccontextmanager
async def open_adapter(kind: str, folder: Path, postgres_url: str | None) -> AsyncIterator[Opened]:
    """A job store and its leases, opened."""
    store: Any
    if kind == "memory":
        store = MemoryJobStore()
    elif kind == "sqlite":
        store = SqliteJobStore(folder / "jobs.sqlite")
    else:
        from engine.store.postgres import PostgresStores

        assert postgres_url is not None
        store = PostgresStores(postgres_url).jobs
    await store.open()
    try:
        yield store, store.leases
    finally:
        await store.close()


KINDS = ["memory", "sqlite", "postgresql"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Each adapter."""
    return str(request.param)


@pytest.fixture
def pg_url(kind: str, request: pytest.FixtureRequest) -> str | None:
    """A fresh PostgreSQL database for the PostgreSQL adapter (None for the others)."""
    return request.getfixturevalue("postgres_url") if kind == "postgresql" else None


@pytest.fixture
async def adapter(kind: str, tmp_path: Path, pg_url: str | None) -> AsyncIterator[Opened]:
    """The adapter under test, opened."""
    async with open_adapter(kind, tmp_path, pg_url) as opened:
        yield opened


async def test_a_claim_grants_one_owner_and_refuses_the_others(adapter: Opened) -> None:
    store, leases = adapter
    await create(store, make_job("j1"))
    first = await leases.claim("j1", "node-a", T0, TTL)
    assert first is not None
    assert (first.owner, first.expires) == ("node-a", T0 + TTL)
    assert await leases.claim("j1", "node-b", T0 + 1, TTL) is None
    again = await leases.claim("j1", "node-a", T0 + 2, TTL)  # its own restart
    assert again is not None
    assert again.token > first.token
    assert await leases.held("node-a") == {"j1": again.token}


async def test_an_expired_lease_goes_to_the_next_claimer_with_a_greater_token(
    adapter: Opened,
) -> None:
    store, leases = adapter
    await create(store, make_job("j1"))
    first = await leases.claim("j1", "node-a", T0, TTL)
    assert first is not None
    taken = await leases.claim("j1", "node-b", T0 + TTL, TTL)
    assert taken is not None
    assert taken.token > first.token
    assert await leases.held("node-a") == {}
    with pytest.raises(LeaseLost):
        await leases.renew(first, T0 + TTL + 1, TTL)


async def test_a_write_with_a_stale_token_is_refused_and_changes_nothing(adapter: Opened) -> None:
    store, leases = adapter
    job = await create(store, make_job("j1"))
    old = await leases.claim("j1", "node-a", T0, TTL)
    assert old is not None
    new = await leases.claim("j1", "node-b", T0 + TTL, TTL)
    assert new is not None
    running = job.evolve(state=State.RUNNING, last_modified=T0 + 5)
    with pytest.raises(LeaseLost) as caught:
        await store.save_job(JobWrite(running, job.version, lease=old))
    assert caught.value.job_id == "j1"
    assert await store.get_job("j1") == job
    stored = await store.save_job(JobWrite(running, job.version, lease=new))
    assert stored.version == job.version + 1
    # a write without a lease (a user's operation) is never refused for lease reasons
    assert (await store.save_job(JobWrite(stored, stored.version))).version == stored.version + 1


async def test_renew_moves_the_expiry_of_a_current_lease(adapter: Opened) -> None:
    store, leases = adapter
    await create(store, make_job("j1"))
    lease = await leases.claim("j1", "node-a", T0, TTL)
    assert lease is not None
    renewed = await leases.renew(lease, T0 + 10_000, TTL)
    assert (renewed.token, renewed.expires) == (lease.token, T0 + 10_000 + TTL)
    # still held at the old expiry: nobody else may claim it
    assert await leases.claim("j1", "node-b", T0 + TTL, TTL) is None


async def test_release_and_revoke_free_the_job_and_tokens_keep_growing(adapter: Opened) -> None:
    store, leases = adapter
    job = await create(store, make_job("j1"))
    first = await leases.claim("j1", "node-a", T0, TTL)
    assert first is not None
    await leases.release(first)
    assert await leases.held("node-a") == {}
    second = await leases.claim("j1", "node-b", T0 + 1, TTL)
    assert second is not None
    assert second.token > first.token
    await leases.release(first)  # a stale release changes nothing
    assert await leases.held("node-b") == {"j1": second.token}
    await leases.revoke("j1")
    assert await leases.held("node-b") == {}
    with pytest.raises(LeaseLost):
        await store.save_job(JobWrite(job, job.version, lease=second))
    third = await leases.claim("j1", "node-c", T0 + 2, TTL)
    assert third is not None
    assert third.token > second.token


async def test_take_over_moves_a_held_lease_and_fences_the_old_holder(adapter: Opened) -> None:
    store, leases = adapter
    job = await create(store, make_job("j1"))
    fresh = await leases.take_over("j0", "node-a", T0, TTL)  # never leased: the first token
    assert fresh.token == 1 and await leases.held("node-a") == {"j0": 1}
    held = await leases.claim("j1", "node-a", T0, TTL)
    assert held is not None
    taken = await leases.take_over("j1", "node-b", T0 + 1, TTL)  # a live lease: taken anyway
    assert (taken.owner, taken.expires) == ("node-b", T0 + 1 + TTL)
    assert taken.token > held.token
    assert await leases.held("node-a") == {"j0": 1}
    assert await leases.held("node-b") == {"j1": taken.token}
    with pytest.raises(LeaseLost):
        await store.save_job(JobWrite(job, job.version, lease=held))
    assert await store.get_job("j1") == job
    saved = await store.save_job(JobWrite(job.evolve(priority=3), job.version, lease=taken))
    assert saved.priority == 3


async def test_take_over_beside_fenced_writes_always_gets_the_lease(adapter: Opened) -> None:
    """A take-over racing the holder's writes waits for them; it never comes back empty (on
    PostgreSQL a write holds the lease row FOR SHARE, where a SKIP LOCKED claim gives up)."""
    store, leases = adapter
    job = await create(store, make_job("j1"))
    lease = await leases.claim("j1", "node-a", T0, TTL)
    assert lease is not None

    async def holder_writes() -> None:
        current = job
        for n in range(30):
            try:
                current = await store.save_job(
                    JobWrite(current.evolve(priority=n), current.version, lease=lease)
                )
            except LeaseLost:
                return

    writes = asyncio.ensure_future(holder_writes())
    await asyncio.sleep(0)
    taken = await leases.take_over("j1", "node-b", T0 + 1, TTL)
    await writes
    assert taken.token > lease.token
    assert await leases.held("node-b") == {"j1": taken.token}


async def test_claimable_lists_ready_jobs_and_orphans_by_priority_then_age(
    adapter: Opened,
) -> None:
    store, leases = adapter
    low = await create(store, make_job("low", now=T0))
    await store.save_job(JobWrite(low.evolve(priority=10), low.version))
    await create(store, make_job("old", now=T0 + 1))
    await create(store, make_job("new", now=T0 + 2))
    running = await create(store, make_job("orphan", now=T0 + 3))
    await store.save_job(JobWrite(running.evolve(state=State.RUNNING), running.version))
    await create(store, make_job("leased", now=T0 + 4))
    assert await leases.claim("leased", "node-a", T0, TTL) is not None
    found = await leases.claimable(T0 + 10, 10)
    assert [c.job_id for c in found] == ["old", "new", "orphan", "low"]
    assert found[2].state is State.RUNNING
    assert [c.job_id for c in await leases.claimable(T0 + 10, 2)] == ["old", "new"]
    later = await leases.claimable(T0 + TTL, 10)  # the lease on "leased" expired
    assert "leased" in [c.job_id for c in later]


async def test_nodes_register_refresh_and_are_forgotten_with_their_leases(
    adapter: Opened,
) -> None:
    store, leases = adapter
    await create(store, make_job("j1"))
    await leases.heartbeat(NodeInfo("b", "host1", 12, T0, T0, 0))
    await leases.heartbeat(NodeInfo("a", "host1", 11, T0, T0, 0))
    await leases.heartbeat(NodeInfo("a", "host1", 11, T0, T0 + 500, 3))
    assert await leases.nodes() == [
        NodeInfo("a", "host1", 11, T0, T0 + 500, 3),
        NodeInfo("b", "host1", 12, T0, T0, 0),
    ]
    assert await leases.claim("j1", "a", T0, TTL) is not None
    await leases.forget_node("a")
    assert [n.node_id for n in await leases.nodes()] == ["b"]
    assert await leases.claim("j1", "b", T0 + 1, TTL) is not None  # expired at once


# -- two claimers, any interleaving -------------------------------------------------------------

#: (claimer, milliseconds later) steps; claimers 0 and 1 race, "release" gives a lease back
STEPS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "release-a", "release-b"]), st.integers(0, 2 * TTL)),
    min_size=1,
    max_size=12,
)


async def _race(leases: LeaseStore, steps: list[tuple[str, int]]) -> None:
    """Run ``steps``; concurrent claims of one instant go together (``gather``)."""
    now = T0
    held: dict[str, Any] = {}
    last_token = 0
    for who, later in steps:
        now += later
        if who.startswith("release-"):
            lease = held.pop(who[-1], None)
            if lease is not None:
                await leases.release(lease)
            continue
        other = "b" if who == "a" else "a"
        got = await asyncio.gather(
            leases.claim("j1", who, now, TTL), leases.claim("j1", other, now, TTL)
        )
        winners = [lease for lease in got if lease is not None]
        previous = [lease for lease in held.values() if lease.expires > now]
        # a live lease of one owner lets only that owner re-claim; never two winners at once
        assert len({w.owner for w in winners}) <= 1
        if previous:
            assert all(w.owner == previous[0].owner for w in winners)
        for winner in winners:
            assert winner.token > last_token
            last_token = winner.token
            held = {winner.owner: winner}


@pytest.mark.parametrize("kind", KINDS)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_two_claimers_never_hold_one_job_at_once(
    kind: str, steps: list[tuple[str, int]], request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("postgres_server") if kind == "postgresql" else None
    # a fresh database per example (Hypothesis runs many in one test)
    url = server.create_database(f"h{uuid.uuid4().hex[:16]}") if server is not None else None
    run: Callable[[Opened], Awaitable[None]] = lambda opened: _race(opened[1], steps)  # noqa: E731

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            async with open_adapter(kind, Path(folder), url) as opened:
                await create(opened[0], make_job("j1"))
                await run(opened)

    asyncio.run(main())
