"""Running a scenario on the virtual clock: the engine, its streaming jobs, arrivals, operator.

One task walks the scenario's agenda (build arrivals, operator actions, streaming starts) in
time order, sleeping on the virtual clock in between; the operator's standing habit (resume
failed jobs after a while) adds timed tasks as jobs fail. The runner's own task drives the
clock to the end time and then stops recording, so the log ends exactly at the end of the run.

Determinism: ids come from a generator seeded with the run's seed, every random draw of the
engine is seeded, the clock only moves when every task is blocked, and store calls that leave
the event loop (SQLite) are serialised and settled (``engine.simulation.store``).
"""

from __future__ import annotations

import fnmatch
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from engine.clock import monotonic
from engine.clock.virtual import VirtualClock
from engine.core.errors import ConfigError, KjobsError
from engine.core.jobs import Job
from engine.core.segments import mergeable_range, refreshable_range
from engine.core.states import (
    OPERATION_ALLOWED_FROM,
    BuildType,
    Operation,
    State,
    StreamingAction,
)
from engine.facade import Engine
from engine.simulation.events_log import EventLog, JsonlSink, Recorder, Sink, header
from engine.simulation.plan import Plan, arrival_times, streaming_targets
from engine.simulation.scenario import Action, Arrivals
from engine.simulation.store import GuardedJobStore, GuardedStreamingStore, StoreGuard
from engine.simulation.summary import SummaryBuilder
from engine.simulation.timeline import TimelineBuilder
from engine.store import MEMORY, open_stores
from engine.store.ports import JobFilter, JobStore, StreamingStore
from engine.store.sqlite.db import SqliteDatabase
from engine.streaming.service import StreamingService

Progress = Callable[[int, int], None]  #: (virtual ms done, virtual ms in all)


@dataclass(frozen=True)
class SimulationResult:
    """What a run produced."""

    summary: dict[str, Any]
    events: int  #: records in the log
    rows: int  #: job rows in the timeline
    wall_s: float
    out_dir: Path | None = None
    sha256: str | None = None  #: of ``events.jsonl``

    @property
    def events_path(self) -> Path | None:
        """``events.jsonl``."""
        return self.out_dir / "events.jsonl" if self.out_dir else None

    @property
    def summary_path(self) -> Path | None:
        """``summary.json``."""
        return self.out_dir / "summary.json" if self.out_dir else None

    @property
    def timeline_path(self) -> Path | None:
        """``timeline.svg``."""
        return self.out_dir / "timeline.svg" if self.out_dir else None


def id_generator(seed: int) -> Callable[[], str]:
    """Seeded random uuids (version 4 layout): the same seed, the same ids."""
    rng = random.Random(f"{seed}:ids")
    return lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))


def simulate(
    plan: Plan,
    *,
    out_dir: Path | None = None,
    store_path: Path | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run ``plan`` to its end (blocking); write the outputs into ``out_dir`` when given."""
    runner = Runner(plan, out_dir=out_dir, store_path=store_path, progress=progress)
    return anyio.run(runner.run)


class Runner:
    """One simulated run of a plan."""

    def __init__(
        self,
        plan: Plan,
        *,
        out_dir: Path | None = None,
        store_path: Path | None = None,
        progress: Progress | None = None,
        extra_sinks: tuple[Sink, ...] = (),
    ) -> None:
        if store_path is not None and store_path.exists():
            raise ConfigError(
                str(store_path),
                "--store",
                "exists already; simulate writes a fresh store: name another path or delete it",
            )
        # a store it cannot use is refused (StoreRefused) before --out is touched
        spec = MEMORY if store_path is None else str(store_path)
        self._inner = open_stores(spec, plan.config.engine.max_output_bytes)
        self.plan = plan
        self.scenario = plan.scenario
        self.out_dir = out_dir
        self.store_path = store_path
        self.progress = progress
        self.clock = VirtualClock(self.scenario.start_ms)
        self.summary = SummaryBuilder()
        self.timeline = TimelineBuilder()
        self._jsonl: JsonlSink | None = None
        sinks: list[Sink] = [self.summary, self.timeline, *extra_sinks]
        if out_dir is not None:
            self._jsonl = _events_file(out_dir)
            sinks.append(self._jsonl)
        self.log = EventLog(self.clock.now_ms, self.scenario.start_ms, sinks)
        aliases = {f"{s.model_id}_{j}": s.alias for s in plan.streaming for j in ("build", "merge")}
        self.recorder = Recorder(self.log, self._job_state, aliases)
        self._cursor: dict[str, int] = {}  # cube -> start of the next BUILD's range
        self._resumes: dict[str, int] = {}  # job -> operator resumes so far
        self._tg: TaskGroup | None = None
        self._engine: Engine | None = None
        self._streaming: StreamingService | None = None

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> SimulationResult:
        """Run to the end time; return the summary (files written when ``out_dir`` is set)."""
        began = monotonic()
        job_store, streaming_store, db = self._stores()
        settings = self.plan.config.engine
        scenario = self.scenario
        start, end = scenario.start_ms, scenario.end_ms
        self.log.add("simulation", **header(scenario.name, self.plan.seed, start, end))
        engine = Engine(
            self.plan.config,
            store=job_store,
            clock=self.clock,
            new_id=id_generator(self.plan.seed),
            with_streaming=False,  # the run drives its own service on its guarded store
        )
        streaming = StreamingService(
            streaming_store,
            self.clock,
            settings.streaming,
            self.plan.streaming,
            seed=self.plan.seed,
            node_info=engine.instance,
            version=settings.version,
            on_change=self.recorder.streaming_changed,
        )
        try:
            async with engine, anyio.create_task_group() as tg:
                self._tg, self._engine, self._streaming = tg, engine, streaming
                await streaming_store.open()
                await streaming.start(tg)
                tg.start_soon(self._agenda, name="kjobs.simulation.agenda")
                await self.clock.run_until(self.scenario.end_ms, progress=self._progress)
                self.log.add("end")
                self.log.closed = True
                await streaming.shutdown()
                await streaming_store.close()
                tg.cancel_scope.cancel()
        except BaseException:
            if self._jsonl is not None:
                self._jsonl.close()
            raise
        finally:
            if db is not None:
                await db.close()
        return self._finish(monotonic() - began)

    def _stores(self) -> tuple[JobStore, StreamingStore, SqliteDatabase | None]:
        job_inner, stream_inner, db = self._inner
        guard = StoreGuard(self.clock, threaded=db is not None)
        return (
            GuardedJobStore(job_inner, guard, self.recorder),
            GuardedStreamingStore(stream_inner, guard, self.recorder),
            db,
        )

    def _progress(self, now_ms: int) -> None:
        if self.progress is not None:
            start = self.scenario.start_ms
            self.progress(now_ms - start, self.scenario.end_ms - start)

    def _finish(self, wall_s: float) -> SimulationResult:
        summary = self.summary.result()
        sha = self._jsonl.close() if self._jsonl is not None else None
        rows = len(self.timeline.batch) + len(self.timeline.stream)
        if self.out_dir is not None:
            text = json.dumps(summary, indent=2) + "\n"
            (self.out_dir / "summary.json").write_text(text, encoding="utf-8")
            rows = self.timeline.render(self.out_dir / "timeline.svg", self.scenario.end_ms)
        return SimulationResult(summary, self.log.count, rows, wall_s, self.out_dir, sha)

    # -- the agenda -----------------------------------------------------------------------------

    def _items(self) -> list[tuple[float, int, Callable[[], Awaitable[None]]]]:
        """(seconds from start, order, what) of everything the scenario schedules."""
        items: list[tuple[float, int, Callable[[], Awaitable[None]]]] = []
        scenario, order = self.scenario, 0
        for at, job_id in self.plan.started:
            items.append((at, order, _bind(self._streaming_action, StreamingAction.START, job_id)))
            order += 1
        for index, rule in enumerate(scenario.arrivals):
            for at in arrival_times(rule, index, scenario.duration_s, self.plan.seed):
                items.append((at, order, _bind(self._arrive, rule)))
                order += 1
        for action in scenario.actions:
            items.append((action.at_s, order, _bind(self._act, action)))
            order += 1
        items.sort(key=lambda item: (item[0], item[1]))
        return items

    async def _agenda(self) -> None:
        start = self.scenario.start_ms
        for at, _, what in self._items():
            wait_ms = start + round(at * 1000) - self.clock.now_ms()
            await self.clock.sleep(wait_ms / 1000)
            await what()

    # -- batch actions --------------------------------------------------------------------------

    async def _arrive(self, rule: Arrivals) -> None:
        engine = self._engine
        assert engine is not None
        cube = engine.catalog.cube(rule.cube).name
        span = await self._range(rule, cube)
        if span is None:
            self.recorder.action("SUBMIT", cube=cube, type=rule.build_type)
            self.recorder.refused("SUBMIT", _NOTHING[rule.build_type], cube=cube)
            return
        self.recorder.action("SUBMIT", cube=cube, type=rule.build_type, range=list(span))
        try:
            await engine.submit_build(
                cube, rule.build_type, span[0], span[1], priority_offset=rule.priority_offset
            )
        except KjobsError as exc:
            self.recorder.refused("SUBMIT", str(exc), cube=cube)

    async def _range(self, rule: Arrivals, cube: str) -> tuple[int, int] | None:
        if rule.build_type == BuildType.BUILD:
            start = self._cursor.get(cube, self.scenario.start_ms)
            end = start + round(rule.segment_s * 1000)
            self._cursor[cube] = end
            return start, end
        assert self._engine is not None
        segments = await self._engine.store.segments(cube)
        if rule.build_type == BuildType.REFRESH:
            return refreshable_range(segments)
        return mergeable_range(segments)

    async def _act(self, action: Action) -> None:
        if action.streaming is not None:
            targets = streaming_targets(self.plan.streaming, action.streaming, action.jobs)
            for job_id in targets:
                await self._streaming_action(action.action, job_id)
            return
        assert self._engine is not None and action.cube is not None
        operation = Operation(action.action)
        allowed = OPERATION_ALLOWED_FROM[operation]
        jobs = [
            j
            for j in await self._engine.list(JobFilter())
            if fnmatch.fnmatchcase(j.cube.lower(), action.cube.lower()) and j.state in allowed
        ]
        if not jobs:
            self.log.add(
                "skipped",
                action=action.action,
                cube=action.cube,
                reason=f"no job of {action.cube} can take {action.action} now",
            )
        for job in sorted(jobs, key=lambda j: (j.create_time, j.id)):
            await self._operate(operation, job.id, "scenario")

    async def _operate(self, operation: Operation, job_id: str, by: str) -> None:
        engine = self._engine
        assert engine is not None
        calls = {
            Operation.PAUSE: engine.pause,
            Operation.RESUME: engine.resume,
            Operation.DISCARD: engine.discard,
            Operation.RESTART: engine.restart,
        }
        self.recorder.action(operation.value, job=job_id, by=by)
        try:
            await calls[operation](job_id)
        except KjobsError as exc:
            self.recorder.refused(operation.value, str(exc), job=job_id)

    async def _streaming_action(self, action: str, job_id: str) -> None:
        assert self._streaming is not None
        self.recorder.action(action, job=job_id, by="scenario")
        try:
            await self._streaming.apply(action, [job_id])
        except KjobsError as exc:
            self.recorder.refused(action, str(exc), job=job_id)

    # -- the operator's habit -----------------------------------------------------------------

    def _job_state(self, job: Job, old: State | None) -> None:
        delay = self.scenario.operator.resume_errors_after_s
        if job.state is not State.ERROR or delay is None or self._tg is None:
            return
        done = self._resumes.get(job.id, 0)
        if done >= self.scenario.operator.max_resumes:
            return
        self._resumes[job.id] = done + 1
        self._tg.start_soon(self._resume_later, job.id, delay, name=f"kjobs.simulation.{job.id}")

    async def _resume_later(self, job_id: str, delay_s: float) -> None:
        await self.clock.sleep(delay_s)
        if self.log.closed or self._engine is None:
            return
        job = await self._engine.get(job_id)
        if job.state is State.ERROR:
            await self._operate(Operation.RESUME, job_id, "operator")


_NOTHING: dict[str, str] = {
    BuildType.MERGE: "nothing to merge: no two adjacent READY segments",
    BuildType.REFRESH: "nothing to refresh: no READY segment",
    BuildType.BUILD: "",
}


def _bind(fn: Callable[..., Awaitable[None]], *args: Any) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        await fn(*args)

    return call


__all__ = ["Runner", "SimulationResult", "id_generator", "simulate"]


def _events_file(out_dir: Path) -> JsonlSink:
    """``OUT/events.jsonl``, opened for writing; a folder kjobs cannot write is one line."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return JsonlSink(out_dir / "events.jsonl")
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(
            str(out_dir), "--out", f"{reason}: name a folder kjobs can write (--out DIR)"
        ) from exc
