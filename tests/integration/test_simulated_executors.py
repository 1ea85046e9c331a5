"""Simulated shell, metadata, bulk-load and MapReduce steps, on the real system clock."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import replace

import anyio
import pytest

from engine.clock import SystemClock
from engine.core.errors import StepFailure
from engine.core.jobs import Family, Mode, Step, StepSpec
from steps import (
    Executors,
    MapReduceExecutor,
    MetadataExecutor,
    SimulatedBulkLoadExecutor,
    SimulatedShellExecutor,
    SimulatedYarn,
    UnsupportedExecutor,
    executor_for,
    supports,
)
from steps.base import Profile, StepContext, StepExecutor
from steps.mapreduce import EXPECTED_FINISH
from tests.integration.sinks import Lines

QUICK = Profile(min_seconds=0.0, max_seconds=0.01, output_lines=2)
INSTANT = Profile(min_seconds=0.0, max_seconds=0.0, output_lines=2)
PROGRESS = re.compile(r" map (\d+)% reduce (\d+)%\n$")


class Info:
    """An info sink that records every update, and how much output came before it."""

    def __init__(self, output: Lines) -> None:
        self.output = output
        self.updates: list[tuple[dict[str, str], int | None, int]] = []
        self.merged: dict[str, str] = {}
        self.first = anyio.Event()

    async def update(self, info: Mapping[str, str], wait_time_ms: int | None = None) -> None:
        self.updates.append((dict(info), wait_time_ms, len(self.output.lines)))
        self.merged.update(info)
        self.first.set()


def make_ctx(
    family: Family,
    profile: Profile = QUICK,
    *,
    attempts: int = 1,
    seed: int = 7,
    time_scale: float = 1.0,
    previous_info: Mapping[str, str] | None = None,
) -> StepContext:
    cmd_type = {
        Family.SHELL: "SHELL_CMD_HADOOP",
        Family.MAPREDUCE: "JAVA_CMD_HADOOP_FACTDISTINCT",
        Family.BULKLOAD: "JAVA_CMD_HADOOP_NO_MR_BULKLOAD",
        Family.METADATA: "JAVA_CMD_HADOOP_NO_MR_DICTIONARY",
    }[family]
    spec = StepSpec(
        name=f"A {family} step", cmd_type=cmd_type, family=family, exec_cmd="hive -e 'select 1'"
    )
    output = Lines()
    return StepContext(
        job_id="j",
        step=Step(job_id="j", sequence=2, spec=spec, attempts=attempts),
        params={},
        output=output,
        info=Info(output),
        clock=SystemClock(),
        rng=random.Random(seed),
        profile=profile,
        time_scale=time_scale,
        grace_seconds=0.5,
        previous_info=previous_info,
    )


def out(ctx: StepContext) -> Lines:
    assert isinstance(ctx.output, Lines)
    return ctx.output


def info(ctx: StepContext) -> Info:
    assert isinstance(ctx.info, Info)
    return ctx.info


async def run(executor: StepExecutor, ctx: StepContext) -> dict[str, str]:
    with anyio.fail_after(10):
        return dict((await executor.run(ctx)).info)


SIMPLE: list[tuple[Family, StepExecutor]] = [
    (Family.SHELL, SimulatedShellExecutor()),
    (Family.METADATA, MetadataExecutor()),
    (Family.BULKLOAD, SimulatedBulkLoadExecutor()),
    (Family.MAPREDUCE, MapReduceExecutor()),
]


# -- registry ---------------------------------------------------------------------------------


def test_registry_has_an_executor_for_every_family_and_mode() -> None:
    expected = {
        (Family.SHELL, Mode.SIMULATED): SimulatedShellExecutor,
        (Family.MAPREDUCE, Mode.SIMULATED): MapReduceExecutor,
        (Family.MAPREDUCE, Mode.REAL): UnsupportedExecutor,
        (Family.BULKLOAD, Mode.SIMULATED): SimulatedBulkLoadExecutor,
        (Family.METADATA, Mode.REAL): MetadataExecutor,
        (Family.METADATA, Mode.SIMULATED): MetadataExecutor,
    }
    for (family, mode), kind in expected.items():
        spec = StepSpec(name="s", cmd_type="SHELL_CMD", family=family, mode=mode)
        assert isinstance(executor_for(spec), kind)
        assert supports(family, mode) is (kind is not UnsupportedExecutor)


async def test_real_mapreduce_fails_clearly() -> None:
    ctx = make_ctx(Family.MAPREDUCE)
    spec = replace(ctx.step.spec, mode=Mode.REAL)
    with pytest.raises(StepFailure, match="cannot run in real mode") as failure:
        await run(executor_for(spec), ctx)
    assert failure.value.kind == "UnsupportedMode"


# -- shell and metadata -----------------------------------------------------------------------


async def test_simulated_shell_succeeds_with_exit_code_and_output() -> None:
    ctx = make_ctx(Family.SHELL)
    assert await run(SimulatedShellExecutor(), ctx) == {"exit_code": "0"}
    assert out(ctx).lines[0] == "+ hive -e 'select 1'\n"
    assert len(out(ctx).lines) == 1 + QUICK.output_lines


async def test_metadata_steps_report_exit_code_in_both_modes() -> None:
    for executor in (MetadataExecutor(simulated=True), MetadataExecutor(simulated=False)):
        ctx = make_ctx(Family.METADATA)
        assert await run(executor, ctx) == {"exit_code": "0"}
        assert out(ctx).lines[-1] == "A metadata step finished\n"


async def test_real_metadata_takes_no_time_even_with_a_long_profile() -> None:
    ctx = make_ctx(Family.METADATA, Profile(min_seconds=3600, max_seconds=3600))
    assert await run(MetadataExecutor(simulated=False), ctx) == {"exit_code": "0"}


async def test_time_scale_shortens_simulated_work() -> None:
    ctx = make_ctx(Family.SHELL, Profile(min_seconds=3600, max_seconds=3600), time_scale=1e6)
    assert await run(SimulatedShellExecutor(), ctx) == {"exit_code": "0"}


async def test_quiet_zero_duration_steps_write_nothing() -> None:
    quiet = Profile(min_seconds=0, max_seconds=0, output_lines=0)
    for family, executor in SIMPLE:
        ctx = make_ctx(family, quiet)
        result = await run(executor, ctx)
        assert result, family
        assert out(ctx).lines == [], family


# -- failure rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "executor"), SIMPLE)
async def test_always_fail(family: Family, executor: StepExecutor) -> None:
    profile = replace(QUICK, always_fail=True, failure_kind="HiveQueryFailed")
    with pytest.raises(StepFailure) as failure:
        await run(executor, make_ctx(family, profile, attempts=5))
    assert failure.value.kind == "HiveQueryFailed"


@pytest.mark.parametrize(("family", "executor"), SIMPLE)
async def test_fail_first_attempts(family: Family, executor: StepExecutor) -> None:
    profile = replace(QUICK, fail_first_attempts=1)
    with pytest.raises(StepFailure):
        await run(executor, make_ctx(family, profile, attempts=1))
    assert await run(executor, make_ctx(family, profile, attempts=2))


@pytest.mark.parametrize(("family", "executor"), SIMPLE)
async def test_failure_rate_zero_and_one(family: Family, executor: StepExecutor) -> None:
    for seed in range(20):
        assert await run(executor, make_ctx(family, replace(INSTANT, failure_rate=0), seed=seed))
        with pytest.raises(StepFailure):
            await run(executor, make_ctx(family, replace(INSTANT, failure_rate=1), seed=seed))


async def test_failure_rate_is_drawn_from_the_seeded_rng() -> None:
    profile = replace(INSTANT, failure_rate=0.5)

    async def outcomes() -> list[bool]:
        results = []
        for seed in range(40):
            try:
                await run(SimulatedShellExecutor(), make_ctx(Family.SHELL, profile, seed=seed))
                results.append(True)
            except StepFailure:
                results.append(False)
        return results

    first = await outcomes()
    assert first == await outcomes()
    assert True in first and False in first


async def test_shell_and_metadata_failures_carry_exit_code_one() -> None:
    for family, executor in SIMPLE[:2]:
        with pytest.raises(StepFailure) as failure:
            await run(executor, make_ctx(family, replace(QUICK, always_fail=True)))
        assert failure.value.kind == "SimulatedFailure"
        assert failure.value.info == {"exit_code": "1"}


# -- bulk load --------------------------------------------------------------------------------


async def test_simulated_bulkload_reports_counts() -> None:
    result = await run(SimulatedBulkLoadExecutor(), make_ctx(Family.BULKLOAD))
    assert set(result) == {"hfile_count", "bytes_loaded"}
    assert int(result["hfile_count"]) >= 1
    assert int(result["bytes_loaded"]) > 0


# -- MapReduce --------------------------------------------------------------------------------

MR = Profile(min_seconds=0.02, max_seconds=0.05, queue_min_seconds=0.03, queue_max_seconds=0.03)


async def test_mapreduce_reports_yarn_ids_at_once_and_its_counters_at_the_end() -> None:
    ctx = make_ctx(Family.MAPREDUCE, MR)
    result = await run(MapReduceExecutor(SimulatedYarn(cluster_ts=1_700_000_000_000)), ctx)
    first, wait_ms, lines_before = info(ctx).updates[0]
    assert first["yarn_application_id"] == "application_1700000000000_0001"
    assert first["mr_job_id"] == "job_1700000000000_0001"
    assert first["yarn_application_tracking_url"] == (
        "http://localhost:8088/proxy/application_1700000000000_0001/"
    )
    assert wait_ms is None  # still ACCEPTED
    assert lines_before <= 4  # before any progress line
    queued = [(u, w) for u, w, _ in info(ctx).updates if "mapReduceWaitTime" in u]
    assert queued == [({"mapReduceWaitTime": "30"}, 30)]
    for key in ("source_records_count", "source_records_size", "hdfs_bytes_written"):
        assert result[key].isdigit()
    assert MR.records_min <= int(result["source_records_count"]) <= MR.records_max


async def test_mapreduce_output_goes_through_the_yarn_phases() -> None:
    ctx = make_ctx(Family.MAPREDUCE, MR)
    await run(MapReduceExecutor(SimulatedYarn(cluster_ts=1)), ctx)
    text = out(ctx).text
    assert "Submitted application application_1_0001\n" in text
    assert "The url to track the job: http://localhost:8088/proxy/application_1_0001/\n" in text
    assert "Running job: job_1_0001\n" in text
    assert "Job job_1_0001 completed successfully\n" in text
    progress = [
        (int(m.group(1)), int(m.group(2)))
        for line in out(ctx).lines
        if (m := PROGRESS.search(line))
    ]
    assert progress[0] == (0, 0)
    assert progress[-1] == (100, 100)
    assert progress == sorted(progress)
    assert len(progress) >= 3


async def test_mapreduce_ids_count_up_on_one_cluster() -> None:
    executor = MapReduceExecutor(SimulatedYarn(cluster_ts=42))
    ids = []
    for _ in range(3):
        ctx = make_ctx(Family.MAPREDUCE)
        await run(executor, ctx)
        ids.append(info(ctx).merged["yarn_application_id"])
    assert ids == ["application_42_0001", "application_42_0002", "application_42_0003"]


async def test_mapreduce_without_queue_reports_zero_wait_with_the_ids() -> None:
    ctx = make_ctx(Family.MAPREDUCE, Profile(min_seconds=0, max_seconds=0))
    await run(MapReduceExecutor(), ctx)
    [(update, wait_ms, _)] = info(ctx).updates
    assert update["mapReduceWaitTime"] == "0"
    assert wait_ms == 0


async def test_mapreduce_is_reproducible_from_its_seed() -> None:
    def ctx() -> StepContext:
        return make_ctx(Family.MAPREDUCE, replace(MR, queue_max_seconds=0.05), seed=3)

    a, b = ctx(), ctx()
    result_a = await run(MapReduceExecutor(SimulatedYarn(cluster_ts=5)), a)
    result_b = await run(MapReduceExecutor(SimulatedYarn(cluster_ts=5)), b)
    assert result_a == result_b
    assert out(a).lines == out(b).lines


async def test_mapreduce_failure() -> None:
    ctx = make_ctx(Family.MAPREDUCE, replace(MR, always_fail=True))
    with pytest.raises(StepFailure) as failure:
        await run(MapReduceExecutor(), ctx)
    assert failure.value.kind == "MapReduceFailed"
    assert "failed with state FAILED" in out(ctx).lines[-1]
    assert "source_records_count" not in info(ctx).merged


async def cancel_when(ctx: StepContext, executor: MapReduceExecutor, needle: str) -> str:
    outcome = "not ended"

    async def go() -> None:
        nonlocal outcome
        try:
            await executor.run(ctx)
            outcome = "returned"
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            await out(ctx).wait_for(needle)
            tg.cancel_scope.cancel()
    return outcome


async def test_cancelling_mapreduce_kills_its_application() -> None:
    long = Profile(min_seconds=3600, max_seconds=3600)
    yarn = SimulatedYarn(cluster_ts=9)
    ctx = make_ctx(Family.MAPREDUCE, long)
    assert await cancel_when(ctx, MapReduceExecutor(yarn), " map 0% reduce 0%") == "cancelled"
    assert out(ctx).lines[-1] == "Killed application application_9_0001\n"
    assert yarn.is_killed("application_9_0001")
    assert "source_records_count" not in info(ctx).merged
    # a killed application is not re-attached to: the next attempt submits a new one
    again = make_ctx(Family.MAPREDUCE, previous_info=info(ctx).merged, attempts=2)
    await run(MapReduceExecutor(yarn), again)
    assert info(again).merged["yarn_application_id"] == "application_9_0002"


async def test_after_a_crash_mapreduce_reattaches_and_waits_only_for_the_rest() -> None:
    # the first engine submits an application that runs for 0.8 s, then "crashes"
    first = make_ctx(Family.MAPREDUCE, Profile(min_seconds=0.8, max_seconds=0.8))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(MapReduceExecutor(SimulatedYarn(cluster_ts=11)).run, first)
            await info(first).first.wait()
            tg.cancel_scope.cancel()
    submitted = info(first).updates[0][0]
    # the next engine's profile says an hour: only re-attaching can finish within the bound
    second = make_ctx(
        Family.MAPREDUCE,
        Profile(min_seconds=3600, max_seconds=3600),
        attempts=2,
        previous_info=submitted,
    )
    result = await run(MapReduceExecutor(SimulatedYarn(cluster_ts=12)), second)
    assert out(second).lines[0] == "Re-attached to application application_11_0001\n"
    assert info(second).merged["yarn_application_id"] == "application_11_0001"
    assert info(second).merged["mr_job_id"] == "job_11_0001"
    assert info(second).merged[EXPECTED_FINISH] == submitted[EXPECTED_FINISH]
    assert "source_records_count" in result


async def test_reattaching_to_a_queued_application_reports_its_whole_wait() -> None:
    now = SystemClock().now_ms()
    queued = {
        "startTime": str(now - 500),
        "yarn_application_id": "application_11_0007",
        "mr_job_id": "job_11_0007",
        "yarn_expected_start": str(now + 300),
        "yarn_expected_finish": str(now + 400),
    }
    ctx = make_ctx(Family.MAPREDUCE, previous_info=queued, attempts=2)
    await run(MapReduceExecutor(), ctx)
    assert info(ctx).updates[0][1] is None  # still ACCEPTED when re-attached
    assert ("800", 800) in [(u.get("mapReduceWaitTime"), w) for u, w, _ in info(ctx).updates]
    assert info(ctx).merged["yarn_application_id"] == "application_11_0007"


async def test_an_application_that_would_have_finished_is_not_reattached() -> None:
    old = {
        "yarn_application_id": "application_11_0001",
        "mr_job_id": "job_11_0001",
        "yarn_expected_start": "1",
        "yarn_expected_finish": "2",
    }
    ctx = make_ctx(Family.MAPREDUCE, previous_info=old, attempts=2)
    await run(MapReduceExecutor(SimulatedYarn(cluster_ts=12)), ctx)
    assert info(ctx).merged["yarn_application_id"] == "application_12_0001"
    assert "Re-attached" not in out(ctx).text


async def test_executors_registry_shares_one_cluster_per_engine() -> None:
    registry = Executors(SimulatedYarn(cluster_ts=77))
    spec = make_ctx(Family.MAPREDUCE).step.spec
    assert registry.executor_for(spec) is registry.executor_for(spec)
    ctx = make_ctx(Family.MAPREDUCE)
    await run(registry.executor_for(spec), ctx)
    assert info(ctx).merged["yarn_application_id"] == "application_77_0001"


# -- MapReduce: what a resumed attempt does with the recorded application (SPEC §2.3) ----------


def recorded_app(start_in_ms: int, finish_in_ms: int, status: str) -> dict[str, str]:
    """A step's info as an interrupted attempt left it (times relative to now)."""
    now = SystemClock().now_ms()
    return {
        "startTime": str(now - 1_000),
        "yarn_application_id": "application_13_0004",
        "mr_job_id": "job_13_0004",
        "yarn_submit_time": str(now - 1_000),
        "yarn_expected_start": str(now + start_in_ms),
        "yarn_expected_finish": str(now + finish_in_ms),
        "yarn_expected_final_status": status,
        "yarn_step_retry": "0",
        "mapReduceWaitTime": "200",
    }


async def test_the_record_is_durable_before_anything_is_reported_or_waited_for() -> None:
    ctx = make_ctx(Family.MAPREDUCE, MR)
    await run(MapReduceExecutor(SimulatedYarn(cluster_ts=3)), ctx)
    record, _, lines_before = info(ctx).updates[0]
    assert lines_before == 0  # not even "Submitted application" before it
    assert record["yarn_expected_final_status"] == "SUCCEEDED"
    assert record["yarn_step_retry"] == "0"
    assert int(record["yarn_submit_time"]) <= int(record["yarn_expected_start"])


async def test_an_application_that_ended_unwatched_ends_the_step_at_once_with_its_status() -> None:
    ended = recorded_app(-900, -100, "SUCCEEDED")
    hour = Profile(min_seconds=3600, max_seconds=3600)  # only ending at once fits the bound
    ctx = make_ctx(Family.MAPREDUCE, hour, attempts=2, previous_info=ended)
    result = await run(MapReduceExecutor(SimulatedYarn(cluster_ts=14)), ctx)
    assert info(ctx).merged["yarn_application_id"] == "application_13_0004"  # no new one
    assert info(ctx).merged["mapReduceWaitTime"] == "200"
    assert "Submitted application" not in out(ctx).text
    assert "application_13_0004 ended SUCCEEDED while no engine watched" in out(ctx).text
    assert "source_records_count" in result


async def test_a_failed_application_that_ended_unwatched_fails_the_step_at_once() -> None:
    ended = recorded_app(-900, -100, "FAILED")
    ctx = make_ctx(Family.MAPREDUCE, Profile(min_seconds=3600, max_seconds=3600), attempts=2,
                   previous_info=ended)  # fmt: skip
    with pytest.raises(StepFailure) as failure:
        await run(MapReduceExecutor(SimulatedYarn(cluster_ts=14)), ctx)
    assert "job_13_0004 failed with state FAILED" in str(failure.value)
    assert info(ctx).merged["yarn_application_id"] == "application_13_0004"


async def test_a_reattached_application_ends_as_recorded_whatever_the_profile_says() -> None:
    running = recorded_app(-200, 300, "FAILED")  # recorded failing; this profile never fails
    ctx = make_ctx(Family.MAPREDUCE, Profile(min_seconds=3600, max_seconds=3600), attempts=2,
                   previous_info=running)  # fmt: skip
    with pytest.raises(StepFailure):
        await run(MapReduceExecutor(SimulatedYarn(cluster_ts=14)), ctx)
    assert out(ctx).lines[0] == "Re-attached to application application_13_0004\n"


async def test_a_recorded_kill_or_an_earlier_retry_gets_a_new_application() -> None:
    killed = recorded_app(-200, 60_000, "KILLED")  # e.g. killed by a clean shutdown
    earlier = {**recorded_app(-200, 60_000, "SUCCEEDED"), "yarn_step_retry": "1"}
    for previous in (killed, earlier):
        ctx = make_ctx(Family.MAPREDUCE, attempts=2, previous_info=previous)
        await run(MapReduceExecutor(SimulatedYarn(cluster_ts=15)), ctx)
        assert info(ctx).merged["yarn_application_id"] == "application_15_0001"
        assert "Re-attached" not in out(ctx).text


async def test_a_cancelled_step_records_its_applications_kill() -> None:
    ctx = make_ctx(Family.MAPREDUCE, Profile(min_seconds=3600, max_seconds=3600))
    assert await cancel_when(ctx, MapReduceExecutor(), " map 0% reduce 0%") == "cancelled"
    assert info(ctx).updates[-1][0] == {"yarn_expected_final_status": "KILLED"}
