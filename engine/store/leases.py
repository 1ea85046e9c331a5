"""Leases kept in process memory (``LocalLeases``): the lease store of the in-memory stores, and
of any job store without leases of its own (the stores of a simulation).

One process is the whole cluster here, so nothing is shared (``shared`` False) and no call
awaits anything but the job store's read in ``claimable``. The rules are the port's
(``engine.store.ports``), checked by the same contract tests as the SQL adapters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from engine.core.errors import LeaseLost
from engine.core.states import State
from engine.store.ports import Candidate, JobStore, Lease, NodeInfo, StepProcess

_CLAIMABLE = frozenset({State.READY, State.RUNNING})


class LocalLeases:
    """Leases and nodes in dicts, over ``jobs`` for the candidates of ``claimable``."""

    shared = False

    def __init__(self, jobs: JobStore) -> None:
        self._jobs = jobs
        self._leases: dict[str, Lease] = {}  #: current lease by job id (owner "" = none)
        self._nodes: dict[str, NodeInfo] = {}
        self._processes: dict[tuple[str, int], StepProcess] = {}  #: by (host, pgid)

    def verify(self, lease: Lease) -> None:
        """``LeaseLost`` unless ``lease`` is the job's current one (owner and token)."""
        current = self._leases.get(lease.job_id)
        if current is None or current.owner != lease.owner or current.token != lease.token:
            raise LeaseLost(lease.job_id, lease.owner, lease.token)

    async def claim(self, job_id: str, owner: str, now: int, ttl_ms: int) -> Lease | None:
        """A new lease when the job is free, expired or already ``owner``'s."""
        current = self._leases.get(job_id)
        if current is not None and current.owner not in ("", owner) and current.expires > now:
            return None
        token = 1 if current is None else current.token + 1
        lease = Lease(job_id, owner, token, now + ttl_ms)
        self._leases[job_id] = lease
        return lease

    async def take_over(self, job_id: str, owner: str, now: int, ttl_ms: int) -> Lease:
        """A new lease for ``owner``, taken from whoever holds the job's."""
        current = self._leases.get(job_id)
        token = 1 if current is None else current.token + 1
        lease = self._leases[job_id] = Lease(job_id, owner, token, now + ttl_ms)
        return lease

    async def renew(self, lease: Lease, now: int, ttl_ms: int) -> Lease:
        """The lease with a new expiry; ``LeaseLost`` when it is no longer current."""
        self.verify(lease)
        renewed = dataclasses.replace(lease, expires=now + ttl_ms)
        self._leases[lease.job_id] = renewed
        return renewed

    async def release(self, lease: Lease) -> None:
        """Give the lease up; the token stays, so the next claim's is greater."""
        current = self._leases.get(lease.job_id)
        if current is not None and current.owner == lease.owner and current.token == lease.token:
            self._leases[lease.job_id] = dataclasses.replace(current, owner="", expires=0)

    async def revoke(self, job_id: str) -> None:
        """Take the job's lease away from whoever holds it."""
        current = self._leases.get(job_id)
        if current is not None:
            self._leases[job_id] = dataclasses.replace(current, owner="", expires=0)

    async def held(self, owner: str) -> dict[str, int]:
        """Job id -> token of every lease ``owner`` holds."""
        return {k: v.token for k, v in self._leases.items() if v.owner == owner}

    async def claimable(self, now: int, limit: int) -> list[Candidate]:
        """READY jobs and RUNNING ones without a live lease, priority then age."""
        found = []
        for job in await self._jobs.jobs_in_states(_CLAIMABLE):
            lease = self._leases.get(job.id)
            if lease is not None and lease.owner and lease.expires > now:
                continue
            found.append(Candidate(job.id, job.state, job.priority, job.create_time))
        found.sort(key=lambda c: (-c.priority, c.create_time, c.job_id))
        return found[: max(0, limit)]

    async def heartbeat(self, node: NodeInfo) -> None:
        """Register or refresh a node."""
        self._nodes[node.node_id] = node

    async def nodes(self) -> list[NodeInfo]:
        """Every registered node, by id."""
        return [self._nodes[k] for k in sorted(self._nodes)]

    async def forget_node(self, node_id: str) -> None:
        """Remove a node and expire its leases."""
        self._nodes.pop(node_id, None)
        for job_id, lease in list(self._leases.items()):
            if lease.owner == node_id:
                self._leases[job_id] = dataclasses.replace(lease, expires=0)

    async def watch(self, work: Callable[[], None], lease: Callable[[], None]) -> None:
        """Nothing to watch: this process is the only one."""

    def forget_job(self, job_id: str) -> None:
        """The job was deleted: its lease goes with it."""
        self._leases.pop(job_id, None)

    async def record_process(self, process: StepProcess) -> None:
        """Record a step's process group (replacing a record of the same host and pgid)."""
        key = (process.host, process.pgid)
        self._processes.pop(key, None)  # a replaced record is the newest: last in order
        self._processes[key] = process

    async def clear_process(self, host: str, pgid: int) -> None:
        """Drop the group's record (nothing happens when there is none)."""
        self._processes.pop((host, pgid), None)

    async def step_processes(self, host: str, job_id: str | None = None) -> list[StepProcess]:
        """The recorded groups of ``host`` (of one job only, if given), oldest first."""
        found = [
            p for p in self._processes.values()
            if p.host == host and (job_id is None or p.job_id == job_id)
        ]  # fmt: skip
        return sorted(found, key=lambda p: (p.recorded, p.pgid))
