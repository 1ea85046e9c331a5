"""Streaming jobs on a shared store: each job's run holds a lease, as a batch runner does (SPEC §9).

On a store several nodes share (a SQLite file, PostgreSQL) a run first claims its job's lease
(job ids of streaming and batch jobs share one namespace) and every write of the run carries
it: a run whose lease was taken is refused (``LeaseLost``, nothing written) and ends without
another write. ``keep`` is the node's keeper of those leases:

- every ``CHECK_S`` (at most a quarter of a lease) it compares its runs' leases with what the
  store says this node holds, ends the runs whose lease is gone, and renews the others every
  third of a lease;
- every round it reads the jobs back: the cache (what reads answer) shows other nodes'
  writes within a round;
- every half lease it rescues a job that a node owns (``core.OWNED``: STARTING, RUNNING,
  STOPPING) but nobody holds: its node died or stopped, the lease expired; the job is
  recovered here as at an engine's start. The lease claimed to see that (``adopt``) is the one
  the relaunched run carries.

An action on a job that runs on another node (STOP, FORCE_STOP, RESTART sent to any node)
takes the lease over once its decision is known to change the job, before that is written
(``fence``; ``LeaseStore.take_over``: revoke and claim in one step; a refused action takes
nothing): the owner's run ends at its next write or check (≤ ``CHECK_S``), its writes can no
longer win the compare-and-set, and this node carries out the action. So a graceful STOP of a
job running elsewhere stops its loop at once, as FORCE_STOP would, and records STOPPED.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Final

import anyio

from engine.clock import Clock
from engine.core.errors import LeaseLost, StoreError
from engine.core.streaming import OWNED, StreamingJob
from engine.logging import get_logger
from engine.store.ports import Lease, LeaseStore

if TYPE_CHECKING:
    from engine.streaming.runs import Run
    from engine.streaming.runtime import StreamingRuntime

log = get_logger()

CHECK_S: Final = 0.5  #: how often the keeper compares its leases with the store's
#: adopts and recovers one job as at an engine's start; False while another node holds it
Recover = Callable[[str], Awaitable[bool]]


class StreamingLeasing:
    """The leases of one node's streaming runs, on a shared ``leases`` store."""

    def __init__(self, leases: LeaseStore, owner: str, clock: Clock, lease_ms: int) -> None:
        self.leases = leases
        self.owner = owner  #: this node's id
        self.lease_ms = lease_ms
        self._clock = clock
        self._fences: dict[str, Lease] = {}  #: leases taken over for user actions, by job

    async def claim(self, job_id: str) -> Lease | None:
        """A new lease on the job, None while another node holds it."""
        return await self.leases.claim(job_id, self.owner, self._clock.now_ms(), self.lease_ms)

    async def adopt(self, job_id: str) -> bool:
        """Before a job is recovered here: claim its lease (False while another node holds
        it) and keep it as the fence, so the recovered run is handed that lease (one claim)."""
        lease = await self.claim(job_id)
        if lease is not None:
            self._fences[job_id] = lease
        return lease is not None

    async def take(self, run: Run, *, take_over: bool) -> bool:
        """Give ``run`` its job's lease (taken from another node when ``take_over``); False
        when another node holds it."""
        if take_over:
            now = self._clock.now_ms()
            run.lease = await self.leases.take_over(run.job_id, self.owner, now, self.lease_ms)
        else:
            run.lease = await self.claim(run.job_id)
        if run.lease is None:
            log.info("kjobs.streaming.runs_elsewhere", job_id=run.job_id)
        return run.lease is not None

    async def fence(self, job: StreamingJob, runs: Mapping[str, Run], *, cancels: bool) -> None:
        """Before a user action's decision on a job that may run on another node is written:
        take its lease over, so that node's run stops writing (else its loop's writes could
        win every compare-and-set) and no node rescues the job meanwhile. That is a job a node
        owns, or one whose loop the action ``cancels`` (an idle job's pending retry may wait on
        another node). A run the action starts gets the lease (``handed``); ``unfence`` gives
        up one that none took."""
        if job.uuid in runs or job.uuid in self._fences:
            return
        if job.status in OWNED or cancels:
            now = self._clock.now_ms()
            lease = await self.leases.take_over(job.uuid, self.owner, now, self.lease_ms)
            self._fences[job.uuid] = lease

    def handed(self, job_id: str) -> Lease | None:
        """The fence's lease on the job, for the run an action starts (once)."""
        return self._fences.pop(job_id, None)

    async def unfence(self, job_id: str) -> None:
        """The action is carried out: give up the fence's lease unless a run took it."""
        lease = self._fences.pop(job_id, None)
        if lease is not None:
            await self._release(lease)

    async def let_go(self, run: Run) -> None:
        """The run ended: give its lease up (unless lost: it is someone else's then)."""
        if run.lease is not None and not run.lost:
            await self._release(run.lease)

    async def _release(self, lease: Lease) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.leases.release(lease)
            except StoreError as exc:  # it expires by itself
                log.warning("kjobs.streaming.release_failed", job_id=lease.job_id, error=str(exc))

    async def keep(self, runtime: StreamingRuntime, recover: Recover) -> None:
        """The keeper's loop (until cancelled); ``recover(job_id)`` takes a rescued job on."""
        renew_every = max(self.lease_ms // 3, 1)
        rescue_at = time.monotonic() + self.lease_ms / 2000
        while True:
            await anyio.sleep(min(CHECK_S, self.lease_ms / 4000))
            try:
                await self._check(runtime, renew_every)
                jobs = await self._read_back(runtime)
                if time.monotonic() >= rescue_at:
                    rescue_at = time.monotonic() + self.lease_ms / 2000
                    await self._rescue(runtime, jobs, recover)
            except StoreError as exc:  # refused or broken: the next round tries again
                log.debug("kjobs.streaming.keeper_failed", error=str(exc))
            except Exception:  # a store hiccup must not end the keeper
                log.exception("kjobs.streaming.keeper_failed")

    async def _check(self, runtime: StreamingRuntime, renew_every: int) -> None:
        # the runs' leases are taken BEFORE the store is read: a lease claimed meanwhile is not
        # in the answer and must not be taken for a lost one
        mine = [(run, run.lease) for run in runtime.runs.values() if run.lease and not run.lost]
        held = await self.leases.held(self.owner)
        for run, lease in mine:
            if held.get(lease.job_id) != lease.token:
                runtime.lease_lost(run, lease)
                continue
            now = self._clock.now_ms()
            if lease.expires - now > self.lease_ms - renew_every:
                continue
            try:
                renewed = await self.leases.renew(lease, now, self.lease_ms)
            except LeaseLost:
                runtime.lease_lost(run, lease)
                continue
            if run.lease is lease:
                run.lease = renewed

    async def _read_back(self, runtime: StreamingRuntime) -> list[StreamingJob]:
        """The stored jobs, also into the cache where another node wrote them since."""
        jobs = await runtime.store.list_jobs()
        for job in jobs:
            cached = runtime.jobs.get(job.uuid)
            if cached is None or job.mvcc > cached.mvcc:
                runtime.jobs[job.uuid] = job
        return jobs

    async def _rescue(
        self, runtime: StreamingRuntime, jobs: list[StreamingJob], recover: Recover
    ) -> None:
        for job in jobs:
            if job.status not in OWNED or job.uuid in runtime.runs or job.uuid in self._fences:
                continue
            # adopted only when its lease is free (its node is gone)
            if await recover(job.uuid):
                log.warning("kjobs.streaming.rescued", job_id=job.uuid, status=job.status.value)
