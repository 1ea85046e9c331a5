"""The ``LeaseStore`` on SQLite: several processes on one file share the work through leases.

Every write is one statement in the database's group-commit transaction; SQLite's write lock
(``BEGIN IMMEDIATE``) serialises them with every other process on the file, so a claim and a
fenced ``save_job`` (``jobs.py`` checks the lease first, in the same transaction) never
interleave. Reads run on the read connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

from engine.core.errors import LeaseLost
from engine.core.states import State
from engine.store.ports import Candidate, Lease, NodeInfo
from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.processes import SqliteProcesses

CLAIM: Final = """
INSERT INTO leases (job_id, owner, token, expires) VALUES (?, ?, 1, ?)
ON CONFLICT (job_id) DO UPDATE SET
    owner = excluded.owner, token = leases.token + 1, expires = excluded.expires
WHERE leases.owner = '' OR leases.owner = excluded.owner OR leases.expires <= ?
RETURNING token
"""
TAKE_OVER: Final = """
INSERT INTO leases (job_id, owner, token, expires) VALUES (?, ?, 1, ?)
ON CONFLICT (job_id) DO UPDATE SET
    owner = excluded.owner, token = leases.token + 1, expires = excluded.expires
RETURNING token
"""
RENEW: Final = "UPDATE leases SET expires = ? WHERE job_id = ? AND owner = ? AND token = ?"
RELEASE: Final = """
UPDATE leases SET owner = '', expires = 0 WHERE job_id = ? AND owner = ? AND token = ?
"""
REVOKE: Final = "UPDATE leases SET owner = '', expires = 0 WHERE job_id = ?"
LEASE_HELD: Final = "SELECT 1 FROM leases WHERE job_id = ? AND owner = ? AND token = ?"
HELD: Final = "SELECT job_id, token FROM leases WHERE owner = ?"
CLAIMABLE: Final = """
SELECT j.id, j.state, j.priority, j.create_time FROM jobs AS j
LEFT JOIN leases AS l ON l.job_id = j.id
WHERE j.state IN (?, ?) AND (l.job_id IS NULL OR l.owner = '' OR l.expires <= ?)
ORDER BY j.priority DESC, j.create_time, j.id
LIMIT ?
"""
UPSERT_NODE: Final = """
INSERT INTO nodes (node_id, host, pid, started, last_heartbeat, running_jobs)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (node_id) DO UPDATE SET
    host = excluded.host, pid = excluded.pid, started = excluded.started,
    last_heartbeat = excluded.last_heartbeat, running_jobs = excluded.running_jobs
"""
SELECT_NODES: Final = """
SELECT node_id, host, pid, started, last_heartbeat, running_jobs FROM nodes ORDER BY node_id
"""
DELETE_NODE: Final = "DELETE FROM nodes WHERE node_id = ?"
EXPIRE_OWNER: Final = "UPDATE leases SET expires = 0 WHERE owner = ?"
DELETE_LEASE: Final = "DELETE FROM leases WHERE job_id = ?"


def lease_row(lease: Lease) -> tuple[str, str, int]:
    """The parameters of ``LEASE_HELD``."""
    return (lease.job_id, lease.owner, lease.token)


def check_lease(conn: sqlite3.Connection, lease: Lease) -> None:
    """Inside a write: ``LeaseLost`` unless ``lease`` is still the job's current one."""
    if conn.execute(LEASE_HELD, lease_row(lease)).fetchone() is None:
        raise LeaseLost(lease.job_id, lease.owner, lease.token)


class SqliteLeases(SqliteProcesses):
    """Leases, nodes and step processes in the ``leases``, ``nodes`` and ``step_processes``
    tables of a shared database."""

    shared = True

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def claim(self, job_id: str, owner: str, now: int, ttl_ms: int) -> Lease | None:
        """A new lease when the job is free, expired or already ``owner``'s."""
        expires = now + ttl_ms

        def op(conn: sqlite3.Connection) -> Lease | None:
            row = conn.execute(CLAIM, (job_id, owner, expires, now)).fetchone()
            return None if row is None else Lease(job_id, owner, int(row[0]), expires)

        return await self._db.write_sync(op)

    async def take_over(self, job_id: str, owner: str, now: int, ttl_ms: int) -> Lease:
        """A new lease for ``owner``, taken from whoever holds the job's."""
        expires = now + ttl_ms

        def op(conn: sqlite3.Connection) -> Lease:
            row = conn.execute(TAKE_OVER, (job_id, owner, expires)).fetchone()
            return Lease(job_id, owner, int(row[0]), expires)

        return await self._db.write_sync(op)

    async def renew(self, lease: Lease, now: int, ttl_ms: int) -> Lease:
        """The lease with a new expiry; ``LeaseLost`` when it is no longer current."""
        expires = now + ttl_ms

        def op(conn: sqlite3.Connection) -> Lease:
            args = (expires, lease.job_id, lease.owner, lease.token)
            if conn.execute(RENEW, args).rowcount != 1:
                raise LeaseLost(lease.job_id, lease.owner, lease.token)
            return Lease(lease.job_id, lease.owner, lease.token, expires)

        return await self._db.write_sync(op)

    async def release(self, lease: Lease) -> None:
        """Give the lease up; the row (and its token) stays."""
        args = (lease.job_id, lease.owner, lease.token)
        await self._db.write_sync(lambda conn: conn.execute(RELEASE, args))

    async def revoke(self, job_id: str) -> None:
        """Take the job's lease away from whoever holds it."""
        await self._db.write_sync(lambda conn: conn.execute(REVOKE, (job_id,)))

    async def held(self, owner: str) -> dict[str, int]:
        """Job id -> token of every lease ``owner`` holds."""
        rows = await self._db.reader.execute_fetchall(HELD, (owner,))
        return {str(job_id): int(token) for job_id, token in rows}

    async def claimable(self, now: int, limit: int) -> list[Candidate]:
        """READY jobs and RUNNING ones without a live lease, priority then age."""
        args = (State.READY.value, State.RUNNING.value, now, max(0, limit))
        rows = await self._db.reader.execute_fetchall(CLAIMABLE, args)
        return [Candidate(str(i), State(s), int(p), int(c)) for i, s, p, c in rows]

    async def heartbeat(self, node: NodeInfo) -> None:
        """Register or refresh a node."""
        args = (node.node_id, node.host, node.pid, node.started, node.last_heartbeat,
                node.running_jobs)  # fmt: skip
        await self._db.write_sync(lambda conn: conn.execute(UPSERT_NODE, args))

    async def nodes(self) -> list[NodeInfo]:
        """Every registered node, by id."""
        rows = await self._db.reader.execute_fetchall(SELECT_NODES)
        return [
            NodeInfo(str(n), str(h), int(p), int(s), int(b), int(r)) for n, h, p, s, b, r in rows
        ]

    async def forget_node(self, node_id: str) -> None:
        """Remove a node and expire its leases at once."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(DELETE_NODE, (node_id,))
            conn.execute(EXPIRE_OWNER, (node_id,))

        await self._db.write_sync(op)

    async def watch(self, work: Callable[[], None], lease: Callable[[], None]) -> None:
        """SQLite cannot notify other processes: their work is found by the polls."""
