"""The real engine on real stores: the sample cubes behave as SPEC §7 says, operations as §2.1."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from engine.batch.output import NO_OUTPUT
from engine.batch.pacing import Pacer
from engine.core.errors import (
    CatalogNotFound,
    InvalidRequest,
    OperationNotAllowed,
    SegmentsOverlap,
    StepNotFound,
)
from engine.core.jobs import Family, Mode, StepSpec
from engine.core.states import State
from engine.events import JobChanged
from engine.facade import Engine
from engine.store.ports import JobFilter
from engine.store.sqlite.jobs import SqliteJobStore
from tests.integration.conftest import EngineFactory

ENDED = {State.SUCCEED, State.ERROR, State.DISCARDED, State.STOPPED}
DAY = 86_400_000


async def test_sales_cube_builds_to_succeed(make_engine: EngineFactory) -> None:
    async with make_engine() as engine:
        job = await engine.submit_build("kylin_sales_cube", "BUILD", 0, DAY)
        assert job.state is State.READY and job.build_instance == "unknown"
        done = await engine.wait_for(job.id, ENDED, timeout=30)
        assert done.state is State.SUCCEED
        assert all(s.state is State.SUCCEED for s in done.steps)
        assert done.progress == 100.0 and done.end_time >= done.start_time > 0
        assert done.build_instance == engine.instance
        for step in done.steps:
            assert step.id == f"{job.id}-{step.sequence:02d}"
            assert "startTime" in step.info and "endTime" in step.info
            if step.spec.family is Family.MAPREDUCE:
                assert step.info["yarn_application_id"].startswith("application_")
                assert step.info["mr_job_id"].startswith("job_")
            if step.spec.family in (Family.SHELL, Family.METADATA):
                assert step.info["exit_code"] == "0"
        segments = await engine.store.segments("kylin_sales_cube")
        assert [(s.status, s.start, s.end) for s in segments] == [("READY", 0, DAY)]
        out = await engine.step_output(job.id, f"{job.id}-2")  # unpadded id accepted
        assert out.step_id == f"{job.id}-02" and out.cmd_output


async def test_flaky_cube_errors_then_resume_finishes(make_engine: EngineFactory) -> None:
    async with make_engine() as engine:
        job = await engine.submit_build("flaky_cube", "BUILD", 0, DAY)
        failed = await engine.wait_for(job.id, ENDED, timeout=30)
        assert failed.state is State.ERROR and failed.end_time
        bad = failed.first_step_in(State.ERROR)
        assert bad is not None and bad.name == "Extract Fact Table Distinct Columns"
        assert all(s.state is State.READY for s in failed.steps[bad.sequence + 1 :])
        before = {s.sequence: s.attempts for s in failed.steps}

        resumed = await engine.resume(job.id)
        assert resumed.state in (State.READY, State.RUNNING)
        done = await engine.wait_for(job.id, {State.SUCCEED, State.ERROR}, timeout=30)
        assert done.state is State.SUCCEED
        for step in done.steps[: bad.sequence]:
            assert step.attempts == before[step.sequence] == 1  # finished steps not re-run
        assert done.step(bad.sequence).attempts == 2
        assert done.end_time >= failed.end_time and done.interrupt_time >= 0


async def test_broken_cube_always_fails_at_dictionary(make_engine: EngineFactory) -> None:
    async with make_engine() as engine:
        job = await engine.submit_build("broken_cube", "BUILD", 0, DAY)
        failed = await engine.wait_for(job.id, ENDED, timeout=30)
        assert failed.state is State.ERROR
        bad = failed.first_step_in(State.ERROR)
        assert bad is not None and bad.name == "Build Dimension Dictionary"
        await engine.resume(job.id)
        again = await engine.wait_for(job.id, {State.ERROR, State.SUCCEED}, timeout=30)
        assert again.state is State.ERROR


async def test_retry_policy_retries_without_resume(make_engine: EngineFactory) -> None:
    async with make_engine(**{"kylin.job.retry": 1, "kylin.job.retry-interval": 10}) as engine:
        job = await engine.submit_build("flaky_cube", "BUILD", 0, DAY)
        done = await engine.wait_for(job.id, ENDED, timeout=30)
        assert done.state is State.SUCCEED
        flaky = next(s for s in done.steps if s.name == "Extract Fact Table Distinct Columns")
        assert flaky.attempts == 2 and flaky.retries == 1
        first = await engine.step_output(job.id, flaky.id, attempt=1)
        assert first.cmd_output  # the failed attempt's output stays readable


async def test_pause_and_resume_a_running_slow_job(make_engine: EngineFactory) -> None:
    async with make_engine(**{"kjobs.time-scale": 50}) as engine:
        job = await engine.submit_build("slow_cube", "BUILD", 0, DAY)
        await engine.wait_for(job.id, {State.RUNNING}, timeout=10)
        paused = await engine.pause(job.id)
        assert paused.state is State.STOPPED and paused.end_time
        stopped = paused.first_step_in(State.STOPPED)
        assert stopped is not None
        with pytest.raises(OperationNotAllowed):
            await engine.pause(job.id)
        resumed = await engine.resume(job.id)
        assert resumed.end_time == 0 and resumed.interrupt_time >= 0
        running = await engine.wait_for(job.id, {State.RUNNING}, timeout=10)
        assert running.step(stopped.sequence).state in (State.RUNNING, State.SUCCEED)
        discarded = await engine.discard(job.id)
        assert discarded.state is State.DISCARDED
        assert all(s.state in (State.SUCCEED, State.DISCARDED) for s in discarded.steps)
        assert await engine.store.segments("slow_cube") == []  # its NEW segment was dropped


async def test_discard_of_finished_job_is_refused_and_drop_deletes(
    make_engine: EngineFactory,
) -> None:
    async with make_engine() as engine:
        job = await engine.submit_build("kylin_sales_cube", "BUILD", 0, DAY)
        await engine.wait_for(job.id, ENDED, timeout=30)
        with pytest.raises(OperationNotAllowed, match="already been finished"):
            await engine.discard(job.id)
        with pytest.raises(OperationNotAllowed):
            await engine.resume(job.id)
        dropped = await engine.drop(job.id)
        assert dropped.id == job.id
        assert await engine.list(JobFilter(cube="kylin_sales")) == []


async def test_rollback_of_a_finished_job_reruns_from_that_step(make_engine: EngineFactory) -> None:
    async with make_engine() as engine:
        job = await engine.submit_build("kylin_sales_cube", "BUILD", 0, DAY)
        done = await engine.wait_for(job.id, ENDED, timeout=30)
        target = done.steps[-3]
        rolled = await engine.rollback(job.id, target.id)
        assert rolled.state in (State.READY, State.RUNNING)
        for step in rolled.steps[target.sequence + 1 :]:
            assert step.state is State.READY and step.info == {}
        again = await engine.wait_for(job.id, ENDED, timeout=30)
        assert again.state is State.SUCCEED
        assert [s.attempts for s in again.steps[: target.sequence]] == [1] * target.sequence
        with pytest.raises(StepNotFound):
            await engine.rollback(job.id, f"{job.id}-99")


async def test_attempts_grow_over_a_jobs_life_so_flaky_cube_keeps_its_word(
    make_engine: EngineFactory,
) -> None:
    """SPEC §7: rollback and restart keep counting attempts; every attempt stays readable."""
    async with make_engine() as engine:
        job = await engine.submit_build("flaky_cube", "BUILD", 0, DAY)
        failed = await engine.wait_for(job.id, ENDED, timeout=30)
        flaky = failed.first_step_in(State.ERROR)
        assert flaky is not None and flaky.attempts == 1

        rolled = await engine.rollback(job.id, failed.steps[0].id)  # ERROR stays ERROR
        assert rolled.step(flaky.sequence).attempts == 1
        assert (await engine.step_output(job.id, flaky.id)).cmd_output == "no output"
        await engine.resume(job.id)
        done = await engine.wait_for(job.id, {State.SUCCEED, State.ERROR}, timeout=30)
        assert done.state is State.SUCCEED  # attempt 2 of the flaky step: it succeeds
        assert done.step(flaky.sequence).attempts == 2
        assert [s.attempts for s in done.steps[: flaky.sequence]] == [2] * flaky.sequence
        first = (await engine.step_output(job.id, flaky.id, attempt=1)).cmd_output
        assert first is not None and "failed with state FAILED" in first

        await engine.rollback(job.id, flaky.id)
        again = await engine.wait_for(job.id, {State.SUCCEED, State.ERROR}, timeout=30)
        assert again.state is State.SUCCEED and again.step(flaky.sequence).attempts == 3


async def test_segments_overlap_and_bad_ranges(make_engine: EngineFactory) -> None:
    async with make_engine() as engine:
        await engine.submit_build("kylin_sales_cube", "BUILD", 0, DAY)
        with pytest.raises(SegmentsOverlap):
            await engine.submit_build("kylin_sales_cube", "BUILD", DAY // 2, 2 * DAY)
        with pytest.raises(InvalidRequest):
            await engine.submit_build("kylin_sales_cube", "BUILD", 2 * DAY, DAY)
        with pytest.raises(CatalogNotFound):
            await engine.submit_build("no_such_cube", "BUILD", 0, DAY)


async def test_merge_replaces_two_ready_segments(make_engine: EngineFactory) -> None:
    async with make_engine() as engine:
        for start in (0, DAY):
            job = await engine.submit_build("kylin_sales_cube", "BUILD", start, start + DAY)
            assert (await engine.wait_for(job.id, ENDED, timeout=30)).state is State.SUCCEED
        merge = await engine.submit_build("kylin_sales_cube", "MERGE", 0, 2 * DAY)
        assert merge.priority == 25
        assert (await engine.wait_for(merge.id, ENDED, timeout=30)).state is State.SUCCEED
        segments = await engine.store.segments("kylin_sales_cube")
        assert [(s.status, s.start, s.end) for s in segments] == [("READY", 0, 2 * DAY)]


async def test_concurrency_limit_and_priority_order(make_engine: EngineFactory) -> None:
    async with make_engine(**{"kylin.job.max-concurrent-jobs": 2}) as engine:
        started: list[str] = []
        most = 0
        async with engine.subscribe() as events:
            ids = [
                (await engine.submit_build("kylin_sales_cube", "BUILD", i * DAY, (i + 1) * DAY)).id
                for i in range(5)
            ]
            running: set[str] = set()
            finished = 0
            with anyio.fail_after(60):
                async for event in events:
                    if not isinstance(event, JobChanged):
                        continue
                    if event.state == "RUNNING" and event.job_id not in running:
                        running.add(event.job_id)
                        started.append(event.job_id)
                        most = max(most, len(running))
                    elif event.state in ("SUCCEED", "ERROR"):
                        running.discard(event.job_id)
                        finished += 1
                        if finished == 5:
                            break
        assert most <= 2
        assert started == ids  # equal priority: submission order


async def test_paced_runners_queue_for_turns_and_every_job_still_finishes(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(**{"kylin.job.max-concurrent-jobs": 20}) as engine:
        engine.scheduler.pacer = pacer = Pacer(budget_s=1e-12)  # every loop iteration is busy
        jobs = [
            await engine.submit_build("kylin_sales_cube", "BUILD", i * DAY, (i + 1) * DAY)
            for i in range(20)
        ]
        done = [await engine.wait_for(job.id, ENDED, timeout=60) for job in jobs]
    assert [job.state for job in done] == [State.SUCCEED] * 20
    assert pacer.waits > 0 and pacer.waiting == 0  # runners did queue, and none was left


async def test_twenty_racing_resumes_one_wins(make_engine: EngineFactory) -> None:
    async with make_engine() as engine:
        job = await engine.submit_build("broken_cube", "BUILD", 0, DAY)
        await engine.wait_for(job.id, ENDED, timeout=30)
        outcomes: list[str] = []

        async def resume() -> None:
            try:
                await engine.resume(job.id)
                outcomes.append("ok")
            except OperationNotAllowed:
                outcomes.append("refused")

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(resume)
        assert outcomes.count("ok") == 1 and outcomes.count("refused") == 19
        done = await engine.wait_for(job.id, {State.ERROR}, timeout=30)
        bad = done.first_step_in(State.ERROR)
        assert bad is not None and bad.attempts == 2  # ran once more, not twenty times


async def test_explicit_job_with_real_shell_steps(make_engine: EngineFactory) -> None:
    script = "import sys; print('out'); sys.stderr.write('err\\n')"
    steps = [
        StepSpec("say hello", "SHELL_CMD", Family.SHELL, Mode.REAL, exec_cmd="echo hello"),
        StepSpec(
            "python",
            "SHELL_CMD",
            Family.SHELL,
            Mode.REAL,
            exec_cmd=f'{sys.executable} -c "{script}"',
        ),
    ]
    async with make_engine() as engine:
        job = await engine.submit_job(steps, project="adhoc", name="shell")
        done = await engine.wait_for(job.id, ENDED, timeout=30)
        assert done.state is State.SUCCEED
        first = await engine.step_output(job.id, f"{job.id}-00")
        second = await engine.step_output(job.id, f"{job.id}-01")
        assert first.cmd_output is not None and "hello" in first.cmd_output
        assert second.cmd_output is not None and "out" in second.cmd_output
        assert "err" in second.cmd_output
        assert done.step(1).info["exit_code"] == "0"


async def test_output_is_null_before_a_step_runs(make_engine: EngineFactory) -> None:
    async with make_engine(**{"kylin.job.max-concurrent-jobs": 1, "kjobs.time-scale": 50}) as e:
        first = await e.submit_build("slow_cube", "BUILD", 0, DAY)
        second = await e.submit_build("slow_cube", "BUILD", DAY, 2 * DAY)
        await e.wait_for(first.id, {State.RUNNING}, timeout=10)
        assert (await e.get(second.id)).state is State.READY
        out = await e.step_output(second.id, f"{second.id}-00")
        assert out.cmd_output is None
        await e.discard(second.id)
        await e.discard(first.id)


async def test_overview_counts_jobs_by_rest_status(make_engine: EngineFactory) -> None:
    async with make_engine() as engine:
        job = await engine.submit_build("broken_cube", "BUILD", 0, DAY)
        await engine.wait_for(job.id, ENDED, timeout=30)
        overview = await engine.overview()
        assert list(overview) == [
            "NEW",
            "PENDING",
            "RUNNING",
            "FINISHED",
            "ERROR",
            "DISCARDED",
            "STOPPED",
        ]
        assert overview["ERROR"] == 1 and sum(overview.values()) == 1


async def test_clean_shutdown_leaves_running_job_resumable(tmp_path: Path) -> None:
    from tests.integration.conftest import fast_config

    config = fast_config(
        tmp_path, **{"kjobs.store": str(tmp_path / "k.sqlite"), "kjobs.time-scale": 50}
    )
    async with Engine(config) as engine:
        job = await engine.submit_build("slow_cube", "BUILD", 0, DAY)
        await engine.wait_for(job.id, {State.RUNNING}, timeout=10)
    async with Engine(config) as engine:
        again = await engine.get(job.id)
        assert again.state in (State.READY, State.RUNNING)
        running = await engine.wait_for(job.id, {State.RUNNING}, timeout=10)
        assert running.state is State.RUNNING
        await engine.discard(job.id)


async def test_resumed_step_shows_no_output_until_it_runs(make_engine: EngineFactory) -> None:
    async with make_engine(**{"kylin.job.max-concurrent-jobs": 1}) as engine:
        flaky = await engine.submit_build("flaky_cube", "BUILD", 0, DAY)
        failed = await engine.wait_for(flaky.id, ENDED, timeout=30)
        bad = failed.first_step_in(State.ERROR)
        assert bad is not None
        assert (await engine.step_output(flaky.id, bad.id)).cmd_output  # the failure's output
        async with make_slot_holder(engine) as holder:
            await engine.resume(flaky.id)
            assert (await engine.get(flaky.id)).state is State.READY  # the slot is taken
            out = await engine.step_output(flaky.id, bad.id)
            assert out.cmd_output == NO_OUTPUT
            earlier = await engine.step_output(flaky.id, bad.id, attempt=1)
            assert earlier.cmd_output  # earlier attempts stay readable
            await engine.discard(holder)
        done = await engine.wait_for(flaky.id, {State.SUCCEED, State.ERROR}, timeout=30)
        assert done.state is State.SUCCEED


@asynccontextmanager
async def make_slot_holder(engine: Engine) -> AsyncIterator[str]:
    """Keep the only slot busy with a running job that never ends on its own."""
    step = StepSpec("hold", "SHELL_CMD", Family.SHELL, Mode.REAL, exec_cmd="sleep 60")
    job = await engine.submit_job([step], name="holder")
    await engine.wait_for(job.id, {State.RUNNING}, timeout=10)
    yield job.id


async def test_a_clean_shutdown_kills_the_mr_application_and_the_next_start_submits_anew(
    tmp_path: Path,
) -> None:
    from tests.integration.conftest import fast_config

    config = fast_config(
        tmp_path, **{"kjobs.store": str(tmp_path / "k.sqlite"), "kjobs.time-scale": 50}
    )

    async def mr_running(engine: Engine, job_id: str) -> tuple[int, str]:
        with anyio.fail_after(30):
            while True:
                job = await engine.get(job_id)
                step = job.first_step_in(State.RUNNING)
                if step is not None and "yarn_application_id" in step.info:
                    return step.sequence, step.info["yarn_application_id"]
                await anyio.sleep(0.01)

    async with Engine(config) as engine:
        job = await engine.submit_build("slow_cube", "BUILD", 0, DAY)
        sequence, first_app = await mr_running(engine, job.id)
    store = SqliteJobStore(str(tmp_path / "k.sqlite"))  # between the two engines
    await store.open()
    try:
        stopped = (await store.get_job(job.id)).step(sequence)
    finally:
        await store.close()
    assert stopped.state is State.READY and stopped.reattach
    assert stopped.info["yarn_expected_final_status"] == "KILLED"  # recorded at shutdown
    async with Engine(config) as engine:
        again, second_app = await mr_running(engine, job.id)
        assert again == sequence
        assert second_app != first_app  # a killed application is never re-attached to
        await engine.discard(job.id)
