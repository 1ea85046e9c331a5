"""The SQLite side of ``engine.ops``: the notification outbox and the retention sweep.

A mixin of ``SqliteJobStore`` (it shares the job store's database); ``outbox_statement`` is the
insert that ``save_job`` adds to a write that ends a job.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from engine.core.notifications import JobEnd
from engine.core.states import SWEPT_STATES
from engine.store.ports import OutboxEntry
from engine.store.sqlite.db import SqliteDatabase

INSERT_OUTBOX: Final = """
INSERT INTO notification_outbox (event_id, job_id, created, payload, next_attempt)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (event_id) DO NOTHING
"""
# Claiming is one UPDATE: two senders on one file never take the same entry.
CLAIM_OUTBOX: Final = """
UPDATE notification_outbox SET next_attempt = ?
WHERE event_id IN (
    SELECT event_id FROM notification_outbox
    WHERE next_attempt IS NOT NULL AND next_attempt <= ?
    ORDER BY next_attempt LIMIT ?
)
RETURNING event_id, job_id, payload, attempts, next_attempt
"""
DELETE_OUTBOX: Final = "DELETE FROM notification_outbox WHERE event_id = ?"
RETRY_OUTBOX: Final = """
UPDATE notification_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE event_id = ?
"""
# One batch of the sweep: the oldest ended jobs (the covering index on last_modified finds
# them); outputs go with them (ON DELETE CASCADE), segments stay.
SWEEP_JOBS: Final = """
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs WHERE last_modified < ? AND state IN ({marks})
    ORDER BY last_modified LIMIT ?
)
RETURNING id
"""
_SWEPT: Final = tuple(sorted(s.value for s in SWEPT_STATES))


def outbox_statement(end: JobEnd) -> tuple[str, list[tuple[Any, ...]]]:
    """The statement and row that put ``end`` into the outbox."""
    row = (end.event_id, end.job_id, end.end_time, json.dumps(end.payload()), end.end_time)
    return INSERT_OUTBOX, [row]


class SqliteOps:
    """Outbox and sweep statements over the job store's database (a mixin)."""

    _db: SqliteDatabase

    async def claim_notifications(
        self, now: int, lease_until: int, limit: int
    ) -> list[OutboxEntry]:
        """Due entries, earliest first, their next attempt moved to ``lease_until``."""

        def op(conn: sqlite3.Connection) -> list[OutboxEntry]:
            rows = conn.execute(CLAIM_OUTBOX, (lease_until, now, max(0, limit))).fetchall()
            return [OutboxEntry(*row) for row in rows]

        claimed = await self._db.write_sync(op)
        return sorted(claimed, key=lambda e: e.event_id)

    async def settle_notification(
        self, event_id: str, attempts: int, next_attempt: int | None, error: str | None
    ) -> None:
        """Delivered (deleted), to be retried at ``next_attempt``, or given up (NULL)."""

        def op(conn: sqlite3.Connection) -> None:
            if error is None:
                conn.execute(DELETE_OUTBOX, (event_id,))
            else:
                conn.execute(RETRY_OUTBOX, (attempts, next_attempt, error, event_id))

        await self._db.write_sync(op)

    async def sweep_jobs(self, ended_before: int, limit: int) -> list[str]:
        """Delete one batch of old FINISHED / DISCARDED jobs (one short transaction)."""
        sql = SWEEP_JOBS.format(marks=", ".join("?" * len(_SWEPT)))

        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(sql, (ended_before, *_SWEPT, max(0, limit))).fetchall()
            return [str(row[0]) for row in rows]

        return await self._db.write_sync(op)
