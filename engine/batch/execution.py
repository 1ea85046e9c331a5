"""How the scheduler runs one step: its context, its executor, its progress info, its retry wait.

``StepExecution`` is a base of ``Scheduler`` (as ``LeaseHolder`` is): it builds the
``StepContext`` an executor gets, maps an executor's failure or crash to a ``StepFailure`` (an
executor bug never takes the engine down), and makes a running step's progress info durable
through ``InfoSink``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

import anyio

from engine.batch.leasing import Runner
from engine.batch.orphans import StepProcesses
from engine.batch.output import LiveOutput
from engine.batch.writer import JobWriter
from engine.clock import Clock
from engine.config.settings import EngineSettings
from engine.core import operations as ops
from engine.core.errors import NotAllowed, StepFailure
from engine.core.jobs import Job, Step
from engine.events import EventBus, OutputLine
from engine.logging import get_logger
from engine.store.ports import JobStore
from steps import executor_for
from steps.base import LazyRandom, Profile, StepContext

log = get_logger()

ProfileLookup = Callable[[str], Profile]
T = TypeVar("T")


class StepExecution:
    """The step side of the scheduler: what runs between a step's start and its outcome."""

    _running: dict[str, Runner]
    _store: JobStore
    _writer: JobWriter
    _clock: Clock
    _settings: EngineSettings
    _events: EventBus
    _profiles: ProfileLookup
    _workdir: Path
    processes: StepProcesses

    async def _execute(
        self, job: Job, step: Step, output: LiveOutput, previous: Mapping[str, str] | None
    ) -> StepFailure | dict[str, str]:
        ctx = StepContext(
            job_id=job.id,
            step=step,
            params=job.params,
            output=output,
            info=InfoSink(self, job.id, step.sequence),
            clock=self._clock,
            rng=LazyRandom(f"{self._settings.seed}:{job.id}:{step.sequence}:{step.attempts}"),
            profile=self._profiles(step.spec.profile),
            time_scale=self._settings.time_scale,
            workdir=self._job_workdir(job.id),
            env=dict(self._settings.env),
            grace_seconds=self._settings.grace_seconds,
            previous_info=previous,
            attempt=step.attempts,
            processes=self.processes.recorder(job.id, step.id, step.attempts),
        )
        log.debug("kjobs.step.started", job_id=job.id, step_id=step.id, attempt=step.attempts)
        try:
            result = await executor_for(step.spec).run(ctx)
        except StepFailure as failure:
            log.info("kjobs.step.failed", job_id=job.id, step_id=step.id, reason=str(failure))
            output.write(f"{failure}\n")
            return failure
        except Exception as exc:  # an executor bug must not take the engine down
            log.exception("kjobs.step.crashed", job_id=job.id, step_id=step.id)
            output.write(f"{type(exc).__name__}: {exc}\n")
            return StepFailure(str(exc), kind=type(exc).__name__)
        return dict(result.info)

    def _job_workdir(self, job_id: str) -> Path:
        running = self._running.get(job_id)
        if running is None:
            return self._workdir / job_id
        if running.workdir is None:
            running.workdir = self._workdir / job_id
        return running.workdir

    def _should_retry(self, step: Step, failure: StepFailure) -> bool:
        s = self._settings
        return ops.retry_allowed(step.retries, s.retry, failure.kind, s.retry_exception_classes)

    async def _retry_wait(self, job: Job) -> None:
        running = self._running[job.id]
        with anyio.CancelScope() as scope:
            running.scope = scope
            await self._clock.sleep(self._settings.retry_interval_ms / 1000)
        running.scope = None
        if scope.cancelled_caught:
            raise NotAllowed(f"job {job.id} was interrupted while waiting to retry")

    async def _durably(self, what: str, job_id: str, write: Callable[[], Awaitable[T]]) -> T:
        """``write()``, tried again while the store refuses it (the writer's ``WriteRetry``)."""
        return await self._writer.retry.until_accepted(what, write, job_id=job_id)

    def _line_listener(self, step: Step) -> Callable[[str], None] | None:
        if not self._events.active:
            return None
        events, job_id, step_id = self._events, step.job_id, step.id
        return lambda text: events.publish(OutputLine(job_id, self._clock.now_ms(), step_id, text))

    async def update_info(
        self, job_id: str, sequence: int, info: Mapping[str, str], wait_time_ms: int | None
    ) -> None:
        """Make a running step's progress info durable (called by executors via the sink)."""
        running = self._running.get(job_id)
        job = running.job if running is not None and running.job is not None else None
        if job is None:
            job = await self._store.get_job(job_id)
        lease = running.lease if running is not None else None

        def decide(j: Job) -> ops.Decision:
            return ops.update_step_info(j, sequence, info, self._clock.now_ms(), wait_time_ms)

        stored, _ = await self._durably(
            "info", job_id, lambda: self._writer.apply(job, decide, lease=lease)
        )
        if running is not None:
            running.job = stored


class InfoSink:
    """The ``StepContext.info`` of one running step: progress info made durable."""

    def __init__(self, scheduler: StepExecution, job_id: str, sequence: int) -> None:
        self._scheduler = scheduler
        self._job_id = job_id
        self._sequence = sequence

    async def update(self, info: Mapping[str, str], wait_time_ms: int | None = None) -> None:
        """Store ``info`` as the step's newest progress."""
        await self._scheduler.update_info(self._job_id, self._sequence, info, wait_time_ms)


def reattach_info(step: Step) -> Mapping[str, str] | None:
    """The info a crash-interrupted step re-attaches with (None: it runs from scratch)."""
    # Only crash recovery may re-attach; a paused or resumed step re-runs from scratch.
    return dict(step.info) if step.reattach and step.info else None
