"""The ``JobStore`` contract for ``engine.ops``: the outbox and the retention sweep, on every
adapter (the ``store`` fixture of ``test_store_contract``)."""

from __future__ import annotations

import json

import pytest

from engine.core.errors import ConcurrentModification
from engine.core.notifications import job_end
from engine.core.states import State
from engine.store.ports import JobStore, JobWrite, OutputWrite, SegmentChange
from tests.integration.test_store_contract import create, make_job, store

__all__ = ["store"]  # the fixture, run on every adapter

T0 = 1_700_000_000_000


async def _end(store: JobStore, job_id: str, state: State, when: int) -> None:
    """Store ``job_id`` in ``state`` at ``when``, with its notification and an output."""
    v1 = await create(store, make_job(job_id, now=when - 10))
    ended = v1.evolve(state=state, last_modified=when, start_time=when - 5, end_time=when)
    end = job_end(v1, ended)
    await store.save_job(
        JobWrite(ended, v1.version, outputs=[OutputWrite(v1.steps[0].id, 1, "out")],
                 notification=end)
    )  # fmt: skip


async def test_a_job_end_lands_in_the_outbox_with_its_state(store: JobStore) -> None:
    await _end(store, "j1", State.SUCCEED, T0)
    [entry] = await store.claim_notifications(T0, T0 + 1000, 10)
    payload = json.loads(entry.payload)
    assert (entry.job_id, entry.attempts, payload["job_state"]) == ("j1", 0, "FINISHED")
    assert payload["event_id"] == entry.event_id
    assert entry.next_attempt == T0 + 1000


async def test_a_lost_race_writes_no_notification(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    await store.save_job(JobWrite(v1.evolve(build_instance="other"), v1.version))
    ended = v1.evolve(state=State.DISCARDED, end_time=T0)
    with pytest.raises(ConcurrentModification):
        await store.save_job(JobWrite(ended, v1.version, notification=job_end(v1, ended)))
    assert await store.claim_notifications(2 * T0, 2 * T0, 10) == []


async def test_a_claim_hides_entries_until_its_lease_ends(store: JobStore) -> None:
    await _end(store, "j1", State.ERROR, T0)
    await _end(store, "j2", State.DISCARDED, T0 + 1)
    assert len(await store.claim_notifications(T0 + 1, T0 + 500, 10)) == 2
    assert await store.claim_notifications(T0 + 499, T0 + 900, 10) == []
    again = await store.claim_notifications(T0 + 500, T0 + 900, 1)
    assert len(again) == 1  # the limit holds


async def test_settle_deletes_retries_or_gives_up(store: JobStore) -> None:
    for n, job_id in enumerate(("ok", "retry", "dead")):
        await _end(store, job_id, State.SUCCEED, T0 + n)
    claimed = {e.job_id: e for e in await store.claim_notifications(T0 + 5, T0 + 10, 10)}
    await store.settle_notification(claimed["ok"].event_id, 1, None, None)
    await store.settle_notification(claimed["retry"].event_id, 1, T0 + 100, "HTTP 503")
    await store.settle_notification(claimed["dead"].event_id, 6, None, "HTTP 500")
    assert await store.claim_notifications(T0 + 99, T0 + 200, 10) == []
    [retry] = await store.claim_notifications(T0 + 100, T0 + 200, 10)
    assert (retry.job_id, retry.attempts) == ("retry", 1)
    await store.settle_notification(retry.event_id, 2, None, None)
    assert await store.claim_notifications(10 * T0, 10 * T0, 10) == []  # the given-up one


async def test_sweep_takes_old_ended_jobs_with_outputs_and_keeps_segments(
    store: JobStore,
) -> None:
    await _end(store, "old-done", State.SUCCEED, T0)
    await _end(store, "old-discarded", State.DISCARDED, T0 + 1)
    await _end(store, "old-error", State.ERROR, T0 + 2)  # may still be resumed
    await _end(store, "new-done", State.SUCCEED, T0 + 1000)
    v1 = await create(store, make_job("seg-job", now=T0))
    await store.save_job(
        JobWrite(v1.evolve(state=State.SUCCEED, last_modified=T0), v1.version,
                 segments=SegmentChange(upsert=[v1.segment.__class__(
                     "ready-seg", v1.cube, "s", 0, 10, "READY")]))
    )  # fmt: skip
    first = await store.sweep_jobs(T0 + 1000, 2)
    rest = await store.sweep_jobs(T0 + 1000, 100)
    assert sorted(first) == ["old-done", "seg-job"]
    assert rest == ["old-discarded"]
    left = {job.id for job in await store.jobs_in_states(frozenset(State))}
    assert left == {"old-error", "new-done"}
    assert await store.read_output("old-done-00", 1) is None
    assert await store.read_output("new-done-00", 1) == "out"
    assert [s.uuid for s in await store.segments(v1.cube)] == ["ready-seg"]
