"""``engine.testing``: an engine on a virtual clock in one call, and the helpers around it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings

from engine.core.errors import InvalidRequest
from engine.core.jobs import Family, Mode, StepSpec
from engine.core.states import State, can_transition
from engine.simulation import prepare, simulate
from engine.simulation.scenario import Scenario
from engine.testing import Op, operations, scenarios, virtual_engine

HOUR_MS = 3_600_000


async def test_a_build_runs_minutes_of_simulated_time_at_once() -> None:
    async with virtual_engine(seed=1) as sim:
        start = sim.now_ms()
        job = await sim.engine.submit_build("kylin_sales_cube", "BUILD", 0, HOUR_MS)
        done = await sim.wait_for_state(job.id, {State.SUCCEED, State.ERROR}, within=3600)
        assert done.state is State.SUCCEED
        assert done.start_time == start
        assert 5 * 60_000 < done.end_time - start < 30 * 60_000  # SPEC §7: about ten minutes
        assert done.duration_s(sim.now_ms()) == (done.end_time - done.start_time) // 1000


async def test_advance_shows_the_state_at_an_exact_virtual_time() -> None:
    async with virtual_engine(seed=2) as sim:
        job = await sim.engine.submit_build("slow_cube", "BUILD", 0, HOUR_MS)
        await sim.advance(30 * 60)
        running = await sim.engine.get(job.id)
        assert running.state is State.RUNNING and sim.job(job.id) == running
        paused = await sim.engine.pause(job.id)
        assert paused.state is State.STOPPED and paused.end_time == sim.now_ms()
        await sim.advance(3600)
        assert (await sim.engine.get(job.id)).state is State.STOPPED  # nothing moves it


async def test_wait_for_state_times_out_in_virtual_time() -> None:
    async with virtual_engine() as sim:
        job = await sim.engine.submit_build("slow_cube", "BUILD", 0, HOUR_MS)
        with pytest.raises(TimeoutError):
            await sim.wait_for_state(job.id, {State.SUCCEED}, within=60)
        assert sim.now_ms() - job.create_time == 60_000


async def test_flaky_cube_errors_then_resumes_to_success_with_legal_transitions() -> None:
    async with virtual_engine(seed=3) as sim:
        job = await sim.engine.submit_build("flaky_cube", "BUILD", 0, HOUR_MS)
        failed = await sim.wait_for_state(job.id, {State.ERROR}, within=3600)
        step = failed.first_step_in(State.ERROR)
        assert step is not None and step.name == "Extract Fact Table Distinct Columns"
        await sim.engine.resume(job.id)
        done = await sim.wait_for_state(job.id, {State.SUCCEED}, within=3600)
        assert done.state is State.SUCCEED
    assert sim.transitions and all(can_transition(t.old, t.new) for t in sim.transitions)
    job_moves = [(t.old, t.new) for t in sim.transitions if t.step is None]
    assert job_moves == [
        (State.READY, State.RUNNING),
        (State.RUNNING, State.ERROR),
        (State.ERROR, State.READY),
        (State.READY, State.RUNNING),
        (State.RUNNING, State.SUCCEED),
    ]


async def test_autojump_lets_plain_engine_waits_finish() -> None:
    async with virtual_engine(seed=4, autojump=True) as sim:
        job = await sim.engine.submit_build("kylin_sales_cube", "BUILD", 0, HOUR_MS)
        with anyio.fail_after(30):  # wall-clock bound; minutes pass on the virtual clock
            done = await sim.engine.wait_for(job.id, {State.SUCCEED})
        assert done.end_time - done.start_time > 60_000


async def test_real_commands_are_refused_on_a_virtual_clock() -> None:
    async with virtual_engine() as sim:
        with pytest.raises(InvalidRequest, match="real commands"):
            await sim.engine.submit_build("shell_demo_cube")
        real = StepSpec("echo", "SHELL_CMD", Family.SHELL, Mode.REAL, exec_cmd="echo hi")
        with pytest.raises(InvalidRequest, match="real commands"):
            await sim.engine.submit_job([real])
        assert await sim.engine.list() == []


async def test_a_sqlite_store_runs_the_same_as_memory(tmp_path: Path) -> None:
    async def history(store: str) -> list[tuple[int, str, int | None, State]]:
        async with virtual_engine(seed=5, store=store) as sim:
            for i in range(3):
                await sim.engine.submit_build(
                    "kylin_sales_cube", "BUILD", i * HOUR_MS, (i + 1) * HOUR_MS
                )
            await sim.advance(3 * 3600)
            return [(t.time, t.job_id, t.step, t.new) for t in sim.transitions]

    memory = await history(":memory:")
    assert memory == await history(str(tmp_path / "kit.sqlite"))
    assert len(memory) > 100


async def test_apply_skips_operations_the_state_does_not_allow() -> None:
    async with virtual_engine() as sim:
        job = await sim.apply(Op("submit", cube="kylin_sales_cube"))
        assert job is not None and sim.submitted == [job.id]
        assert await sim.apply(Op("resume", target=0)) is None  # READY: not allowed, skipped
        paused = await sim.apply(Op("pause", target=7))
        assert paused is not None and paused.state is State.STOPPED
        await sim.apply(Op("advance", seconds=60))
        assert sim.now_ms() - job.create_time == 60_000


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(max_hours=1.0))
def test_generated_scenarios_run_and_stay_legal(scenario: Scenario) -> None:
    result = simulate(prepare(scenario))
    assert result.summary["jobs"]["submitted"] >= 1
    statuses = result.summary["jobs"]["by_status"]
    assert sum(statuses.values()) == result.summary["jobs"]["submitted"]


@settings(max_examples=5, deadline=None)
@given(ops=operations(max_size=6))
def test_generated_operations_start_with_a_submission(ops: list[Op]) -> None:
    assert ops[0].kind == "submit" and len(ops) <= 6
