"""Random operation sequences on the real engine + SQLite store agree with the pure core.

Each job runs real shell steps gated by files: a step waits until the test drops an ``ok`` or
``fail`` file for it, so the test decides when a step succeeds or fails. After every operation
the pure model (``core.operations`` plus "a READY job gets a slot at once") predicts the job's
state, its steps' states and attempt counts; the engine must reach exactly that.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.batch.writer import Decide
from engine.config import load_config
from engine.core import operations as ops
from engine.core.errors import IllegalTransition, OperationNotAllowed
from engine.core.jobs import Family, Job, Mode, StepSpec
from engine.core.states import State
from engine.facade import Engine

STEPS = 3
GATE = (
    "while :; do "
    "if [ -e {d}/ok ]; then rm -f {d}/ok; exit 0; fi; "
    "if [ -e {d}/fail ]; then rm -f {d}/fail; exit 1; fi; "
    "sleep 0.005; done"
)

Snapshot = tuple[State, tuple[tuple[State, int], ...]]

OPS = st.sampled_from(
    ["submit", "succeed", "fail", "pause", "resume", "discard", "rollback", "restart", "reopen"]
)


def _snapshot(job: Job) -> Snapshot:
    return job.state, tuple((s.state, s.attempts) for s in job.steps)


class World:
    """The engine under test, the model beside it, and the gates of the running steps."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = load_config(
            overrides={
                "kjobs.store": str(root / "agree.sqlite"),
                "kjobs.workdir": str(root / "work"),
                "kjobs.job.kill-grace-period": 0.2,
            }
        )
        self.model: dict[str, Job] = {}
        self.gates: dict[str, str] = {}  # job id -> its gate folder name
        self.now = 0

    def gate_dir(self, name: str, seq: int) -> Path:
        """Where the test drops ``ok``/``fail`` for step ``seq`` of the job named ``name``."""
        path = self.root / "gates" / name / str(seq)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def specs(self, name: str) -> list[StepSpec]:
        return [
            StepSpec(
                f"gate {i}",
                "SHELL_CMD",
                Family.SHELL,
                Mode.REAL,
                exec_cmd=GATE.format(d=self.gate_dir(name, i)),
            )
            for i in range(STEPS)
        ]

    def model_apply(self, job_id: str, decide: Decide) -> bool:
        try:
            job = decide(self.model[job_id]).job
        except (OperationNotAllowed, IllegalTransition, IndexError):
            return False
        if job.state is State.READY:  # the scheduler hands it a free slot at once
            job = ops.start_next_step(job, self.now, "model").job
        self.model[job_id] = job
        return True

    async def settle(self, engine: Engine, job_id: str) -> None:
        """Wait (bounded) until the engine shows what the model predicts."""
        want = _snapshot(self.model[job_id])
        with anyio.move_on_after(10):
            async with engine.subscribe() as events:
                if _snapshot(await engine.get(job_id)) == want:
                    return
                async for event in events:
                    if event.job_id == job_id and _snapshot(await engine.get(job_id)) == want:
                        return
        assert _snapshot(await engine.get(job_id)) == want


async def _play(root: Path, script: list[tuple[str, int, int]]) -> None:
    world = World(root)
    engine_cm = Engine(world.config)
    engine = await engine_cm.__aenter__()
    try:
        for op, index, seq in script:
            ids = list(world.model)
            if op == "submit" or not ids:
                name = f"j{len(ids)}"
                job = await engine.submit_job(world.specs(name), name="agree")
                world.gates[job.id] = name
                world.model[job.id] = ops.start_next_step(job, 0, "model").job
                await world.settle(engine, job.id)
                continue
            job_id = ids[index % len(ids)]
            model_job = world.model[job_id]
            running = model_job.first_step_in(State.RUNNING)
            if op in ("succeed", "fail"):
                if running is None:
                    continue
                gate = world.gate_dir(world.gates[job_id], running.sequence)
                (gate / ("ok" if op == "succeed" else "fail")).touch()
                decide = (
                    (lambda j, s=running.sequence: ops.step_succeeded(j, s, {}, 0, "model"))
                    if op == "succeed"
                    else (lambda j, s=running.sequence: ops.step_failed(j, s, {}, 0))
                )
                world.model_apply(job_id, decide)
            elif op == "reopen":
                await engine_cm.__aexit__(None, None, None)
                for jid in list(world.model):
                    world.model_apply(jid, lambda j: ops.recover(j, 0))
                engine_cm = Engine(world.config)
                engine = await engine_cm.__aenter__()
            else:
                await _operate(engine, world, op, job_id, seq)
            for jid in world.model:
                await world.settle(engine, jid)
    finally:
        await engine_cm.__aexit__(None, None, None)


async def _operate(engine: Engine, world: World, op: str, job_id: str, seq: int) -> None:
    decisions = {
        "pause": (engine.pause, lambda j: ops.pause(j, 0)),
        "resume": (engine.resume, lambda j: ops.resume(j, 0)),
        "discard": (engine.discard, lambda j: ops.discard(j, 0)),
        "restart": (engine.restart, lambda j: ops.restart(j, 0)),
    }
    if op == "rollback":
        expected = world.model_apply(job_id, lambda j: ops.rollback(j, seq, 0))
        call = engine.rollback(job_id, f"{job_id}-{seq:02d}")
    else:
        method, decide = decisions[op]
        expected = world.model_apply(job_id, decide)
        call = method(job_id)
    try:
        await call
        accepted = True
    except OperationNotAllowed:
        accepted = False
    assert accepted == expected, (op, job_id)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(st.tuples(OPS, st.integers(0, 3), st.integers(0, STEPS - 1)), min_size=1, max_size=14)
)
def test_engine_on_sqlite_agrees_with_pure_core(script: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(_play, Path(tmp), script)
