"""The ``LeaseStore`` on PostgreSQL: any number of nodes on one database share the work.

A claim locks the job's lease row ``FOR UPDATE SKIP LOCKED``: a node that finds another one
claiming the same job at this moment gives up at once instead of queueing behind it (the other
wins anyway); a free, expired or own lease is then taken with a new token in the same
transaction, and a job never leased before gets its row with ``INSERT ... ON CONFLICT DO
NOTHING`` (of two first claimers, one inserts). A fenced ``save_job`` (``jobs.py``) reads the
lease row ``FOR SHARE``, so a claim and a fenced write never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from engine.core.errors import LeaseLost
from engine.core.states import State
from engine.store.ports import Candidate, Lease, NodeInfo
from engine.store.postgres.db import (
    LEASE_CHANNEL,
    NOTIFY_LEASE,
    WORK_CHANNEL,
    Conn,
    PostgresDatabase,
)
from engine.store.postgres.processes import PostgresProcesses

LEASE_OF: Final = "SELECT owner, token FROM leases WHERE job_id = $1 FOR SHARE"
LOCK_LEASE: Final = "SELECT owner, expires FROM leases WHERE job_id = $1 FOR UPDATE SKIP LOCKED"
WAIT_FOR_LEASE: Final = "SELECT 1 FROM leases WHERE job_id = $1 FOR UPDATE"
LEASE_EXISTS: Final = "SELECT 1 FROM leases WHERE job_id = $1"
TAKE: Final = """
UPDATE leases SET owner = $2, token = token + 1, expires = $3 WHERE job_id = $1 RETURNING token
"""
FIRST: Final = """
INSERT INTO leases (job_id, owner, token, expires) VALUES ($1, $2, 1, $3)
ON CONFLICT (job_id) DO NOTHING RETURNING token
"""
RENEW: Final = "UPDATE leases SET expires = $1 WHERE job_id = $2 AND owner = $3 AND token = $4"
RELEASE: Final = """
UPDATE leases SET owner = '', expires = 0 WHERE job_id = $1 AND owner = $2 AND token = $3
"""
REVOKE: Final = "UPDATE leases SET owner = '', expires = 0 WHERE job_id = $1"
HELD: Final = "SELECT job_id, token FROM leases WHERE owner = $1"
CLAIMABLE: Final = """
SELECT j.id, j.state, j.priority, j.create_time FROM jobs AS j
LEFT JOIN leases AS l ON l.job_id = j.id
WHERE j.state = ANY($1::text[]) AND (l.job_id IS NULL OR l.owner = '' OR l.expires <= $2)
ORDER BY j.priority DESC, j.create_time, j.id
LIMIT $3
"""
UPSERT_NODE: Final = """
INSERT INTO nodes (node_id, host, pid, started, last_heartbeat, running_jobs)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (node_id) DO UPDATE SET
    host = EXCLUDED.host, pid = EXCLUDED.pid, started = EXCLUDED.started,
    last_heartbeat = EXCLUDED.last_heartbeat, running_jobs = EXCLUDED.running_jobs
"""
SELECT_NODES: Final = """
SELECT node_id, host, pid, started, last_heartbeat, running_jobs FROM nodes ORDER BY node_id
"""
DELETE_NODE: Final = "DELETE FROM nodes WHERE node_id = $1"
EXPIRE_OWNER: Final = "UPDATE leases SET expires = 0 WHERE owner = $1"
_CLAIMABLE_STATES: Final = sorted((State.READY.value, State.RUNNING.value))


async def check_lease(conn: Conn, lease: Lease) -> None:
    """Inside a write: ``LeaseLost`` unless ``lease`` is still the job's current one (the row
    is read ``FOR SHARE``: no claim commits in between)."""
    row = await conn.fetchrow(LEASE_OF, lease.job_id)
    if row is None or row["owner"] != lease.owner or row["token"] != lease.token:
        raise LeaseLost(lease.job_id, lease.owner, lease.token)


class PostgresLeases(PostgresProcesses):
    """Leases, nodes and step processes in the ``leases``, ``nodes`` and ``step_processes``
    tables."""

    shared = True

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def claim(self, job_id: str, owner: str, now: int, ttl_ms: int) -> Lease | None:
        """A new lease when the job is free, expired or already ``owner``'s."""
        expires = now + ttl_ms
        async with self._db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(LOCK_LEASE, job_id)
            if row is None:
                if await conn.fetchval(LEASE_EXISTS, job_id) is not None:
                    return None  # locked by another claimer right now
                token = await conn.fetchval(FIRST, job_id, owner, expires)
            elif row["owner"] in ("", owner) or row["expires"] <= now:
                token = await conn.fetchval(TAKE, job_id, owner, expires)
            else:
                return None
        return None if token is None else Lease(job_id, owner, int(token), expires)

    async def take_over(self, job_id: str, owner: str, now: int, ttl_ms: int) -> Lease:
        """A new lease for ``owner``, taken from whoever holds the job's (notified). It waits
        for a write in flight (which holds the row ``FOR SHARE``) where ``claim`` gives up."""
        expires = now + ttl_ms
        async with self._db.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(WAIT_FOR_LEASE, job_id) is None:
                token = await conn.fetchval(FIRST, job_id, owner, expires)
            else:
                token = await conn.fetchval(TAKE, job_id, owner, expires)
            if token is None:  # a first claim committed meanwhile: the row exists now
                await conn.fetchval(WAIT_FOR_LEASE, job_id)
                token = await conn.fetchval(TAKE, job_id, owner, expires)
            await conn.execute(NOTIFY_LEASE, job_id)
        return Lease(job_id, owner, int(token), expires)

    async def renew(self, lease: Lease, now: int, ttl_ms: int) -> Lease:
        """The lease with a new expiry; ``LeaseLost`` when it is no longer current."""
        expires = now + ttl_ms
        status = await self._db.pool.execute(RENEW, expires, lease.job_id, lease.owner, lease.token)
        if status != "UPDATE 1":
            raise LeaseLost(lease.job_id, lease.owner, lease.token)
        return Lease(lease.job_id, lease.owner, lease.token, expires)

    async def release(self, lease: Lease) -> None:
        """Give the lease up; the row (and its token) stays."""
        await self._db.pool.execute(RELEASE, lease.job_id, lease.owner, lease.token)

    async def revoke(self, job_id: str) -> None:
        """Take the job's lease away from whoever holds it (its owner is notified)."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(REVOKE, job_id)
            await conn.execute(NOTIFY_LEASE, job_id)

    async def held(self, owner: str) -> dict[str, int]:
        """Job id -> token of every lease ``owner`` holds."""
        rows = await self._db.pool.fetch(HELD, owner)
        return {r[0]: int(r[1]) for r in rows}

    async def claimable(self, now: int, limit: int) -> list[Candidate]:
        """READY jobs and RUNNING ones without a live lease, priority then age."""
        rows = await self._db.pool.fetch(CLAIMABLE, _CLAIMABLE_STATES, now, max(0, limit))
        return [Candidate(r[0], State(r[1]), int(r[2]), int(r[3])) for r in rows]

    async def heartbeat(self, node: NodeInfo) -> None:
        """Register or refresh a node."""
        await self._db.pool.execute(
            UPSERT_NODE, node.node_id, node.host, node.pid, node.started, node.last_heartbeat,
            node.running_jobs,
        )  # fmt: skip

    async def nodes(self) -> list[NodeInfo]:
        """Every registered node, by id."""
        rows = await self._db.pool.fetch(SELECT_NODES)
        return [NodeInfo(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]

    async def forget_node(self, node_id: str) -> None:
        """Remove a node and expire its leases at once."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(DELETE_NODE, node_id)
            await conn.execute(EXPIRE_OWNER, node_id)

    async def watch(self, work: Callable[[], None], lease: Callable[[], None]) -> None:
        """LISTEN for new work and revoked leases of other nodes."""
        await self._db.listen(WORK_CHANNEL, work)
        await self._db.listen(LEASE_CHANNEL, lease)
