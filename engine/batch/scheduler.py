"""The async runner of batch jobs: slots, priority with ageing, step execution, retries.

At most ``max_concurrent_jobs`` jobs hold a slot. A job keeps its slot from its first step
until it ends, fails or is interrupted, going straight from one step to the next: the success
of step N and the start of step N+1 are one durable write, and the executor of N+1 starts as
soon as that write returns (no polling). Waiting jobs are taken in priority order, then
submission order; a waiting job gains +1 per slot handed to another job (ageing), which is
the same as ordering by ``priority - round_enqueued``.

Leases (SPEC §9): a runner claims its job's lease before its first write and carries it on
every write; a write refused with ``LeaseLost`` (another node took the job) ends the runner
without recording anything, and a lease found lost by the keeper (``engine.batch.cluster``)
kills the running step first. Jobs of other nodes reach the queue through ``offer``.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from engine.batch.execution import ProfileLookup, StepExecution, reattach_info
from engine.batch.leasing import LeaseHolder, Runner
from engine.batch.output import LiveOutput
from engine.batch.pacing import Pacer
from engine.batch.writer import Decide, JobWriter
from engine.clock import Clock, SystemClock
from engine.config.settings import EngineSettings
from engine.core import operations as ops
from engine.core.errors import (
    ConcurrentModification,
    JobNotFound,
    LeaseLost,
    NotAllowed,
    StepFailure,
    StoreError,
)
from engine.core.jobs import Job, Step
from engine.events import EventBus
from engine.logging import get_logger
from engine.store.ports import JobStore, Lease, LeaseStore

log = get_logger()


@dataclass(order=True)
class _Waiting:
    key: int  # -(priority - round_enqueued): smaller runs first
    seq: int  # submission order among equals
    job_id: str = field(compare=False)


class Scheduler(LeaseHolder, StepExecution):
    """Runs READY jobs through their steps with the configured executors."""

    def __init__(
        self,
        writer: JobWriter,
        store: JobStore,
        clock: Clock,
        settings: EngineSettings,
        events: EventBus,
        profiles: ProfileLookup,
        instance: str,
        workdir: Path,
        leases: LeaseStore,
        *,
        node_id: str | None = None,
    ) -> None:
        """``node_id`` owns the leases (default: ``instance``, the jobs' build_instance)."""
        self._writer = writer
        self._store = store
        self._clock = clock
        self._settings = settings
        self._events = events
        self._profiles = profiles
        self._instance = instance
        self._workdir = workdir
        self._heap: list[_Waiting] = []
        self._waiting: dict[str, _Waiting] = {}
        self._running: dict[str, Runner] = {}
        self._round = 0
        self._seq = itertools.count()
        self._wake = anyio.Event()
        self._tg: TaskGroup | None = None
        self._closing = False
        self._stopped = anyio.Event()
        #: keeps event-loop iterations short while runners are busy (real time only)
        self.pacer = Pacer() if isinstance(clock, SystemClock) else Pacer(None)
        self._init_leases(leases, node_id or instance, settings.lease_seconds)

    # -- public ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The dispatch loop: hand free slots to waiting jobs until shut down."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                while True:
                    await self._wake.wait()
                    self._wake = anyio.Event()
                    self._dispatch()
        finally:
            self._stopped.set()

    def schedule(self, job: Job) -> None:
        """Queue a READY job for a slot (idempotent)."""
        if job.id in self._running:
            self._running[job.id].requeue = True
            return
        if job.id in self._waiting:
            return
        entry = _Waiting(-(job.priority - self._round), next(self._seq), job.id)
        self._waiting[job.id] = entry
        heapq.heappush(self._heap, entry)
        self._wake.set()

    def offer(self, job_id: str, priority: int) -> None:
        """Queue a READY job found in the store, unless it is known here already."""
        if job_id in self._running or job_id in self._waiting:
            return
        entry = _Waiting(-(priority - self._round), next(self._seq), job_id)
        self._waiting[job_id] = entry
        heapq.heappush(self._heap, entry)
        self._wake.set()

    def interrupt(self, job_id: str) -> None:
        """Stop the job's running step at once (its state was already written)."""
        running = self._running.get(job_id)
        if running is not None:
            if running.scope is not None:
                running.scope.cancel()
        elif self.leases.shared and self._tg is not None:
            # it may run on another node: taking its lease away stops it there
            self._tg.start_soon(self.leases.revoke, job_id, name=f"kjobs.revoke.{job_id}")

    def forget(self, job_id: str) -> None:
        """The job is no longer READY: drop it from the queue."""
        self._waiting.pop(job_id, None)

    def live_output(self, job_id: str, sequence: int) -> LiveOutput | None:
        """The live output of the job's step, if that step is running here now."""
        running = self._running.get(job_id)
        if running is not None and running.sequence == sequence:
            return running.output
        return None

    @property
    def running_jobs(self) -> int:
        """Jobs holding a slot right now."""
        return len(self._running)

    @property
    def wanted(self) -> int:
        """How many more jobs this node could take: free slots not promised to queued jobs."""
        return self._settings.max_concurrent_jobs - len(self._running) - len(self._waiting)

    async def shutdown(self) -> None:
        """Interrupt every running step and leave its job READY (resumable on next start).

        Runners are cancelled and waited for before any job is reset, so no runner can
        start a step after its job was recovered.
        """
        self._closing = True
        interrupted = list(self._running)
        if self._tg is None:
            return
        self._tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._stopped.wait()
            for job_id in interrupted:
                await self._recover(job_id)

    # -- dispatch -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        assert self._tg is not None
        while self._heap and len(self._running) < self._settings.max_concurrent_jobs:
            entry = heapq.heappop(self._heap)
            if self._waiting.get(entry.job_id) is not entry:
                continue  # forgotten or re-queued since
            del self._waiting[entry.job_id]
            self._round += 1
            self._running[entry.job_id] = Runner(entry.job_id)
            self._tg.start_soon(self._run_job, entry.job_id, name=f"kjobs.job.{entry.job_id}")

    async def _run_job(self, job_id: str) -> None:
        try:
            await self._drive(job_id)
        except LeaseLost:
            self.lease_lost(job_id)  # KYLIN-4862: the job's outcome is the new owner's now
        except (NotAllowed, JobNotFound, ConcurrentModification) as exc:
            # A user operation changed the job under us (pause, discard, drop): its decision
            # already holds; this runner just stops.
            log.debug("kjobs.job.runner_stopped", job_id=job_id, reason=str(exc))
        except StoreError as exc:  # refused writes are retried: only a broken store gets here
            log.error("kjobs.job.runner_store_failed", job_id=job_id, error=str(exc))
        finally:
            running = self._running.pop(job_id, None)
            try:
                if running is not None:
                    await self._let_go(running)
                if running is not None and running.requeue and not self._closing:
                    await self._requeue(job_id)
            except StoreError as exc:  # the lease expires by itself; the job is found again
                log.warning("kjobs.job.release_failed", job_id=job_id, error=str(exc))
            self._wake.set()
            if self.wanted > 0 and self.on_slot_free is not None:
                self.on_slot_free()  # look for work elsewhere now, not at the next poll

    async def _read(self, job_id: str) -> Job:
        return await self._durably("read", job_id, lambda: self._store.get_job(job_id))

    async def _requeue(self, job_id: str) -> None:
        try:
            job = await self._read(job_id)
        except JobNotFound:
            return
        if ops.queued(job):
            self.schedule(job)

    async def _drive(self, job_id: str) -> None:
        await self.pacer.turn()
        running = self._running[job_id]
        node, ttl = self.node_id, self.lease_ms
        running.lease = lease = await self._durably(
            "lease", job_id, lambda: self.leases.claim(job_id, node, self._now(), ttl)
        )
        if lease is None:
            return  # another node runs it
        # the writer knows the job it wrote (unless another node may have written it since)
        known = None if self.leases.shared else self._writer.cached(job_id)
        job = known if known is not None else await self._read(job_id)
        if ops.orphaned(job.state):  # its runner died: continue at the interrupted step
            orphan = job
            job = await self._durably("rescue", job_id, lambda: self.rescue(orphan, lease))
        if not ops.queued(job) or self._closing:
            return
        current = job.current_step
        previous = reattach_info(current) if current is not None else None
        queued = job
        job, effects = await self._durably(
            "start",
            job_id,
            lambda: self._writer.apply(
                queued,
                lambda j: ops.start_next_step(j, self._clock.now_ms(), self._instance),
                lease=lease,
            ),
        )
        while not self._closing:
            run = next((e for e in effects if isinstance(e, ops.RunStep)), None)
            if run is None:
                return
            job, effects = await self._run_step(job, run.sequence, previous)
            previous = None

    # -- one step -------------------------------------------------------------------------

    async def _run_step(
        self, job: Job, sequence: int, previous_info: Mapping[str, str] | None
    ) -> tuple[Job, tuple[ops.Effect, ...]]:
        """Run one step to its end (with retries); the returned effects say what is next."""
        running = self._running[job.id]
        while True:
            running.job = job
            step = job.step(sequence)
            output = LiveOutput(self._settings.max_output_bytes, self._line_listener(step))
            running.sequence, running.output = sequence, output
            with anyio.CancelScope() as scope:
                running.scope = scope
                await self.pacer.turn()
                outcome = await self._execute(job, step, output, previous_info)
            running.scope = None
            if running.lost:
                raise LeaseLost(job.id, self.node_id, running.lease.token if running.lease else 0)
            if scope.cancelled_caught:
                await self._keep_interrupted_output(job.id, step, output, running.lease)
                raise NotAllowed(f"step {step.id} was interrupted")
            job = running.job or job  # info updates during the step stored newer versions
            job, effects = await self._store_outcome(job, step, outcome, output)
            if not ops.retry_decided(job, sequence):
                return job, effects
            await self._retry_wait(job)
            previous_info = None

    async def _store_outcome(
        self, job: Job, step: Step, outcome: StepFailure | dict[str, str], output: LiveOutput
    ) -> tuple[Job, tuple[ops.Effect, ...]]:
        """The step's outcome made durable: tried again until the store accepts it (a full
        disk does not lose a finished step)."""
        decide, lease = self._decide_outcome(step, outcome), self._running[job.id].lease
        return await self._durably(
            "outcome",
            job.id,
            lambda: self._writer.apply(job, decide, outputs=[(step, output)], lease=lease),
        )

    def _decide_outcome(self, step: Step, outcome: StepFailure | dict[str, str]) -> Decide:
        sequence, now = step.sequence, self._now
        if not isinstance(outcome, StepFailure):
            return lambda j: ops.step_succeeded(j, sequence, outcome, now(), self._instance)
        if self._should_retry(step, outcome):
            return lambda j: ops.step_retrying(j, sequence, outcome.info, now())
        return lambda j: ops.step_failed(j, sequence, outcome.info, now())

    async def _keep_interrupted_output(
        self, job_id: str, step: Step, output: LiveOutput, lease: Lease | None
    ) -> None:
        if not output:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._writer.save_output(job_id, step.id, step.attempts, output.text(), lease)
            except LeaseLost:
                self.lease_lost(job_id)
            except StoreError as exc:  # the interrupted attempt's output is lost, nothing else
                log.warning("kjobs.step.output_lost", job_id=job_id, error=str(exc))

    async def _recover(self, job_id: str) -> None:
        lease = self._held.pop(job_id, None)
        try:
            job = await self._store.get_job(job_id)
            await self._writer.apply(job, lambda j: ops.recover(j, self._now()), lease=lease)
        except (NotAllowed, JobNotFound, ConcurrentModification, LeaseLost):
            return
        except StoreError as exc:  # left RUNNING: the next start continues it (SPEC §2.3)
            log.warning("kjobs.job.recover_failed", job_id=job_id, error=str(exc))
        finally:
            if lease is not None:
                with contextlib.suppress(StoreError):
                    await self.leases.release(lease)

    def _now(self) -> int:
        return self._clock.now_ms()
