"""Streaming jobs on a shared store run on one node at a time (``engine/streaming/leasing.py``).

Two engines (two nodes) on one SQLite file and on one PostgreSQL database: a started job's loop
runs on the node that started it and a node that starts later leaves it alone; a STOP sent to
the other node ends the loop where it runs; a node that goes away has its running job taken on
by the other; a run whose lease was taken writes nothing more, and the store refuses a write
with a stale lease.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from engine.core.errors import LeaseLost, StreamingActionNotAllowed
from engine.core.states import StreamingJobType, StreamingStatus
from engine.core.streaming import streaming_job_id
from engine.facade import Engine
from engine.store.ports import StreamingWrite
from engine.streaming.service import StreamingService
from tests.integration.conftest import fast_config

LEASE_S = 1.0  #: the keeper checks every 0.25 s and rescues every 0.5 s
DEADLINE_S = 30.0


def node(tmp_path: Path, store: str, name: str) -> Engine:
    settings = {"kjobs.store": store, "kjobs.node-id": name, "kjobs.cluster.lease-seconds": LEASE_S}
    return Engine(fast_config(tmp_path / name, **settings))


def streaming(engine: Engine) -> StreamingService:
    assert engine.streaming is not None
    return engine.streaming


async def until(what: str, check: Callable[[], bool]) -> None:
    with anyio.move_on_after(DEADLINE_S):
        while not check():  # noqa: ASYNC110 - state of another node's tasks: no event to await
            await anyio.sleep(0.02)
        return
    pytest.fail(f"timed out waiting for {what}")


def shows(engine: Engine, job_id: str, status: StreamingStatus) -> Callable[[], bool]:
    """Whether ``engine`` answers that the job has ``status`` (its reads)."""
    return lambda: streaming(engine).get(job_id).status is status


async def start_running(engine: Engine) -> tuple[str, str]:
    """START the first streaming model's build job on ``engine`` until RUNNING: (id, project)."""
    model = streaming(engine).models()[0]
    job_id = streaming_job_id(model.model_id, StreamingJobType.STREAMING_BUILD)
    await streaming(engine).apply("START", [job_id], model.project)
    await until("the loop to run", shows(engine, job_id, StreamingStatus.RUNNING))
    return job_id, model.project


async def stored_status(engine: Engine, job_id: str) -> StreamingStatus:
    return (await streaming(engine)._store.get_job(job_id)).status


async def test_a_started_job_runs_on_one_node_and_a_stop_sent_elsewhere_ends_it(
    tmp_path: Path, shared_store: str
) -> None:
    async with node(tmp_path, shared_store, "node-a") as a:
        job_id, project = await start_running(a)
        async with node(tmp_path, shared_store, "node-b") as b:
            await anyio.sleep(3 * LEASE_S)  # b's start-up and several keeper rounds
            assert streaming(a).is_running(job_id) and not streaming(b).is_running(job_id)
            assert (await a.leases.held("node-a")).get(job_id) is not None
            assert job_id not in await b.leases.held("node-b")

            await streaming(b).apply("STOP", [job_id], project)  # sent to the other node
            await until("a's loop to end", lambda: not streaming(a).is_running(job_id))
            await until("b to record the stop", lambda: not streaming(b).is_running(job_id))
            assert await stored_status(b, job_id) is StreamingStatus.STOPPED
            await until("a to read b's stop", shows(a, job_id, StreamingStatus.STOPPED))
            await anyio.sleep(2 * LEASE_S)  # a writes nothing more: the job stays STOPPED
            assert await stored_status(a, job_id) is StreamingStatus.STOPPED
            assert not streaming(a).is_running(job_id) and not streaming(b).is_running(job_id)


async def test_a_job_of_a_node_that_went_away_runs_on_again_elsewhere(
    tmp_path: Path, shared_store: str
) -> None:
    async with node(tmp_path, shared_store, "node-b") as b:
        async with node(tmp_path, shared_store, "node-a") as a:
            job_id, project = await start_running(a)
            assert not streaming(b).is_running(job_id)
            token = (await a.leases.held("node-a"))[job_id]
        gone = anyio.current_time()
        # a is gone (it gave its lease up on its way out): b takes the job on
        await until("b to run the job", lambda: streaming(b).is_running(job_id))
        print(f"\nthe job ran again on b {anyio.current_time() - gone:.2f} s after a left")
        await until("b's loop to be RUNNING", shows(b, job_id, StreamingStatus.RUNNING))
        # one claim took the job on: the rescue's lease is the one its run carries
        assert (await b.leases.held("node-b")).get(job_id) == token + 1
        await streaming(b).apply("FORCE_STOP", [job_id], project)


async def test_a_run_whose_lease_was_taken_stops_and_its_late_write_is_refused(
    tmp_path: Path, shared_store: str
) -> None:
    async with node(tmp_path, shared_store, "node-a") as a:
        job_id, _ = await start_running(a)
        lease = streaming(a)._rt.runs[job_id].lease
        assert lease is not None
        # as an action sent to another node does
        taken = await a.leases.take_over(job_id, "node-z", a.clock.now_ms(), 60_000)
        assert taken.token > lease.token
        await until("the run to end", lambda: not streaming(a).is_running(job_id))

        store = streaming(a)._store
        before = await store.get_job(job_id)
        late = StreamingWrite(
            before.evolve(mvcc=before.mvcc + 1), before.mvcc, lease=lease
        )  # the stale run's write
        with pytest.raises(LeaseLost):
            await store.save(late)
        assert await store.get_job(job_id) == before
        await a.leases.release(taken)


async def test_a_refused_action_sent_elsewhere_leaves_the_running_loop_alone(
    tmp_path: Path, shared_store: str
) -> None:
    async with node(tmp_path, shared_store, "node-a") as a:
        job_id, project = await start_running(a)
        token = (await a.leases.held("node-a"))[job_id]
        async with node(tmp_path, shared_store, "node-b") as b:
            await until("b to read the job", shows(b, job_id, StreamingStatus.RUNNING))
            with pytest.raises(StreamingActionNotAllowed):
                await streaming(b).apply("START", [job_id], project)  # already started
            with pytest.raises(StreamingActionNotAllowed):
                await streaming(b).update_params(job_id, project, {"a": "b"})  # not stopped
            await anyio.sleep(2 * LEASE_S)  # keeper rounds of both nodes
            assert streaming(a).is_running(job_id) and not streaming(b).is_running(job_id)
            assert (await a.leases.held("node-a")).get(job_id) == token  # never taken over
            assert await stored_status(b, job_id) is StreamingStatus.RUNNING
        await streaming(a).apply("FORCE_STOP", [job_id], project)
