"""The SQLite side of ``engine.ops``: the notification outbox, the retention sweep, schedules.

A mixin of ``SqliteJobStore`` (it shares the job store's database); ``outbox_statement`` is the
insert that ``save_job`` adds to a write that ends a job.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any, Final

from engine.core.errors import ConcurrentModification, ScheduleNotFound
from engine.core.notifications import JobEnd
from engine.core.schedules import Schedule
from engine.core.states import SWEPT_STATES, CatchUp, Overlap
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

INSERT_SCHEDULE: Final = """
INSERT INTO schedules (name, version, data) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING
"""
UPDATE_SCHEDULE: Final = "UPDATE schedules SET version = ?, data = ? WHERE name = ? AND version = ?"
SELECT_SCHEDULE: Final = "SELECT data FROM schedules WHERE name = ?"
SELECT_SCHEDULES: Final = "SELECT data FROM schedules ORDER BY name"
DELETE_SCHEDULE: Final = "DELETE FROM schedules WHERE name = ?"


def encode_schedule(schedule: Schedule) -> str:
    """The stored JSON of a schedule."""
    return json.dumps(dataclasses.asdict(schedule), separators=(",", ":"))


def decode_schedule(data: str) -> Schedule:
    """The schedule of its stored JSON."""
    fields = json.loads(data)
    fields["overlap"] = Overlap(fields["overlap"])
    fields["catch_up"] = CatchUp(fields["catch_up"])
    return Schedule(**fields)


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
        """Delete one batch of old FINISHED / DISCARDED jobs (one short transaction).

        Its cascades touch a big store all over: it commits on the writer's thread, so the
        event loop (the API, the runners) goes on meanwhile.
        """
        sql = SWEEP_JOBS.format(marks=", ".join("?" * len(_SWEPT)))

        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(sql, (ended_before, *_SWEPT, max(0, limit))).fetchall()
            return [str(row[0]) for row in rows]

        return await self._db.write_sync(op, inline=False)

    async def save_schedule(self, schedule: Schedule, expected_version: int | None) -> Schedule:
        """Insert (``expected_version`` None) or compare-and-set update."""
        stored = schedule.evolve(version=(expected_version or 0) + 1)
        data = encode_schedule(stored)

        def op(conn: sqlite3.Connection) -> Schedule:
            if expected_version is None:
                cursor = conn.execute(INSERT_SCHEDULE, (stored.name, stored.version, data))
            else:
                cursor = conn.execute(
                    UPDATE_SCHEDULE, (stored.version, data, stored.name, expected_version)
                )
            if cursor.rowcount != 1:
                raise ConcurrentModification(schedule.name, expected_version or 0)
            return stored

        return await self._db.write_sync(op)

    async def get_schedule(self, name: str) -> Schedule:
        """The stored schedule; ``ScheduleNotFound`` when there is none."""
        rows = list(await self._db.reader.execute_fetchall(SELECT_SCHEDULE, (name,)))
        if not rows:
            raise ScheduleNotFound(name)
        return decode_schedule(rows[0][0])

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        rows = await self._db.reader.execute_fetchall(SELECT_SCHEDULES)
        return [decode_schedule(row[0]) for row in rows]

    async def delete_schedule(self, name: str) -> None:
        """Delete the schedule; ``ScheduleNotFound`` when there is none."""

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(DELETE_SCHEDULE, (name,)).rowcount != 1:
                raise ScheduleNotFound(name)

        await self._db.write_sync(op)
