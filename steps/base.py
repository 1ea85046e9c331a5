"""The executor port: every step family runs behind ``StepExecutor``.

An executor is given a ``StepContext`` and either returns a ``StepResult`` (success) or raises
``StepFailure`` (failure; its ``kind`` is matched against the retry policy). Cancellation is
anyio cancellation: when the engine interrupts a step (pause, discard, shutdown) the executor's
task is cancelled and it must clean up inside a shielded scope (kill its process group, kill
its simulated YARN application) before re-raising.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.clock import Clock
from engine.core.jobs import Step


class OutputSink(Protocol):
    """Where an executor writes its output, line by line, as it happens."""

    def write(self, text: str) -> None:
        """Append ``text`` (usually one line, with its newline) to the step's live output."""


class InfoSink(Protocol):
    """Where an executor reports info while it runs (made durable before it returns)."""

    async def update(self, info: Mapping[str, str], wait_time_ms: int | None = None) -> None:
        """Merge ``info`` into the step's info; ``wait_time_ms`` sets its queue wait."""


class ProcessRecorder(Protocol):
    """Where a real step reports the process group it starts (the engine records it in the
    store, so that a later incarnation can kill it if the engine dies: no orphans)."""

    async def started(self, pid: int) -> None:
        """The group led by ``pid`` exists and its command has not started yet; durable when
        this returns (the executor starts the command only then)."""

    async def ended(self, pid: int) -> None:
        """The group is gone (ended or killed): its record goes."""


class LazyRandom(random.Random):
    """A ``random.Random(seed)`` that is seeded on first use: most steps never draw.

    Seeding from a string hashes it and fills the generator's whole state, which costs more
    than the rest of a zero-duration step. Every draw goes through ``random()`` and
    ``getrandbits()`` (``random.Random``'s own methods are built on these two), so the
    numbers are exactly those of ``random.Random(seed)``.
    """

    def __init__(self, seed: str) -> None:
        self._seed_value: Any = seed
        self._real: random.Random | None = None
        self.gauss_next = None

    def seed(self, a: Any = None, version: int = 2) -> None:
        """Re-seed (lazily)."""
        self._seed_value, self._real = a, None

    def _generator(self) -> random.Random:
        real = self._real
        if real is None:
            real = self._real = random.Random(self._seed_value)
        return real

    def random(self) -> float:
        """The next float in [0, 1)."""
        return self._generator().random()

    def getrandbits(self, k: int, /) -> int:
        """An int with ``k`` random bits."""
        return self._generator().getrandbits(k)

    def getstate(self) -> tuple[Any, ...]:
        """The generator's state."""
        return self._generator().getstate()

    def setstate(self, state: tuple[Any, ...]) -> None:
        """Restore a state from ``getstate``."""
        self._generator().setstate(state)


@dataclass(frozen=True)
class Profile:
    """Simulated behaviour of a step (config ``profiles.toml``)."""

    name: str = "default"
    min_seconds: float = 1.0
    max_seconds: float = 10.0
    queue_min_seconds: float = 0.0  #: MR: time ACCEPTED in the YARN queue
    queue_max_seconds: float = 0.0
    #: probability in [0, 1] that an attempt fails
    failure_rate: float = 0.0
    #: fail the first N attempts of each job's run of this step, then succeed
    fail_first_attempts: int = 0
    always_fail: bool = False
    failure_kind: str = "SimulatedFailure"
    output_lines: int = 3  #: lines of chatter besides the phase lines
    records_min: int = 1_000
    records_max: int = 1_000_000


@dataclass
class StepContext:
    """Everything an executor may use; nothing else reaches it."""

    job_id: str
    step: Step
    params: Mapping[str, str]  #: substitution parameters (cube, segment, dates, workdir, ...)
    output: OutputSink
    info: InfoSink
    clock: Clock
    rng: random.Random  #: seeded per (job, step, attempt): simulations are reproducible
    profile: Profile = field(default_factory=Profile)
    time_scale: float = 1.0  #: simulated work takes duration / time_scale of the clock's time
    workdir: Path | None = None  #: real steps: the job's working directory
    env: Mapping[str, str] = field(default_factory=dict)  #: real steps: extra environment
    grace_seconds: float = 5.0  #: SIGTERM -> SIGKILL grace period
    #: info of the interrupted attempt, given only when crash recovery may re-attach to it
    previous_info: Mapping[str, str] | None = None
    attempt: int = 1  #: 1-based attempt number within the job's current run of this step
    #: real steps: where the process group is recorded before the command starts
    processes: ProcessRecorder | None = None

    async def simulate(self, seconds: float) -> None:
        """Spend ``seconds`` of simulated work (shortened by ``time_scale``)."""
        await self.clock.sleep(seconds / self.time_scale if self.time_scale > 0 else 0.0)


@dataclass(frozen=True)
class StepResult:
    """A successful end: the info keys to add (``exit_code`` for shell and metadata steps)."""

    info: Mapping[str, str] = field(default_factory=dict)


class StepExecutor(Protocol):
    """Runs one family of steps in one mode."""

    async def run(self, ctx: StepContext) -> StepResult:
        """Run the step to success, or raise ``StepFailure``; honour cancellation."""
