"""A node of a cluster (SPEC §9): its registry entry, its leases, and work from other nodes.

``NodeAgent`` runs beside the scheduler:

- at start, it kills the step groups that dead nodes of this host left running
  (``engine.batch.orphans``), removes the entries of dead nodes of this host (its own earlier
  run: a restart recovers at once instead of waiting for leases to expire), registers this
  node, and takes every job that needs a runner (``adopt``);
- when the store is shared, a *keeper* checks this node's leases twice a second (a lease that
  another node took, or that an operation revoked, kills its step within a second) and renews
  them every third of their time (PostgreSQL also NOTIFYs a revoke: checked at once); a *feed*
  takes new work submitted on other nodes when woken (PostgreSQL NOTIFY) or, as a fallback,
  every ``kjobs.cluster.poll-interval`` seconds.

Adopting a job: a READY job is offered to the scheduler (its runner claims the lease); a
RUNNING job without a live lease lost its node: it is claimed, recovered to READY at the
interrupted step (SPEC §2.3), released and offered like any READY job.
"""

from __future__ import annotations

import itertools
import os
import socket

import anyio

from engine.batch import procfs
from engine.batch.scheduler import Scheduler
from engine.clock import Clock
from engine.core import operations as ops
from engine.core.errors import (
    ConcurrentModification,
    JobNotFound,
    LeaseLost,
    NotAllowed,
    StoreError,
)
from engine.logging import get_logger
from engine.store.ports import Candidate, JobStore, NodeInfo

log = get_logger()

CHECK_S = 0.5  #: how often the keeper checks leases (an operation elsewhere acts within 1 s)
BATCH = 64  #: candidates read per look for work


class NodeAgent:
    """Registers the node, keeps its leases, and feeds it work found in the store."""

    def __init__(
        self, scheduler: Scheduler, store: JobStore, clock: Clock, poll_seconds: float
    ) -> None:
        self._scheduler = scheduler
        self._leases = scheduler.leases
        self._store = store
        self._clock = clock
        self._poll_s = poll_seconds
        self._wake = anyio.Event()
        self._check_now = anyio.Event()
        if scheduler.leases.shared:
            scheduler.on_slot_free = self.wake
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = clock.now_ms()

    def wake(self) -> None:
        """New work may be waiting (a notification from another node)."""
        self._wake.set()

    def check_leases(self) -> None:
        """A lease was revoked somewhere (a notification): check this node's now."""
        self._check_now.set()

    async def start(self) -> None:
        """Clear dead local nodes, register this one, adopt every job that needs a runner."""
        me = self._scheduler.node_id
        # orphans first: no step of a dead incarnation may still run when its job is adopted
        await self._scheduler.processes.reap_dead()
        for node in await self._leases.nodes():
            if node.node_id == me or (node.host == self.host and not procfs.alive(node.pid, "")):
                await self._leases.forget_node(node.node_id)
        await self._leases.heartbeat(self.info())
        await self._leases.watch(self.wake, self.check_leases)
        await self.adopt(limit=None)

    async def stop(self) -> None:
        """Unregister: the node's remaining leases expire at once."""
        with anyio.CancelScope(shield=True):
            try:
                await self._leases.forget_node(self._scheduler.node_id)
            except StoreError as exc:  # its heartbeat ages out instead
                log.debug("kjobs.cluster.unregister_failed", error=str(exc))

    def info(self) -> NodeInfo:
        """This node as the registry shows it."""
        now = self._clock.now_ms()
        running = self._scheduler.running_jobs
        return NodeInfo(self._scheduler.node_id, self.host, self.pid, self.started, now, running)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The keeper and the feed (only when other processes may share the store)."""
        async with anyio.create_task_group() as tg:
            if self._leases.shared:
                tg.start_soon(self._keep, name="kjobs.cluster.keeper")
                tg.start_soon(self._feed, name="kjobs.cluster.feed")
            task_status.started()

    async def live_nodes(self) -> list[NodeInfo]:
        """The nodes whose heartbeat is younger than a lease (this one included), by id."""
        me = self.info()
        if not self._leases.shared:
            return [me]
        alive_since = self._clock.now_ms() - self._scheduler.lease_ms
        nodes = [n for n in await self._leases.nodes() if n.last_heartbeat >= alive_since]
        return sorted([me, *(n for n in nodes if n.node_id != me.node_id)], key=lambda n: n.node_id)

    async def adopt(self, limit: int | None = BATCH) -> None:
        """Take the jobs that need a runner: offer READY ones, rescue orphaned RUNNING ones."""
        now = self._clock.now_ms()
        found = await self._leases.claimable(now, limit if limit is not None else 1 << 30)
        for candidate in found:
            if ops.orphaned(candidate.state) and not await self._rescue(candidate):
                continue
            self._scheduler.offer(candidate.job_id, candidate.priority)

    async def _rescue(self, candidate: Candidate) -> bool:
        scheduler = self._scheduler
        lease = await self._leases.claim(
            candidate.job_id, scheduler.node_id, self._clock.now_ms(), scheduler.lease_ms
        )
        if lease is None:
            return False  # another node was faster
        try:
            job = await self._store.get_job(candidate.job_id)
            if ops.orphaned(job.state):
                await scheduler.rescue(job, lease)
        except (NotAllowed, JobNotFound, ConcurrentModification, LeaseLost):
            return False
        finally:
            await self._leases.release(lease)
        return True

    async def _feed(self) -> None:
        while True:
            woken = False
            with anyio.move_on_after(self._poll_s):
                await self._wake.wait()
                woken = True
            self._wake = anyio.Event()
            wanted = self._scheduler.wanted
            if woken and wanted <= 0:
                continue  # busy: the next free slot wakes the feed again
            try:
                # the poll also looks when busy: orphans of dead nodes are rescued anyway
                await self.adopt(limit=max(wanted, 0) + BATCH // 8)
            except StoreError as exc:  # refused or broken: look again later (health says so)
                log.debug("kjobs.cluster.feed_failed", error=str(exc))
            except Exception:  # a store hiccup must not end the feed: look again later
                log.exception("kjobs.cluster.feed_failed")

    async def _keep(self) -> None:
        scheduler = self._scheduler
        renew_every = max(scheduler.lease_ms // 3, 1)
        beat_at = 0
        while True:
            with anyio.move_on_after(min(CHECK_S, scheduler.lease_ms / 4000)):
                await self._check_now.wait()
            self._check_now = anyio.Event()
            try:
                await self._check(renew_every)
                now = self._clock.now_ms()
                if now >= beat_at:
                    await self._leases.heartbeat(self.info())
                    beat_at = now + renew_every
            except StoreError as exc:  # refused or broken: the next round tries again
                log.debug("kjobs.cluster.keeper_failed", error=str(exc))
            except Exception:  # a store hiccup: the next round tries again
                log.exception("kjobs.cluster.keeper_failed")

    async def _check(self, renew_every: int) -> None:
        scheduler = self._scheduler
        # The runners' leases are taken BEFORE the store is read: a lease claimed while the
        # read is under way is not in its answer, and must not be taken for a lost one.
        mine = scheduler.leased()
        held = await self._leases.held(scheduler.node_id)
        for lease in mine:
            if held.get(lease.job_id) != lease.token:
                scheduler.lease_lost(lease.job_id, lease.token)
                continue
            now = self._clock.now_ms()
            if lease.expires - now > scheduler.lease_ms - renew_every:
                continue  # renewed less than a third of a lease ago
            try:
                scheduler.renewed(await self._leases.renew(lease, now, scheduler.lease_ms))
            except LeaseLost:
                scheduler.lease_lost(lease.job_id, lease.token)


_ENGINES = itertools.count(1)  #: engines made in this process


def engine_node_id(instance: str) -> str:
    """The default node id: ``pid@host`` for the process's first engine, ``pid@host#N`` for
    the N-th (two engines of one process never share leases)."""
    n = next(_ENGINES)
    return instance if n == 1 else f"{instance}#{n}"
