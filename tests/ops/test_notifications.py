"""Job-end notifications to a real HTTP receiver on loopback (SPEC §11), in process."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.config import Config
from engine.core.notifications import JobEnd
from engine.core.states import State
from engine.facade import Engine
from tests.ops.receiver import Bodies, Receiver, free_port

KEYS = {
    "event_id", "job_id", "project", "cube", "job_type", "job_state", "segment_name",
    "start_time", "end_time", "duration", "error_step", "msg",
}  # fmt: skip
ENDED = {State.SUCCEED, State.ERROR, State.DISCARDED}
WAIT_S = 60.0
DAY = 86_400_000


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return ":memory:" if request.param == "memory" else str(tmp_path / "kjobs.sqlite")


def config_for(make_config: Callable[..., Config], store: str, url: str, **more: Any) -> Config:
    return make_config(**{
        "kjobs.store": store,
        "kylin.job.finished-notifier-url": url,
        "kylin.job.notifier-retry-interval": 50,
        **more,
    })  # fmt: skip


async def received(receiver: Receiver, job_id: str, state: str) -> dict[str, Any]:
    """Wait (in a thread, bounded) for the job's notification with ``job_state`` ``state``."""

    def has(bodies: Bodies) -> bool:
        return any(b["job_id"] == job_id and b["job_state"] == state for b in bodies)

    bodies = await anyio.to_thread.run_sync(partial(receiver.wait_for, has, WAIT_S))
    return next(b for b in bodies if b["job_id"] == job_id and b["job_state"] == state)


async def until(done: Callable[[], bool]) -> None:
    """Wait (bounded) until ``done()``: for counters the sender bumps after the receiver saw it."""
    with anyio.fail_after(WAIT_S):
        while not done():  # noqa: ASYNC110 - a counter, bumped by the sender: no event to await
            await anyio.sleep(0.01)


async def test_finished_job_posts_the_spec_payload(
    make_config: Callable[..., Config], store: str
) -> None:
    with Receiver() as receiver:
        async with Engine(config_for(make_config, store, receiver.url)) as engine:
            job = await engine.submit_build("kylin_sales_cube")
            done = await engine.wait_for(job.id, ENDED, timeout=WAIT_S)
            body = await received(receiver, job.id, "FINISHED")
    assert done.state is State.SUCCEED
    assert set(body) == KEYS
    assert body["project"] == done.project and body["cube"] == "kylin_sales_cube"
    assert body["job_type"] == "BUILD" and body["segment_name"] == done.segment.name
    assert (body["start_time"], body["end_time"]) == (done.start_time, done.end_time)
    assert body["duration"] == done.duration_s(done.end_time)
    assert body["error_step"] is None and "FINISHED" in body["msg"] and "\n" not in body["msg"]
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert receiver.headers[0]["X-Kjobs-Event-Id"] == body["event_id"]


async def test_error_then_discard_of_the_error_job_posts_both(
    make_config: Callable[..., Config], store: str
) -> None:
    with Receiver() as receiver:
        async with Engine(config_for(make_config, store, receiver.url)) as engine:
            job = await engine.submit_build("broken_cube")
            failed = await engine.wait_for(job.id, ENDED, timeout=WAIT_S)
            error = await received(receiver, job.id, "ERROR")
            await engine.discard(job.id)
            discarded = await received(receiver, job.id, "DISCARDED")
    assert failed.state is State.ERROR
    step = failed.first_step_in(State.ERROR)
    assert step is not None and error["error_step"] == step.name == "Build Dimension Dictionary"
    assert step.name in error["msg"]
    assert discarded["error_step"] is None
    assert discarded["event_id"] != error["event_id"]


async def test_discard_of_a_running_job_posts_discarded(
    make_config: Callable[..., Config], store: str
) -> None:
    with Receiver() as receiver:
        config = config_for(make_config, store, receiver.url, **{"kjobs.time-scale": 20.0})
        async with Engine(config) as engine:
            job = await engine.submit_build("slow_cube")
            await engine.wait_for(job.id, {State.RUNNING}, timeout=WAIT_S)
            await engine.discard(job.id)
            body = await received(receiver, job.id, "DISCARDED")
    assert body["job_type"] == "BUILD" and body["error_step"] is None


async def test_a_receiver_that_fails_twice_gets_the_same_event_id_three_times(
    make_config: Callable[..., Config], store: str
) -> None:
    with Receiver(fail_first=2) as receiver:
        async with Engine(config_for(make_config, store, receiver.url)) as engine:
            job = await engine.submit_build("kylin_sales_cube")
            done = await engine.wait_for(job.id, ENDED, timeout=WAIT_S)
            body = await received(receiver, job.id, "FINISHED")
            stats = engine.ops.stats
            await until(lambda: stats.notifications_sent == 1)
    assert done.state is State.SUCCEED  # the job never waited for the receiver
    assert [p["event_id"] for p in receiver.posts] == [body["event_id"]] * 3
    assert (stats.notification_failures, stats.notifications_sent) == (2, 1)


async def test_gives_up_after_max_retries_and_counts_it(
    make_config: Callable[..., Config], store: str
) -> None:
    with Receiver(fail_first=1000) as receiver:
        retries = {"kylin.job.notifier-max-retries": 2, "kylin.job.notifier-retry-interval": 10}
        config = config_for(make_config, store, receiver.url, **retries)
        async with Engine(config) as engine:
            await engine.submit_build("kylin_sales_cube")
            stats = engine.ops.stats
            await until(lambda: stats.notifications_given_up == 1)
    assert len(receiver.posts) == 3  # the first attempt and two retries
    assert (stats.notification_failures, stats.notifications_given_up) == (2, 1)


async def test_the_library_hook_sees_every_end_without_a_url(
    make_config: Callable[..., Config], store: str
) -> None:
    seen: list[JobEnd] = []
    got = anyio.Event()

    async def hook(end: JobEnd) -> None:
        seen.append(end)
        got.set()

    async def broken(end: JobEnd) -> None:
        raise RuntimeError("a service's bug")

    async with Engine(make_config(**{"kjobs.store": store})) as engine:
        engine.on_job_end(broken)
        unsubscribe = engine.on_job_end(hook)
        job = await engine.submit_build("kylin_sales_cube")
        await engine.wait_for(job.id, ENDED, timeout=WAIT_S)
        with anyio.fail_after(WAIT_S):
            await got.wait()
        unsubscribe()
        errors = engine.ops.stats.hook_errors
    assert [(e.job_id, e.job_state) for e in seen] == [(job.id, "FINISHED")]
    assert set(seen[0].payload()) == KEYS
    assert errors == 1


async def test_a_full_outbox_after_a_restart_is_posted_once_each(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    """More waiting entries than POSTs in flight: no claim takes back one still being sent."""
    store = str(tmp_path / "many.sqlite")
    patient = {"kylin.job.notifier-max-retries": 100}
    down = config_for(make_config, store, f"http://127.0.0.1:{free_port()}/hook", **patient)
    async with Engine(down) as engine:
        jobs = [await engine.submit_build("kylin_sales_cube", "BUILD", n * DAY, (n + 1) * DAY)
                for n in range(40)]  # fmt: skip
        for job in jobs:
            await engine.wait_for(job.id, ENDED, timeout=WAIT_S)
        stats = engine.ops.stats
        await until(lambda: stats.notification_failures >= 40)  # all 40 in the outbox
    with Receiver() as receiver:
        async with Engine(config_for(make_config, store, receiver.url, **patient)) as engine:
            stats = engine.ops.stats
            await until(lambda: stats.notifications_sent == 40)
    assert sorted(p["job_id"] for p in receiver.posts) == sorted(j.id for j in jobs)
