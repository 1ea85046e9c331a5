"""A kit for testing code that uses kjobs: an engine on a virtual clock, in one call.

::

    from engine.testing import virtual_engine
    from engine import State

    async def test_a_build_finishes():
        async with virtual_engine(seed=1) as sim:
            job = await sim.engine.submit_build("kylin_sales_cube", "BUILD", 0, 3_600_000)
            done = await sim.wait_for_state(job.id, {State.SUCCEED}, within=3600)
            assert done.state is State.SUCCEED        # ~10 simulated minutes, milliseconds of wall

- ``virtual_engine(...)`` opens an ``Engine`` on a ``VirtualClock`` and an in-memory store (the
  shipped config unless given one; the environment is ignored) and yields a ``SimEngine``.
- Time moves only when the test says so: ``await sim.advance(seconds)``, ``await
  sim.run_until(epoch_ms)``, ``await sim.wait_for_state(job_id, states, within=seconds)``; or
  ``virtual_engine(autojump=True)`` jumps whenever everything waits, so plain
  ``await sim.engine.wait_for(...)`` works.
- ``sim.transitions`` lists every state change of every job and step, as stored, in order:
  property tests check them against the table of SPEC §1 (``can_transition``).
- Steps that run real commands are refused at submission (``InvalidRequest``): real commands
  take real time, which a virtual clock cannot stand still for.
- Hypothesis strategies: ``operations()`` (sequences of submit / pause / resume / discard /
  restart / advance, applied with ``sim.apply``) and ``scenarios()`` (whole scenarios for
  ``engine.simulation``). Hypothesis runs sync tests: call ``anyio.run`` inside the test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine.clock.virtual import DEFAULT_START_MS, VirtualClock
from engine.config import Config, load_config
from engine.core.errors import InvalidRequest, NotAllowed
from engine.core.jobs import Job, Mode, StepSpec
from engine.core.states import BuildType, State
from engine.facade import Engine
from engine.simulation.plan import real_steps
from engine.simulation.runner import id_generator
from engine.simulation.scenario import (
    BATCH_ACTIONS,
    Action,
    Arrivals,
    FailureRule,
    Operator,
    Scenario,
)
from engine.simulation.store import GuardedJobStore, StoreGuard
from engine.store import open_store

if TYPE_CHECKING:  # Hypothesis is a test dependency: imported only by the strategies
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "Op",
    "SimEngine",
    "Transition",
    "VirtualTimeEngine",
    "operations",
    "scenarios",
    "virtual_engine",
]

#: cubes of the shipped catalog that run simulated steps only
SAMPLE_CUBES = ("kylin_sales_cube", "flaky_cube", "broken_cube", "slow_cube")
OpKind = Literal["submit", "pause", "resume", "discard", "restart", "advance"]


@dataclass(frozen=True, slots=True)
class Transition:
    """One stored state change: of a job (``step`` None) or of one of its steps."""

    time: int  #: virtual epoch ms
    job_id: str
    step: int | None
    old: State
    new: State


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of a generated sequence (see ``operations``)."""

    kind: OpKind
    cube: str = "kylin_sales_cube"  #: submit: which cube
    target: int = 0  #: pause/resume/discard/restart: index into the jobs submitted so far
    seconds: float = 0.0  #: advance: how far


class VirtualTimeEngine(Engine):
    """An ``Engine`` that refuses steps running real commands (for a virtual clock)."""

    async def submit_build(
        self,
        cube: str,
        build_type: str = BuildType.BUILD,
        start: int = 0,
        end: int = 0,
        **kwargs: Any,
    ) -> Job:
        """``Engine.submit_build``, refused for a cube whose template runs real commands."""
        real = real_steps(self.catalog.template_for(cube, build_type))
        if real:
            raise InvalidRequest(
                f"Cube '{cube}' runs real commands ({', '.join(real)}); on a virtual clock only "
                "simulated steps can run"
            )
        return await super().submit_build(cube, build_type, start, end, **kwargs)

    async def submit_job(self, steps: Collection[StepSpec], **kwargs: Any) -> Job:
        """``Engine.submit_job``, refused when a step runs a real command."""
        real = [s.name for s in steps if s.mode is Mode.REAL]
        if real:
            raise InvalidRequest(
                f"Steps {', '.join(real)} run real commands; on a virtual clock only simulated "
                "steps can run"
            )
        return await super().submit_job(steps, **kwargs)


class _Watcher:
    """Records stored state changes (an observer of the guarded store)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.transitions: list[Transition] = []

    def job_saved(self, job: Job) -> None:
        old = self.jobs.get(job.id)
        self.jobs[job.id] = job
        if old is None:
            return
        now = self.clock.now_ms()
        for before, after in zip(old.steps, job.steps, strict=True):
            if before is not after and before.state is not after.state:
                self.transitions.append(
                    Transition(now, job.id, after.sequence, before.state, after.state)
                )
        if old.state is not job.state:
            self.transitions.append(Transition(now, job.id, None, old.state, job.state))

    def job_deleted(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    def job_swept(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)


class SimEngine:
    """An entered engine on a virtual clock, with helpers to move time (see module doc)."""

    def __init__(self, engine: Engine, clock: VirtualClock, watcher: _Watcher) -> None:
        self.engine = engine
        self.clock = clock
        self._watcher = watcher
        self.submitted: list[str] = []  #: job ids submitted through ``apply``, in order
        self._builds: dict[str, int] = {}

    @property
    def transitions(self) -> list[Transition]:
        """Every stored state change so far, in order."""
        return self._watcher.transitions

    def job(self, job_id: str) -> Job:
        """The newest stored version of a job, without awaiting (``KeyError`` if unknown)."""
        return self._watcher.jobs[job_id]

    def now_ms(self) -> int:
        """Virtual time, epoch ms."""
        return self.clock.now_ms()

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (everything due meanwhile runs, in order)."""
        await self.clock.advance(seconds)

    async def run_until(self, epoch_ms: int) -> None:
        """Let virtual time pass up to ``epoch_ms``."""
        await self.clock.run_until(epoch_ms)

    async def settle(self) -> None:
        """Run everything that can run now, without moving time."""
        await self.clock.wait_idle()

    async def wait_for_state(
        self, job_id: str, states: Collection[State], *, within: float = 86_400.0
    ) -> Job:
        """Move time until the job is (or has passed through) one of ``states``.

        ``TimeoutError`` when ``within`` seconds of virtual time pass first.
        """
        wanted = frozenset(states)
        seen = len(self.transitions)

        def reached() -> bool:
            job = self._watcher.jobs.get(job_id)
            if job is not None and job.state in wanted:
                return True
            return any(
                t.job_id == job_id and t.step is None and t.new in wanted
                for t in self.transitions[seen:]
            )

        await self.clock.run_until_true(reached, within=within)
        return await self.engine.get(job_id)

    async def apply(self, op: Op) -> Job | None:
        """Perform a generated operation; one the job's state does not allow is skipped."""
        if op.kind == "advance":
            await self.advance(op.seconds)
            return None
        if op.kind == "submit":
            job = await self.engine.submit_build(
                op.cube, BuildType.BUILD, *self._next_range(op.cube)
            )
            self.submitted.append(job.id)
            return job
        if not self.submitted:
            return None
        job_id = self.submitted[op.target % len(self.submitted)]
        action = {
            "pause": self.engine.pause,
            "resume": self.engine.resume,
            "discard": self.engine.discard,
            "restart": self.engine.restart,
        }[op.kind]
        try:
            return await action(job_id)
        except NotAllowed:
            return None

    def _next_range(self, cube: str) -> tuple[int, int]:
        """The hour of data after the previous ``apply`` build of the cube."""
        count = self._builds.get(cube, 0)
        self._builds[cube] = count + 1
        start = DEFAULT_START_MS + count * 3_600_000
        return start, start + 3_600_000


@asynccontextmanager
async def virtual_engine(
    config: Config | None = None,
    *,
    seed: int = 0,
    start_ms: int = DEFAULT_START_MS,
    overrides: Mapping[str, object] | None = None,
    store: str | Path = ":memory:",
    autojump: bool = False,
) -> AsyncIterator[SimEngine]:
    """An entered ``VirtualTimeEngine`` on a ``VirtualClock`` (see module doc).

    ``config`` defaults to the shipped config with ``overrides`` (dotted keys) applied;
    ``store`` may name a SQLite file instead of the in-memory store (calls are then serialised
    and settled so that runs stay deterministic).
    """
    if config is None:
        config = load_config(
            environ={},
            overrides={
                "kjobs.node-id": "kjobs-test",
                **(overrides or {}),
                "kjobs.time-scale": 1.0,
                "kjobs.seed": seed,
            },
        )
    settings = dataclasses.replace(config.engine, time_scale=1.0, seed=seed)
    config = dataclasses.replace(config, engine=settings)
    clock = VirtualClock(start_ms)
    watcher = _Watcher(clock)
    inner = open_store(str(store), config.engine.max_output_bytes)
    guarded = GuardedJobStore(inner, StoreGuard(clock, threaded=str(store) != ":memory:"), watcher)
    engine = VirtualTimeEngine(config, store=guarded, clock=clock, new_id=id_generator(seed))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(engine)
        if autojump:
            await stack.enter_async_context(clock.autojump())
        yield SimEngine(engine, clock, watcher)


# -- Hypothesis strategies ----------------------------------------------------------------------


def operations(
    cubes: Sequence[str] = ("kylin_sales_cube", "flaky_cube", "broken_cube"),
    *,
    max_size: int = 12,
    max_advance_s: float = 1_800.0,
) -> SearchStrategy[list[Op]]:
    """Sequences of operations on jobs of ``cubes``, starting with a submission."""
    from hypothesis import strategies as st

    submit = st.builds(Op, kind=st.just("submit"), cube=st.sampled_from(list(cubes)))
    act = st.builds(
        Op,
        kind=st.sampled_from(["pause", "resume", "discard", "restart"]),
        target=st.integers(min_value=0, max_value=20),
    )
    advance = st.builds(
        Op, kind=st.just("advance"), seconds=st.floats(min_value=0.0, max_value=max_advance_s)
    )
    rest = st.lists(st.one_of(submit, act, advance), max_size=max_size - 1)
    return st.tuples(submit, rest).map(lambda pair: [pair[0], *pair[1]])


def scenarios(
    cubes: Sequence[str] = SAMPLE_CUBES, *, max_hours: float = 3.0
) -> SearchStrategy[Scenario]:
    """Whole scenarios (arrivals, failures, operator actions) over ``cubes``."""
    from hypothesis import strategies as st

    cube = st.sampled_from(list(cubes))
    minutes = st.integers(min_value=0, max_value=int(max_hours * 60) - 1)
    arrival = st.builds(
        Arrivals,
        key=st.just("arrivals"),
        cube=cube,
        at=st.lists(minutes.map(lambda m: m * 60.0), min_size=1, max_size=4).map(
            lambda ts: tuple(sorted(ts))
        ),
        segment_s=st.sampled_from([900.0, 3_600.0]),
    )
    failure = st.builds(
        FailureRule,
        key=st.just("failures"),
        step=st.sampled_from(["Build Base Cuboid", "Create HTable", "Build N-Dimension Cuboid*"]),
        probability=st.floats(min_value=0.0, max_value=1.0),
        cube=cube,
    )
    action = st.builds(
        Action,
        key=st.just("actions"),
        at_s=minutes.map(lambda m: m * 60.0),
        action=st.sampled_from(BATCH_ACTIONS),
        cube=cube,
    )
    operator = st.builds(
        Operator,
        resume_errors_after_s=st.one_of(st.none(), st.sampled_from([300.0, 900.0])),
        max_resumes=st.integers(min_value=0, max_value=3),
    )
    return st.builds(
        Scenario,
        name=st.just("generated"),
        file=st.just("<hypothesis>"),
        duration_s=st.just(max_hours * 3_600.0),
        seed=st.integers(min_value=0, max_value=2**31),
        arrivals=st.lists(arrival, min_size=1, max_size=4).map(tuple),
        failures=st.lists(failure, max_size=2).map(tuple),
        actions=st.lists(action, max_size=4).map(lambda a: tuple(sorted(a, key=_at))),
        operator=operator,
    )


def _at(action: Action) -> float:
    return action.at_s
