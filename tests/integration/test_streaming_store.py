"""The ``StreamingStore`` contract (``engine/store/ports.py``), run on every adapter.

The same tests run on ``MemoryStreamingStore`` and on ``SqliteStreamingStore`` over a real
file (alone, or sharing one ``SqliteDatabase`` with the batch store).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.core import streaming as core
from engine.core.errors import ConcurrentModification, JobNotFound
from engine.core.states import StreamingAction, StreamingJobType, StreamingStatus
from engine.core.streaming import BatchStats, StreamingJob, StreamingSegment
from engine.store.memory import MemoryStreamingStore
from engine.store.ports import StreamingStore, StreamingWrite
from engine.store.postgres import PostgresStores
from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.jobs import SqliteJobStore
from engine.store.sqlite.streaming import SqliteStreamingStore


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StreamingStore]:
    """An open store of each kind."""
    opened: StreamingStore
    if request.param == "memory":
        opened = MemoryStreamingStore()
    elif request.param == "sqlite":
        opened = SqliteStreamingStore(tmp_path / "streaming.sqlite")
    else:
        opened = PostgresStores(request.getfixturevalue("postgres_url")).streaming
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def new(
    model: str = "m1", job_type: StreamingJobType = StreamingJobType.STREAMING_BUILD
) -> StreamingJob:
    return core.new_job(
        model,
        job_type,
        1000,
        model_alias=model.upper(),
        project="p1",
        owner="ADMIN",
        params={"kylin.streaming.duration": "30", "ü": "ünïcode"},
        fact_table="SSB.LINEORDER",
        subscribe="topic",
    )


def segment(i: int, model: str = "m1", layer: int = 0) -> StreamingSegment:
    return StreamingSegment(
        f"{model}-s{i}", model, "p1", i * 10, i * 10 + 10, 5 + i, 9 + i, 10, 1280, 100 + i, layer
    )


async def test_create_get_list_round_trip(store: StreamingStore) -> None:
    job = new()
    assert await store.save(StreamingWrite(job, None)) == job
    assert await store.get_job(job.uuid) == job
    merge = new(job_type=StreamingJobType.STREAMING_MERGE)
    await store.save(StreamingWrite(merge, None))
    assert [j.uuid for j in await store.list_jobs()] == ["m1_build", "m1_merge"]
    with pytest.raises(JobNotFound):
        await store.get_job("nope_build")


async def test_every_field_survives(store: StreamingStore) -> None:
    job = new()
    await store.save(StreamingWrite(job, None))
    full = job.evolve(
        status=StreamingStatus.LAUNCHING_ERROR,
        mvcc=3,
        last_update_time=5,
        last_start_time=6,
        last_end_time=7,
        last_batch_count=8,
        yarn_app_id="application_1_0001",
        yarn_app_url="http://x",
        process_id="42",
        node_info="host:7070",
        job_execution_id=2,
        action="START",
        skip_listener=True,
        last_record_time=9,
        data_latency=10,
    )
    await store.save(StreamingWrite(full, 0))
    assert await store.get_job(job.uuid) == full


async def test_compare_and_set_on_mvcc(store: StreamingStore) -> None:
    job = new()
    await store.save(StreamingWrite(job, None))
    with pytest.raises(ConcurrentModification):
        await store.save(StreamingWrite(job, None))  # exists already
    decision = core.apply_action(job, StreamingAction.START, 2000, model_broken=False)
    await store.save(StreamingWrite(decision.job, decision.expected_mvcc, decision.records))
    with pytest.raises(ConcurrentModification):  # a second writer with the old mvcc loses
        await store.save(StreamingWrite(decision.job.evolve(mvcc=5), job.mvcc))
    with pytest.raises(ConcurrentModification):  # mvcc must grow
        await store.save(StreamingWrite(decision.job, decision.job.mvcc))
    assert await store.get_job(job.uuid) == decision.job


async def test_a_lost_race_writes_nothing_of_its_call(store: StreamingStore) -> None:
    job = new()
    await store.save(StreamingWrite(job, None))
    stats = BatchStats(job.uuid, "p1", 10, 1, 5, 6, 7, 2000)
    record = core.StreamingRecord(job.uuid, "p1", core.RecordAction.START, 2000)
    with pytest.raises(ConcurrentModification):
        await store.save(
            StreamingWrite(job.evolve(mvcc=9), 4, (record,), (stats,), add_segments=(segment(0),))
        )
    with pytest.raises(ConcurrentModification):  # removing a segment that is not there
        await store.save(
            StreamingWrite(
                job.evolve(mvcc=1), 0, (record,), (stats,), (segment(1),), remove_segments=("x",)
            )
        )
    assert await store.get_job(job.uuid) == job
    assert await store.records(job.uuid) == []
    assert await store.stats(job.uuid, 0) == []
    assert await store.segments("m1") == []


async def test_records_newest_first_with_increasing_ids(store: StreamingStore) -> None:
    job = new()
    await store.save(StreamingWrite(job, None))
    mvcc = job.mvcc
    for t, action in [(10, "START"), (20, "STOP"), (20, "START"), (30, "ERROR")]:
        record = core.StreamingRecord(job.uuid, "p1", core.RecordAction(action), t)
        job = job.evolve(mvcc=mvcc + 1)
        await store.save(StreamingWrite(job, mvcc, (record,)))
        mvcc += 1
    records = await store.records(job.uuid)
    assert [(r.create_time, r.action.value) for r in records] == [
        (30, "ERROR"),
        (20, "START"),
        (20, "STOP"),
        (10, "START"),
    ]
    ids = [r.id for r in records]
    assert ids == sorted(ids, key=lambda i: -(i or 0)) and len(set(ids)) == 4
    assert [r.action.value for r in await store.records(job.uuid, limit=1)] == ["ERROR"]
    assert await store.records("other_build") == []


async def test_stats_since_newest_first(store: StreamingStore) -> None:
    job = new()
    await store.save(StreamingWrite(job, None))
    rows = [BatchStats(job.uuid, "p1", n, n, n, n, n, t) for n, t in [(1, 100), (2, 200), (3, 300)]]
    await store.save(StreamingWrite(job.evolve(mvcc=1), 0, stats=rows))
    assert [r.batch_row_num for r in await store.stats(job.uuid, 200)] == [3, 2]
    assert [r.batch_row_num for r in await store.stats(job.uuid, 0)] == [3, 2, 1]
    assert await store.stats(job.uuid, 301) == []


async def test_segments_add_and_replace_atomically(store: StreamingStore) -> None:
    build, merge = new(), new(job_type=StreamingJobType.STREAMING_MERGE)
    await store.save(StreamingWrite(build, None))
    await store.save(StreamingWrite(merge, None))
    await store.save(
        StreamingWrite(build.evolve(mvcc=1), 0, add_segments=[segment(i) for i in (2, 0, 1, 3)])
    )
    await store.save(StreamingWrite(new("m2").evolve(), None, add_segments=[segment(0, "m2")]))
    assert [s.id for s in await store.segments("m1")] == ["m1-s0", "m1-s1", "m1-s2", "m1-s3"]
    merged = StreamingSegment("m1-L1", "m1", "p1", 0, 30, 5, 11, 30, 3840, 500, 1)
    await store.save(
        StreamingWrite(
            merge.evolve(mvcc=1),
            0,
            add_segments=[merged],
            remove_segments=["m1-s0", "m1-s1", "m1-s2"],
        )
    )
    assert await store.segments("m1") == [merged, segment(3)]
    assert [s.id for s in await store.segments("m2")] == ["m2-s0"]


async def test_sqlite_store_shares_the_batch_database(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "kjobs.sqlite")
    batch = SqliteJobStore(db)
    streaming = SqliteStreamingStore(db)
    await batch.open()
    await streaming.open()
    try:
        await streaming.save(StreamingWrite(new(), None))
        assert (await streaming.get_job("m1_build")).model_alias == "M1"
    finally:
        await streaming.close()
        await batch.close()
        await db.close()  # its owner: neither store closes a shared database
    reopened = SqliteStreamingStore(tmp_path / "kjobs.sqlite")
    await reopened.open()
    try:
        assert [j.uuid for j in await reopened.list_jobs()] == ["m1_build"]
    finally:
        await reopened.close()
