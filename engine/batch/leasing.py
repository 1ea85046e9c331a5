"""The scheduler's runners and their leases (SPEC §9): one node at a time runs a job.

``Runner`` is one job holding a slot on this node. ``LeaseHolder`` (a base of ``Scheduler``)
keeps the lease each runner carries on its writes: renewed by the keeper
(``engine.batch.cluster``), given up when the runner ends, and marked lost when the keeper or a
refused write finds that another node took the job: then the step is killed and nothing more
is written for that job here (Kylin's KYLIN-4862 rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from engine.batch.orphans import StepProcesses
from engine.batch.output import LiveOutput
from engine.batch.writer import JobWriter
from engine.clock import Clock
from engine.core import operations as ops
from engine.core.jobs import Job
from engine.logging import get_logger
from engine.store.ports import Lease, LeaseStore

log = get_logger()


@dataclass
class Runner:
    """A job that holds a slot, and how to interrupt its current step."""

    job_id: str
    job: Job | None = None  #: the newest stored version this runner knows
    scope: anyio.CancelScope | None = None
    sequence: int = -1
    output: LiveOutput | None = None
    requeue: bool = False  #: scheduled again while its runner was still winding down
    workdir: Path | None = None  #: the job's working directory (built once per run)
    lease: Lease | None = None  #: carried on every write of this runner
    lost: bool = False  #: the lease is gone: write nothing more, stop the step


class LeaseHolder:
    """The lease side of the scheduler: what the keeper and the runners call."""

    _running: dict[str, Runner]
    _closing: bool
    _tg: TaskGroup | None
    _writer: JobWriter
    _clock: Clock

    def _init_leases(self, leases: LeaseStore, node_id: str, lease_seconds: float) -> None:
        self.leases = leases
        self.node_id = node_id  #: owner of this node's leases
        self.lease_ms = int(lease_seconds * 1000)
        #: this node's step process groups, and the reaper of those earlier incarnations left
        self.processes = StepProcesses(leases, self._clock, self.node_id, self._writer.retry)
        self._held: dict[str, Lease] = {}  #: leases of runners stopped by ``shutdown``
        self.leases_lost = 0  #: runners stopped because another node took their job
        self.jobs_rescued = 0  #: RUNNING jobs of dead nodes (or a crash) taken over here
        #: called when a runner ends and the queue has room (the node agent looks for work)
        self.on_slot_free: Callable[[], None] | None = None

    def lease_lost(self, job_id: str, token: int | None = None) -> None:
        """The job's lease is gone: its runner writes nothing more, its step is killed.

        ``token`` names the lost lease when the caller checked one: a runner of the same job
        that holds a newer lease (the job was run again since) keeps it.
        """
        running = self._running.get(job_id)
        if running is None or running.lost:
            return
        if token is not None and (running.lease is None or running.lease.token != token):
            return
        running.lost = True
        self.leases_lost += 1
        log.warning("kjobs.lease.lost", job_id=job_id, node=self.node_id)
        if running.scope is not None:
            running.scope.cancel()

    def leased(self) -> list[Lease]:
        """The current leases of this node's runners."""
        return [r.lease for r in self._running.values() if r.lease is not None and not r.lost]

    def renewed(self, lease: Lease) -> None:
        """A lease got a new expiry."""
        running = self._running.get(lease.job_id)
        if running is not None and running.lease is not None and running.lease.token == lease.token:
            running.lease = lease

    async def rescue(self, job: Job, lease: Lease) -> Job:
        """A RUNNING job nobody runs (its node died) -> READY, under ``lease`` (SPEC §2.3)."""
        log.info("kjobs.job.rescued", job_id=job.id, node=self.node_id)
        self.jobs_rescued += 1
        await self.processes.reap_job(job.id)  # the dead runner's step must not run beside ours
        now = self._clock.now_ms()
        stored, _ = await self._writer.apply(job, lambda j: ops.recover(j, now), lease=lease)
        return stored

    async def _let_go(self, running: Runner) -> None:
        lease = running.lease
        if lease is None or running.lost:
            return
        if self._closing:  # shutdown recovers the job under this lease, then releases it
            self._held[running.job_id] = lease
            return
        with anyio.CancelScope(shield=True):
            await self.leases.release(lease)
