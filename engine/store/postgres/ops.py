"""The PostgreSQL side of ``engine.ops``: the notification outbox, the retention sweep and the
schedules (a mixin of ``PostgresJobStore``; the same contract as ``engine/store/sqlite/ops.py``;
written by the ops helper, wired in by cluster). ``save_job`` inserts a write's notification
(``INSERT_OUTBOX``) in the job's own transaction; the tables are ``schema/0004_ops.sql``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from engine.core.errors import ConcurrentModification, ScheduleNotFound
from engine.core.notifications import JobEnd
from engine.core.schedules import Schedule
from engine.core.states import SWEPT_STATES
from engine.store.ports import OutboxEntry
from engine.store.postgres.db import PostgresDatabase
from engine.store.sqlite.ops import decode_schedule, encode_schedule

INSERT_OUTBOX: Final = """
INSERT INTO notification_outbox (event_id, job_id, created, payload, next_attempt)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING
"""
# SKIP LOCKED: two senders claiming at once take different entries.
CLAIM_OUTBOX: Final = """
UPDATE notification_outbox SET next_attempt = $1
WHERE event_id IN (
    SELECT event_id FROM notification_outbox
    WHERE next_attempt IS NOT NULL AND next_attempt <= $2
    ORDER BY next_attempt LIMIT $3 FOR UPDATE SKIP LOCKED
)
RETURNING event_id, job_id, payload, attempts, next_attempt
"""
DELETE_OUTBOX: Final = "DELETE FROM notification_outbox WHERE event_id = $1"
RETRY_OUTBOX: Final = """
UPDATE notification_outbox SET attempts = $2, next_attempt = $3, last_error = $4
WHERE event_id = $1
"""
# steps, definitions and outputs go with their job (ON DELETE CASCADE); segments stay
SWEEP_JOBS: Final = """
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs WHERE last_modified < $1 AND state = ANY($2::text[])
    ORDER BY last_modified LIMIT $3 FOR UPDATE SKIP LOCKED
)
RETURNING id
"""
DELETE_LEASES: Final = "DELETE FROM leases WHERE job_id = ANY($1::text[])"
INSERT_SCHEDULE: Final = """
INSERT INTO schedules (name, version, data) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING
"""
UPDATE_SCHEDULE: Final = """
UPDATE schedules SET version = $2, data = $3 WHERE name = $1 AND version = $4
"""
SELECT_SCHEDULE: Final = "SELECT data FROM schedules WHERE name = $1"
SELECT_SCHEDULES: Final = "SELECT data FROM schedules ORDER BY name"
DELETE_SCHEDULE: Final = "DELETE FROM schedules WHERE name = $1"
_SWEPT: Final = sorted(s.value for s in SWEPT_STATES)


def outbox_row(end: JobEnd) -> tuple[Any, ...]:
    """The parameters of ``INSERT_OUTBOX`` for ``end``."""
    return (end.event_id, end.job_id, end.end_time, json.dumps(end.payload()), end.end_time)


class PostgresOps:
    """Outbox, sweep and schedule statements over the job store's database (a mixin)."""

    db: PostgresDatabase

    async def claim_notifications(
        self, now: int, lease_until: int, limit: int
    ) -> list[OutboxEntry]:
        """Due entries, their next attempt moved to ``lease_until``."""
        rows = await self.db.pool.fetch(CLAIM_OUTBOX, lease_until, now, max(0, limit))
        return sorted((OutboxEntry(*row) for row in rows), key=lambda e: e.event_id)

    async def settle_notification(
        self, event_id: str, attempts: int, next_attempt: int | None, error: str | None
    ) -> None:
        """Delivered (deleted), to be retried at ``next_attempt``, or given up (NULL)."""
        if error is None:
            await self.db.pool.execute(DELETE_OUTBOX, event_id)
        else:
            await self.db.pool.execute(RETRY_OUTBOX, event_id, attempts, next_attempt, error)

    async def sweep_jobs(self, ended_before: int, limit: int) -> list[str]:
        """Delete one batch of old FINISHED / DISCARDED jobs (one short transaction)."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(SWEEP_JOBS, ended_before, _SWEPT, max(0, limit))
            gone = [str(row[0]) for row in rows]
            if gone:
                await conn.execute(DELETE_LEASES, gone)
        return gone

    async def save_schedule(self, schedule: Schedule, expected_version: int | None) -> Schedule:
        """Insert (``expected_version`` None) or compare-and-set update."""
        stored = schedule.evolve(version=(expected_version or 0) + 1)
        data = encode_schedule(stored)
        if expected_version is None:
            status = await self.db.pool.execute(INSERT_SCHEDULE, stored.name, stored.version, data)
            won = status == "INSERT 0 1"
        else:
            status = await self.db.pool.execute(
                UPDATE_SCHEDULE, stored.name, stored.version, data, expected_version
            )
            won = status == "UPDATE 1"
        if not won:
            raise ConcurrentModification(schedule.name, expected_version or 0)
        return stored

    async def get_schedule(self, name: str) -> Schedule:
        """The stored schedule; ``ScheduleNotFound`` when there is none."""
        data = await self.db.pool.fetchval(SELECT_SCHEDULE, name)
        if data is None:
            raise ScheduleNotFound(name)
        return decode_schedule(data)

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        return [decode_schedule(row[0]) for row in await self.db.pool.fetch(SELECT_SCHEDULES)]

    async def delete_schedule(self, name: str) -> None:
        """Delete the schedule; ``ScheduleNotFound`` when there is none."""
        if await self.db.pool.execute(DELETE_SCHEDULE, name) != "DELETE 1":
            raise ScheduleNotFound(name)
