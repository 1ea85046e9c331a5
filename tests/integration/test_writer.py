"""The batch writer: every effect on one road, lost races re-decided, never a silent give-up."""

from __future__ import annotations

import anyio
import pytest

from engine.batch.writer import JobWriter
from engine.clock import SystemClock
from engine.core import operations as ops
from engine.core.errors import ConcurrentModification, JobNotFound, OperationNotAllowed
from engine.core.jobs import Family, Job, Mode, Segment, StepSpec
from engine.core.states import State
from engine.events import EventBus
from engine.store.commit import MAX_RACES, JobLocks
from engine.store.memory import MemoryJobStore
from engine.store.ports import JobWrite

SPECS = (StepSpec("a", "sim", Family.SHELL, Mode.SIMULATED),)


class RacedStore(MemoryJobStore):
    """A real memory store where another writer changes the job just before each of ours."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races  #: how many of our writes lose a race

    async def save_job(self, write: JobWrite) -> Job:
        if self.races and write.expected_version is not None:
            self.races -= 1
            current = await self.get_job(write.job.id)
            await super().save_job(JobWrite(current, current.version))
        return await super().save_job(write)

    async def delete_job(self, job_id: str, expected_version: int) -> None:
        if self.races:
            self.races -= 1
            current = await self.get_job(job_id)
            await super().save_job(JobWrite(current, current.version))
        await super().delete_job(job_id, expected_version)


async def stored_job(writer: JobWriter, state: State = State.READY) -> Job:
    segment = Segment("seg", "cube", "s", 0, 1)
    job = await writer.create(ops.submit("j", "p", "cube", "BUILD", segment, SPECS, "ADMIN", 1))
    if state is State.DISCARDED:
        job, _ = await writer.apply(job, lambda j: ops.discard(j, 2))
    return job


async def test_drop_is_an_effect_of_the_writer_and_survives_lost_races() -> None:
    store = RacedStore(races=0)
    writer = JobWriter(store, SystemClock(), EventBus())
    job = await stored_job(writer, State.DISCARDED)
    store.races = 3
    dropped, effects = await writer.apply(job, ops.drop)  # a stale job: re-read and re-decided
    assert effects == (ops.DeleteJob(job.id),)
    assert dropped.state is State.DISCARDED
    assert writer.cached(job.id) is None
    with pytest.raises(JobNotFound):
        await store.get_job(job.id)


async def test_an_operation_refused_after_a_lost_race_changes_nothing() -> None:
    store = RacedStore(races=0)
    writer = JobWriter(store, SystemClock(), EventBus())
    job = await stored_job(writer)
    with pytest.raises(OperationNotAllowed):
        await writer.apply(job, ops.drop)
    assert (await store.get_job(job.id)).version == job.version


async def test_save_output_raises_when_it_keeps_losing() -> None:
    store = RacedStore(races=0)
    writer = JobWriter(store, SystemClock(), EventBus())
    job = await stored_job(writer)
    store.races = MAX_RACES
    with pytest.raises(ConcurrentModification):
        await writer.save_output(job.id, job.steps[0].id, 0, "lost\n")
    store.races = MAX_RACES - 1  # one fewer: the last try lands
    await writer.save_output(job.id, job.steps[0].id, 0, "kept\n")
    assert await store.read_output(job.steps[0].id, 0) == "kept\n"


@pytest.mark.parametrize("checkpoint", [True, False])
async def test_job_locks_serialise_one_job_and_forget_idle_ones(checkpoint: bool) -> None:
    locks = JobLocks(checkpoint=checkpoint)
    order: list[str] = []

    async def hold(name: str, job_id: str, release: anyio.Event | None) -> None:
        async with locks.hold(job_id):
            order.append(f"{name}+")
            if release is not None:
                await release.wait()
            order.append(f"{name}-")

    release = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold, "a", "j1", release)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(hold, "b", "j1", None)
            tg.start_soon(hold, "c", "j2", None)  # another job does not wait
            await anyio.wait_all_tasks_blocked()
            assert order == ["a+", "c+", "c-"]
            release.set()
    assert order == ["a+", "c+", "c-", "a-", "b+", "b-"]
    assert locks._locks == {}
