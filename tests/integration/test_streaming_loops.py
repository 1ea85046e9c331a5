"""The streaming service's build and merge loops on the real clock, memory and SQLite stores.

Simulated time runs 1,000x faster (a 30 s micro-batch takes 30 ms). The clock is the real
``SystemClock`` wrapped so that tests can wait for "a loop started waiting" or "a status
changed" instead of sleeping: every wait is an event, bounded by ``anyio.fail_after``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.clock import SystemClock
from engine.config.settings import StreamingSettings
from engine.core.errors import (
    InvalidStreamingParameter,
    JobNotFound,
    ModelBroken,
    StreamingActionNotAllowed,
)
from engine.core.states import RecordAction, StreamingStatus
from engine.core.streaming import StreamingSegment
from engine.store.memory import MemoryStreamingStore
from engine.store.ports import StreamingStore
from engine.store.sqlite.streaming import SqliteStreamingStore
from engine.streaming.service import StreamingChange, StreamingModelSpec, StreamingService

SCALE = 1000.0
LIMIT_S = 10  #: bound of every wait (the work itself takes milliseconds)
S = StreamingStatus


class ObservedClock:
    """``SystemClock``, telling waiters whenever a task starts a sleep or a status changes."""

    def __init__(self) -> None:
        self._clock = SystemClock()
        self._changed = anyio.Event()
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        """Wall-clock time."""
        return self._clock.now_ms()

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, wake waiters, then sleep for real."""
        self.sleeps.append(seconds)
        self.poke()
        await self._clock.sleep(seconds)

    def poke(self, *_: object) -> None:
        """Something changed: re-check the conditions waited for."""
        self._changed.set()
        self._changed = anyio.Event()

    async def until(self, check: Callable[[], Awaitable[bool] | bool]) -> None:
        """Wait until ``check()`` holds (re-checked after every sleep start or status change)."""
        with anyio.fail_after(LIMIT_S):
            while True:
                changed = self._changed
                result = check()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await changed.wait()


def spec(model_id: str = "m1", **changes: Any) -> StreamingModelSpec:
    """A deterministic model: fixed rate, no jitter, fast launch."""
    base = StreamingModelSpec(
        model_id,
        alias=f"{model_id}_alias",
        project="p1",
        fact_table="SSB.LINEORDER",
        topic=f"{model_id}_topic",
        rate_per_s=100.0,
        lag_s=2.0,
        rate_jitter=0.0,
        launch_s=1.0,
        processing_s=1.0,
        merge_s=1.0,
        bytes_per_row=1000,
    )
    return dataclasses.replace(base, **changes)


class Harness:
    """A started service, its clock, and the status changes it reported."""

    def __init__(self, service: StreamingService, clock: ObservedClock, store: StreamingStore):
        self.service = service
        self.clock = clock
        self.store = store
        self.changes: list[StreamingChange] = []

    async def status(self, job_id: str, *statuses: StreamingStatus) -> None:
        """Wait until the job is in one of ``statuses``."""
        await self.clock.until(lambda: self.service.get(job_id).status in statuses)

    async def sleeping(self, seconds: float) -> None:
        """Wait until some task sleeps ``seconds`` of wall time (a long launch or batch)."""
        await self.clock.until(lambda: seconds in self.clock.sleeps)

    def path(self, job_id: str) -> list[tuple[str, str]]:
        """The job's status changes as (old, new) pairs."""
        return [(c.old.value, c.new.value) for c in self.changes if c.job_id == job_id]


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Run on the in-memory store and on a real SQLite file."""
    return str(request.param)


def open_store(kind: str, tmp_path: Path) -> StreamingStore:
    if kind == "memory":
        return MemoryStreamingStore()
    return SqliteStreamingStore(tmp_path / "streaming.sqlite")


@asynccontextmanager
async def running(
    store: StreamingStore,
    *models: StreamingModelSpec,
    settings: StreamingSettings | None = None,
) -> AsyncIterator[Harness]:
    """Open ``store``, start a service on it, shut both down at the end."""
    clock = ObservedClock()
    await store.open()
    harness: Harness | None = None

    def hear(change: StreamingChange) -> None:
        assert harness is not None
        harness.changes.append(change)
        clock.poke()

    service = StreamingService(
        store,
        clock,
        settings or StreamingSettings(),
        models,
        seed=7,
        time_scale=SCALE,
        node_info="node-1:7070",
        on_change=hear,
    )
    harness = Harness(service, clock, store)
    try:
        async with anyio.create_task_group() as tg:
            await service.start(tg)
            try:
                yield harness
            finally:
                await service.shutdown()
    finally:
        await store.close()


def build_params(**extra: str) -> Mapping[str, str]:
    return {"kylin.streaming.duration": "30", **extra}


# -- micro-batches ---------------------------------------------------------------------------


async def test_batches_make_segments_and_stats_with_the_formulas(
    store_kind: str, tmp_path: Path
) -> None:
    model = spec(params=build_params())
    async with running(open_store(store_kind, tmp_path), model) as h:
        await h.service.apply("START", ["m1_build"], "p1")
        await h.status("m1_build", S.RUNNING)
        job = h.service.get("m1_build")
        assert job.node_info == "node-1:7070" and job.yarn_app_id.startswith("application_")
        await h.clock.until(lambda: h.service.counters().segments >= 4)
        await h.service.apply("FORCE_STOP", ["m1_build"])
        segments = await h.service.segments("m1")
        stats = await h.service.stats("m1_build", 30)
        job = h.service.get("m1_build")
    assert len(segments) == len(stats) >= 4
    # offsets follow each other from 0: nothing read twice, nothing lost
    assert segments[0].start_offset == 0
    assert all(a.end_offset == b.start_offset for a, b in itertools.pairwise(segments))
    by_time = sorted(stats, key=lambda r: r.create_time)
    for seg, row in zip(segments, by_time, strict=True):
        assert row.batch_row_num == seg.row_count == seg.end_offset - seg.start_offset > 0
        assert row.rows_per_second == row.batch_row_num * 1000 // 30_000
        assert row.min_data_latency == row.create_time - seg.min_event_time + 30_000
        assert row.max_data_latency == row.create_time - seg.max_event_time + 30_000
        assert seg.min_event_time <= seg.max_event_time <= row.create_time - 2_000  # lag 2 s
        assert seg.size_bytes == seg.row_count * 1000 and seg.layer == 0
        assert seg.create_time == row.create_time
    latest = stats[0]
    assert latest.create_time == max(r.create_time for r in stats)
    assert job.last_batch_count == latest.batch_row_num
    assert job.last_update_time is not None and job.last_update_time >= latest.create_time
    listed = h.service.view("m1_build")
    assert listed["data_latency"] == max(0, latest.min_data_latency)


async def test_max_offsets_per_trigger_caps_every_batch(tmp_path: Path) -> None:
    model = spec(rate_per_s=10_000.0, params=build_params(**{
        "kylin.streaming.kafka-conf.maxOffsetsPerTrigger": "50"
    }))  # fmt: skip
    async with running(MemoryStreamingStore(), model) as h:
        await h.service.apply("START", ["m1_build"])
        await h.clock.until(lambda: h.service.counters().segments >= 3)
        await h.service.apply("FORCE_STOP", ["m1_build"])
        segments = await h.service.segments("m1")
    assert [s.row_count for s in segments] == [50] * len(segments)
    assert [s.start_offset for s in segments] == [50 * i for i in range(len(segments))]


async def test_empty_batches_make_no_segment_and_zero_stats(tmp_path: Path) -> None:
    model = spec(rate_per_s=0.0, params=build_params())
    async with running(MemoryStreamingStore(), model) as h:
        await h.service.apply("START", ["m1_build"])
        await h.clock.until(lambda: h.service.counters().empty_batches >= 3)
        await h.service.apply("STOP", ["m1_build"])
        await h.status("m1_build", S.STOPPED)
        stats = await h.service.stats("m1_build", 1)
        assert await h.service.segments("m1") == []
        job = h.service.get("m1_build")
    assert len(stats) >= 3
    for row in stats:
        assert (row.batch_row_num, row.rows_per_second, row.processing_time) == (0, 0, 0)
        assert (row.min_data_latency, row.max_data_latency) == (0, 0)
    assert job.last_batch_count == 0 and job.data_latency == 0


# -- stopping --------------------------------------------------------------------------------


async def test_graceful_stop_between_batches_completes_at_once(tmp_path: Path) -> None:
    model = spec(params={"kylin.streaming.duration": "36000"})  # 36 s of wall time per batch
    async with running(MemoryStreamingStore(), model) as h:
        await h.service.apply("START", ["m1_build"])
        await h.status("m1_build", S.RUNNING)
        await h.service.apply("STOP", ["m1_build"])
        await h.status("m1_build", S.STOPPED)
        assert h.service.counters().batches == 0
        assert h.path("m1_build") == [
            ("STOPPED", "STARTING"),
            ("STARTING", "RUNNING"),
            ("RUNNING", "STOPPING"),
            ("STOPPING", "STOPPED"),
        ]
        records = await h.service.records("m1_build")
    assert [r.action for r in records] == [RecordAction.STOP, RecordAction.START]


async def test_graceful_stop_during_a_batch_lets_it_finish(store_kind: str, tmp_path: Path) -> None:
    model = spec(processing_s=300.0, params=build_params())  # a batch takes 0.3 s of wall time
    async with running(open_store(store_kind, tmp_path), model) as h:
        await h.service.apply("START", ["m1_build"])
        await h.sleeping(0.3)
        await h.service.apply("STOP", ["m1_build"])
        assert h.service.get("m1_build").status is S.STOPPING
        await h.status("m1_build", S.STOPPED)
        segments = await h.service.segments("m1")
        stats = await h.service.stats("m1_build", 1)
        job = h.service.get("m1_build")
    assert len(segments) == len(stats) == 1
    assert job.last_batch_count == segments[0].row_count > 0
    assert job.last_end_time is not None and job.last_end_time >= stats[0].create_time


async def test_force_stop_abandons_the_batch(store_kind: str, tmp_path: Path) -> None:
    model = spec(processing_s=300.0, params=build_params())
    async with running(open_store(store_kind, tmp_path), model) as h:
        await h.service.apply("START", ["m1_build"])
        await h.sleeping(0.3)
        await h.service.apply("FORCE_STOP", ["m1_build"])
        assert h.service.get("m1_build").status is S.STOPPED
        assert not h.service.is_running("m1_build")
        assert await h.service.segments("m1") == []
        assert await h.service.stats("m1_build", 1) == []
        assert h.path("m1_build")[-1] == ("RUNNING", "STOPPED")
        # the abandoned offsets are read again by the next run
        h.clock.sleeps.clear()
        await h.service.apply("START", ["m1_build"])
        await h.clock.until(lambda: h.service.counters().segments >= 1)
        await h.service.apply("FORCE_STOP", ["m1_build"])
        segments = await h.service.segments("m1")
    assert segments[0].start_offset == 0


async def test_force_stop_of_a_stopped_job_writes_a_new_stop(tmp_path: Path) -> None:
    async with running(MemoryStreamingStore(), spec()) as h:
        before = h.service.get("m1_build")
        await h.service.apply("FORCE_STOP", ["m1_build"])
        after = h.service.get("m1_build")
        records = await h.service.records("m1_build")
    assert after.status is S.STOPPED and after.mvcc == before.mvcc + 2
    assert [r.action for r in records] == [RecordAction.STOP]
    assert h.path("m1_build") == [("STOPPED", "STOPPING"), ("STOPPING", "STOPPED")]


# -- merging ---------------------------------------------------------------------------------


def merge_model(max_size: str) -> StreamingModelSpec:
    return spec(
        rate_per_s=100_000.0,
        params=build_params(**{
            "kylin.streaming.duration": "1",
            "kylin.streaming.kafka-conf.maxOffsetsPerTrigger": "100",
            "kylin.streaming.segment-merge-threshold": "3",
            "kylin.streaming.segment-max-size": max_size,
            "kylin.streaming.segment-merge-interval": "5",
        }),
    )  # fmt: skip


def check_merged(segments: list[StreamingSegment]) -> None:
    """Contiguous from 0, threshold-sized layers, and the newest segment never merged."""
    assert segments[0].start_offset == 0
    assert all(a.end_offset == b.start_offset for a, b in itertools.pairwise(segments))
    for seg in segments:
        assert seg.row_count == 100 * 3**seg.layer
        assert seg.size_bytes == seg.row_count * 1000
    assert max(segments, key=lambda s: s.end_offset).layer == 0


async def test_merge_respects_threshold_size_and_layers(store_kind: str, tmp_path: Path) -> None:
    async with running(open_store(store_kind, tmp_path), merge_model("1m")) as h:
        await h.service.apply("START", ["m1_build", "m1_merge"])

        async def has_layer_two() -> bool:
            return any(s.layer == 2 for s in await h.service.segments("m1"))

        await h.clock.until(has_layer_two)
        await h.service.apply("FORCE_STOP", ["m1_merge", "m1_build"])
        segments = await h.service.segments("m1")
        counters = h.service.counters()
        merge_job = h.service.get("m1_merge")
    check_merged(segments)
    assert counters.merged_segments == 3 * counters.merges
    assert sum(s.row_count for s in segments) == 100 * counters.segments
    assert merge_job.last_update_time is not None and merge_job.data_latency is None


async def test_merge_never_exceeds_max_size(tmp_path: Path) -> None:
    # 3 x 100 kB fit in 350 kB; 3 x 300 kB do not: no layer 2 ever
    async with running(MemoryStreamingStore(), merge_model("350k")) as h:
        await h.service.apply("START", ["m1_build", "m1_merge"])
        await h.clock.until(lambda: h.service.counters().merges >= 4)
        await h.service.apply("FORCE_STOP", ["m1_merge", "m1_build"])
        segments = await h.service.segments("m1")
    check_merged(segments)
    assert {s.layer for s in segments} == {0, 1}
    assert sum(1 for s in segments if s.layer == 1) >= 4


# -- starting --------------------------------------------------------------------------------


async def test_launch_failure_then_success(tmp_path: Path) -> None:
    model = spec(fail_first_launches=1, params=build_params())
    async with running(MemoryStreamingStore(), model) as h:
        await h.service.apply("START", ["m1_build"])
        await h.status("m1_build", S.LAUNCHING_ERROR)
        failed = h.service.get("m1_build")
        assert failed.last_end_time is None and failed.last_start_time is None
        assert await h.service.records("m1_build") == []
        listed = h.service.view("m1_build")
        assert (listed["job_status"], listed["launching_error"]) == ("ERROR", True)
        await h.service.apply("START", ["m1_build"])
        await h.status("m1_build", S.RUNNING)
        records = await h.service.records("m1_build")
        await h.service.apply("FORCE_STOP", ["m1_build"])
        counters = h.service.counters()
    assert [r.action for r in records] == [RecordAction.START]
    assert (counters.launch_failures, counters.launches) == (1, 1)
    assert h.path("m1_build")[:4] == [
        ("STOPPED", "STARTING"),
        ("STARTING", "LAUNCHING_ERROR"),
        ("LAUNCHING_ERROR", "STARTING"),
        ("STARTING", "RUNNING"),
    ]


async def test_broken_model_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    async with running(MemoryStreamingStore(), spec("bad", broken=True), spec("ok")) as h:
        before = h.service.get("bad_build")
        with pytest.raises(ModelBroken, match='Model "bad_alias" is currently broken'):
            await h.service.apply("START", ["ok_build", "bad_build", "ok_merge"])
        assert h.service.get("bad_build") == before
        # several ids are handled in order and the first error stops the rest
        assert h.service.get("ok_build").status is not S.STOPPED
        assert h.service.get("ok_merge").status is S.STOPPED
        assert await h.service.records("bad_build") == []
        assert h.service.view("bad_build")["model_broken"] is True


async def test_double_start_is_refused(tmp_path: Path) -> None:
    starting = spec("s", launch_s=100_000.0)
    running_model = spec("r", params={"kylin.streaming.duration": "36000"})
    async with running(MemoryStreamingStore(), starting, running_model) as h:
        await h.service.apply("START", ["s_build", "r_build"])
        await h.status("r_build", S.RUNNING)
        for job_id in ("s_build", "r_build"):
            before = h.service.get(job_id)
            with pytest.raises(StreamingActionNotAllowed, match="has an ongoing one"):
                await h.service.apply("START", [job_id])
            assert h.service.get(job_id) == before
        await h.service.apply("FORCE_STOP", ["s_build", "r_build"])


async def test_restart_of_a_running_job(tmp_path: Path) -> None:
    async with running(MemoryStreamingStore(), spec(params=build_params())) as h:
        await h.service.apply("START", ["m1_build"])
        await h.status("m1_build", S.RUNNING)
        await h.service.apply("RESTART", ["m1_build"])
        await h.clock.until(lambda: len(h.path("m1_build")) >= 5)
        await h.status("m1_build", S.RUNNING)
        await h.service.apply("FORCE_STOP", ["m1_build"])
        assert h.path("m1_build")[2:5] == [
            ("RUNNING", "STOPPED"),
            ("STOPPED", "STARTING"),
            ("STARTING", "RUNNING"),
        ]
        assert h.service.get("m1_build").job_execution_id == 2


async def test_unknown_action_and_unknown_job(tmp_path: Path) -> None:
    async with running(MemoryStreamingStore(), spec()) as h:
        with pytest.raises(InvalidStreamingParameter, match='"action" is invalid') as e:
            await h.service.apply("PAUSE", ["m1_build"])
        assert e.value.error_code == "KE-010043207"
        with pytest.raises(JobNotFound):
            await h.service.apply("START", ["m1_build"], project="other")
        with pytest.raises(JobNotFound):
            await h.service.apply("START", ["nope_build"])
        assert h.service.get("m1_build").status is S.STOPPED


async def test_params_only_while_stopped_or_error(tmp_path: Path) -> None:
    async with running(MemoryStreamingStore(), spec(params=build_params())) as h:
        job = await h.service.update_params("m1_build", "p1", {"kylin.streaming.duration": "60"})
        assert job.params == {"kylin.streaming.duration": "60"}
        await h.service.apply("START", ["m1_build"])
        with pytest.raises(StreamingActionNotAllowed):
            await h.service.update_params("m1_build", "p1", {"kylin.streaming.duration": "5"})
        await h.service.apply("FORCE_STOP", ["m1_build"])


# -- failures, retries and recovery ------------------------------------------------------------


async def test_loop_failure_goes_error_then_retries(tmp_path: Path) -> None:
    model = spec(
        fail_at_batches=frozenset({2}),
        params=build_params(**{"kylin.streaming.job-retry-enabled": "true"}),
    )
    settings = StreamingSettings(job_retry_interval_s=60, job_retry_max_interval_s=120)
    async with running(MemoryStreamingStore(), model, settings=settings) as h:
        await h.service.apply("START", ["m1_build"])
        await h.clock.until(lambda: h.service.counters().retries >= 1)
        await h.status("m1_build", S.RUNNING)
        await h.clock.until(lambda: h.service.counters().batches >= 3)
        await h.service.apply("FORCE_STOP", ["m1_build"])
        records = await h.service.records("m1_build")
        counters = h.service.counters()
    assert counters.loop_failures == 1 and counters.retries == 1
    assert [r.action for r in reversed(records)] == [
        RecordAction.START,
        RecordAction.ERROR,
        RecordAction.START,
        RecordAction.STOP,
    ]
    assert ("RUNNING", "ERROR") in h.path("m1_build")
    assert 60 / SCALE in h.clock.sleeps  # the first retry waits the interval


async def test_loop_failure_without_retry_stays_error(tmp_path: Path) -> None:
    model = spec(fail_at_batches=frozenset({1}), params=build_params())
    async with running(MemoryStreamingStore(), model) as h:
        await h.service.apply("START", ["m1_build"])
        await h.status("m1_build", S.ERROR)
        job = h.service.get("m1_build")
        assert job.last_end_time is not None
        assert not h.service.is_running("m1_build")
        assert h.service.view("m1_build")["launching_error"] is False


async def test_recovery_on_a_reopened_sqlite_file(tmp_path: Path) -> None:
    slow_launch = spec("b", launch_s=200_000.0)  # stays STARTING
    slow_batch = spec("c", processing_s=100_000.0, params=build_params())  # stays STOPPING
    failing = spec("d", fail_at_batches=frozenset({1}), params=build_params())
    path = tmp_path / "kjobs.sqlite"
    async with running(
        SqliteStreamingStore(path),
        spec("a", params=build_params()),
        slow_launch,
        slow_batch,
        failing,
    ) as h:
        await h.service.apply("START", ["a_build", "b_build", "c_build", "d_build"])
        await h.status("a_build", S.RUNNING)
        await h.status("d_build", S.ERROR)
        await h.sleeping(100.0)  # c's micro-batch is running
        await h.service.apply("STOP", ["c_build"])
        assert h.service.get("b_build").status is S.STARTING
        assert h.service.get("c_build").status is S.STOPPING
    # the engine went away with jobs RUNNING, STARTING, STOPPING and ERROR
    models = [spec(m, params=build_params()) for m in "abcd"]
    async with running(SqliteStreamingStore(path), *models) as h2:
        await h2.status("a_build", S.RUNNING)
        await h2.status("b_build", S.RUNNING)
        assert h2.service.get("c_build").status is S.ERROR
        assert h2.service.get("d_build").status is S.ERROR
        assert h2.path("a_build") == [
            ("RUNNING", "STOPPED"),
            ("STOPPED", "STARTING"),
            ("STARTING", "RUNNING"),
        ]
        assert h2.path("c_build") == [("STOPPING", "ERROR")]
        assert h2.path("d_build") == []
        a_records = await h2.service.records("a_build")
        c_records = await h2.service.records("c_build")
        await h2.service.apply("FORCE_STOP", ["a_build", "b_build"])
    assert [r.action for r in reversed(a_records)] == [
        RecordAction.START,
        RecordAction.STOP,
        RecordAction.START,
    ]
    assert next(r.action for r in c_records) is RecordAction.ERROR
