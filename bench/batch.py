"""Batch engine figures: durable step throughput, step-to-step overhead, submit latency.

All of them run zero-duration simulated steps (``NOOP_PROFILE``) through a real ``Engine`` on a
SQLite file in a temporary folder, with the store's default durability (WAL,
``synchronous=NORMAL``) unless a store is passed in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from bench.common import (
    StepTimingClock,
    bench_config,
    noop_steps,
    percentile,
    wait_all_final,
    with_profile,
)
from engine.clock import monotonic
from engine.core.states import State
from engine.facade import Engine
from engine.store.ports import JobStore
from engine.store.sqlite.jobs import SqliteJobStore
from steps.base import Profile


async def durable_throughput(
    workdir: Path,
    jobs: int = 2000,
    steps: int = 10,
    concurrency: int = 100,
    store: JobStore | None = None,
    profile: Profile | None = None,
) -> dict[str, Any]:
    """``jobs`` × ``steps`` noop steps (or steps of ``profile``), ``concurrency`` jobs at once.

    The timer runs from the first submission (all jobs are submitted at once, by concurrent
    tasks) until every job has SUCCEEDed durably.
    """
    config = bench_config(workdir, **{"kylin.job.max-concurrent-jobs": concurrency})
    if profile is not None:
        config = with_profile(config, profile)
    specs = noop_steps(steps) if profile is None else noop_steps(steps, profile=profile.name)
    async with Engine(config, store=store) as engine:
        started = monotonic()
        async with anyio.create_task_group() as tg:
            for _ in range(jobs):
                tg.start_soon(_submit, engine, specs)
        counts = await wait_all_final(engine, jobs)
        wall = monotonic() - started
        commits = _commits(engine.store)
    succeeded = counts.get(State.SUCCEED, 0)
    return {
        "steps_per_s": jobs * steps / wall,
        "wall_s": wall,
        "jobs": jobs,
        "steps": steps,
        "concurrency": concurrency,
        "succeeded": succeeded,
        "commits": commits,
    }


async def _submit(engine: Engine, specs: list[Any]) -> None:
    await engine.submit_job(specs, name="bench")


def _commits(store: JobStore) -> int | None:
    return store.db.committed_batches if isinstance(store, SqliteJobStore) else None


async def step_latency(
    workdir: Path, jobs: int = 200, steps: int = 10, warmup: int = 20
) -> dict[str, Any]:
    """One job at a time on an idle engine: step-to-step overhead and submit-to-RUNNING.

    Method: ``StepTimingClock`` notes, with ``time.perf_counter``, when each step's executor
    enters and leaves its one ``clock.sleep(0)``. The overhead of a step boundary is from
    step N's exit to step N+1's entry: it covers the executor's return, the decision, the
    durable write of "N SUCCEED + N+1 RUNNING" (committed before the scheduler goes on) and
    building N+1's context. Submit-to-RUNNING is from just before ``submit_job`` to the first
    step's entry (its RUNNING state is committed before the executor is called). After each
    job the bench waits for its SUCCEED to be stored, so the next job starts on an idle engine.
    """
    clock = StepTimingClock()
    config = bench_config(workdir)
    specs = noop_steps(steps)
    gaps_us: list[float] = []
    submit_ms: list[float] = []
    async with Engine(config, clock=clock) as engine:
        for index in range(warmup + jobs):
            reached = clock.expect(steps)
            started = monotonic()
            job = await engine.submit_job(specs, name="bench")
            await reached.wait()
            entered, left = list(clock.entered), list(clock.left)
            # polled, not subscribed: a subscriber would add event fan-out to what is measured
            while (await engine.get(job.id)).state is not State.SUCCEED:  # noqa: ASYNC110
                await anyio.sleep(0.0002)
            if index < warmup:
                continue
            submit_ms.append((entered[0] - started) * 1000.0)
            gaps_us.extend((entered[k] - left[k - 1]) * 1e6 for k in range(1, steps))
    return {
        "step_overhead_us_p50": percentile(gaps_us, 50),
        "step_overhead_us_p99": percentile(gaps_us, 99),
        "step_overhead_us_max": max(gaps_us),
        "submit_to_running_ms_p50": percentile(submit_ms, 50),
        "submit_to_running_ms_p99": percentile(submit_ms, 99),
        "samples_overhead": len(gaps_us),
        "samples_submit": len(submit_ms),
    }
