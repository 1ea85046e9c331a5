"""A ``JobStore`` on SQLite (see ``db.py`` for connections, group commit and durability).

A job is one row of ``jobs``: the whole record as JSON (``codec.py``) plus the columns that
filters, ordering and the compare-and-set need. A step transition is one ``save_job`` = one
guarded ``UPDATE`` of that row, committed together with whatever else is queued at the moment.
Output and segment statements run only when the write carries some.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from engine.core.errors import ConcurrentModification, JobNotFound
from engine.core.jobs import Job, Segment
from engine.core.states import State
from engine.store.ports import DEFAULT_MAX_OUTPUT_BYTES, JobFilter, JobWrite
from engine.store.rules import check_write, fold, prepare_output
from engine.store.sqlite.codec import decode_job, decode_uuids, encode_job, encode_uuids
from engine.store.sqlite.db import SqliteDatabase, SqliteStoreBase

# -- statements -------------------------------------------------------------------------------

INSERT_JOB: Final = """
INSERT INTO jobs (id, project, cube, cube_key, state, priority, create_time, last_modified,
                  version, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
"""
# The compare-and-set: matches no row when another write got there first.
UPDATE_JOB: Final = """
UPDATE jobs SET state = ?, priority = ?, last_modified = ?, version = ?, data = ?
WHERE id = ? AND version = ?
"""
DELETE_JOB: Final = "DELETE FROM jobs WHERE id = ? AND version = ?"  # outputs cascade
JOB_EXISTS: Final = "SELECT 1 FROM jobs WHERE id = ?"
SELECT_JOB: Final = "SELECT data FROM jobs WHERE id = ?"
# A page is chosen in the covering index (jobs_by_modified) before any `data` is read.
SELECT_PAGE: Final = """
SELECT jobs.data FROM (
    SELECT id FROM jobs WHERE {where}
    ORDER BY last_modified DESC, id DESC LIMIT ? OFFSET ?
) AS page
JOIN jobs ON jobs.id = page.id
ORDER BY jobs.last_modified DESC, jobs.id DESC
"""
COUNT_JOBS: Final = "SELECT count(*) FROM jobs WHERE {where}"
COUNT_BY_STATE: Final = "SELECT state, count(*) FROM jobs GROUP BY state"
SELECT_IN_STATES: Final = """
SELECT data FROM jobs WHERE state IN ({marks}) ORDER BY create_time, id
"""

UPSERT_OUTPUT: Final = """
INSERT INTO step_outputs (step_id, attempt, job_id, text) VALUES (?, ?, ?, ?)
ON CONFLICT (step_id, attempt) DO UPDATE SET text = excluded.text
"""
DELETE_OUTPUTS: Final = "DELETE FROM step_outputs WHERE step_id = ?"
SELECT_OUTPUT: Final = "SELECT text FROM step_outputs WHERE step_id = ? AND attempt = ?"
SELECT_ATTEMPTS: Final = "SELECT attempt FROM step_outputs WHERE step_id = ? ORDER BY attempt"

UPSERT_SEGMENT: Final = """
INSERT INTO segments (uuid, cube, name, range_start, range_end, status, merged_from)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (uuid) DO UPDATE SET
    cube = excluded.cube, name = excluded.name, range_start = excluded.range_start,
    range_end = excluded.range_end, status = excluded.status, merged_from = excluded.merged_from
"""
DELETE_SEGMENT: Final = "DELETE FROM segments WHERE uuid = ?"
SELECT_SEGMENTS: Final = """
SELECT uuid, cube, name, range_start, range_end, status, merged_from FROM segments
WHERE cube = ? ORDER BY range_start, range_end, uuid
"""

_NO_LIMIT: Final = -1  # SQLite: LIMIT -1 = no limit (an OFFSET needs a LIMIT)


class SqliteJobStore(SqliteStoreBase):
    """Batch jobs, step outputs and segments in a SQLite file."""

    def __init__(
        self,
        target: str | os.PathLike[str] | SqliteDatabase,
        *,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        synchronous: str = "NORMAL",
    ) -> None:
        """Store on ``target``: a file path (the store owns its database), or a shared
        ``SqliteDatabase`` (opened here if needed, left open by ``close``: its owner closes it).
        """
        if max_output_bytes <= 0:
            raise ValueError(f"max_output_bytes must be positive: {max_output_bytes}")
        self.max_output_bytes = max_output_bytes
        super().__init__(target, synchronous=synchronous)

    # -- writes -------------------------------------------------------------------------------

    async def save_job(self, write: JobWrite) -> Job:
        """Compare-and-set the job and apply its segment and output changes, all or nothing."""
        check_write(write)
        job = write.job
        expected = write.expected_version
        base = job.version if expected is None else expected  #: the version the CAS guards
        stored = job.evolve(version=base + 1)
        data = encode_job(stored)
        if expected is None:
            first: tuple[str, tuple[Any, ...]] = (
                INSERT_JOB,
                (job.id, job.project, job.cube, fold(job.cube), job.state.value, job.priority,
                 job.create_time, job.last_modified, stored.version, data),
            )  # fmt: skip
        else:
            first = (
                UPDATE_JOB,
                (job.state.value, job.priority, job.last_modified, stored.version, data, job.id,
                 expected),
            )  # fmt: skip
        extra = _extra_statements(write, self.max_output_bytes)

        def op(conn: sqlite3.Connection) -> Job:
            if conn.execute(*first).rowcount != 1:
                raise ConcurrentModification(job.id, base)
            for sql, rows in extra:
                conn.executemany(sql, rows)
            return stored

        return await self._db.write_sync(op)

    async def delete_job(self, job_id: str, expected_version: int) -> None:
        """Delete the job and its outputs (compare-and-set); ``JobNotFound`` if it is gone."""

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(DELETE_JOB, (job_id, expected_version)).rowcount == 1:
                return
            if conn.execute(JOB_EXISTS, (job_id,)).fetchone() is None:
                raise JobNotFound(job_id)
            raise ConcurrentModification(job_id, expected_version)

        await self._db.write_sync(op)

    # -- reads --------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        """The stored job; ``JobNotFound`` when there is none."""
        rows = list(await self._db.reader.execute_fetchall(SELECT_JOB, (job_id,)))
        if not rows:
            raise JobNotFound(job_id)
        return decode_job(rows[0][0])

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching ``query``, newest ``last_modified`` first (then by id, descending)."""
        where, params = _where(query)
        limit = _NO_LIMIT if query.limit is None else max(0, query.limit)
        sql = SELECT_PAGE.format(where=where)
        rows = await self._db.reader.execute_fetchall(sql, (*params, limit, max(0, query.offset)))
        return [decode_job(row[0]) for row in rows]

    async def count_jobs(self, query: JobFilter) -> int:
        """How many jobs match ``query`` (paging ignored)."""
        where, params = _where(query)
        rows = list(await self._db.reader.execute_fetchall(COUNT_JOBS.format(where=where), params))
        return int(rows[0][0])

    async def count_by_state(self) -> dict[State, int]:
        """Number of jobs in each state that has any."""
        rows = await self._db.reader.execute_fetchall(COUNT_BY_STATE)
        return {State(state): count for state, count in rows}

    async def jobs_in_states(self, states: frozenset[State]) -> list[Job]:
        """Every job in one of ``states``, oldest first (create time, then id)."""
        if not states:
            return []
        values = sorted(s.value for s in states)
        sql = SELECT_IN_STATES.format(marks=", ".join("?" * len(values)))
        rows = await self._db.reader.execute_fetchall(sql, values)
        return [decode_job(row[0]) for row in rows]

    async def read_output(self, step_id: str, attempt: int) -> str | None:
        """The stored output of one attempt, None when nothing was stored."""
        rows = list(await self._db.reader.execute_fetchall(SELECT_OUTPUT, (step_id, attempt)))
        return str(rows[0][0]) if rows else None

    async def output_attempts(self, step_id: str) -> list[int]:
        """Attempt numbers that have stored output, ascending."""
        rows = await self._db.reader.execute_fetchall(SELECT_ATTEMPTS, (step_id,))
        return [int(row[0]) for row in rows]

    async def segments(self, cube: str) -> list[Segment]:
        """The cube's segments, by range start (then end, then uuid)."""
        rows = await self._db.reader.execute_fetchall(SELECT_SEGMENTS, (cube,))
        return [
            Segment(uuid, cube_, name, start, end, status, decode_uuids(merged))
            for uuid, cube_, name, start, end, status, merged in rows
        ]


def _extra_statements(write: JobWrite, max_bytes: int) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements after the job's own, in order; none for a bare step transition."""
    extra: list[tuple[str, list[tuple[Any, ...]]]] = []
    if write.clear_outputs:
        extra.append((DELETE_OUTPUTS, [(step_id,) for step_id in write.clear_outputs]))
    if write.outputs:
        rows: list[tuple[Any, ...]] = [
            (o.step_id, o.attempt, write.job.id, prepare_output(o.text, max_bytes))
            for o in write.outputs
        ]
        extra.append((UPSERT_OUTPUT, rows))
    change = write.segments
    if change is not None and change.upsert:
        extra.append((UPSERT_SEGMENT, [_segment_row(s) for s in change.upsert]))
    if change is not None and change.delete:
        extra.append((DELETE_SEGMENT, [(uuid,) for uuid in change.delete]))
    return extra


def _segment_row(s: Segment) -> tuple[Any, ...]:
    return (s.uuid, s.cube, s.name, s.start, s.end, s.status, encode_uuids(s.merged_from))


def _where(query: JobFilter) -> tuple[str, Sequence[Any]]:
    """The WHERE clause of ``query`` and its parameters."""
    terms: list[str] = []
    params: list[Any] = []
    if query.cube is not None:
        terms.append("instr(cube_key, ?) > 0")
        params.append(fold(query.cube))
    if query.project is not None:
        terms.append("project = ?")
        params.append(query.project)
    if query.states is not None:
        values = sorted(s.value for s in query.states)
        terms.append(f"state IN ({', '.join('?' * len(values))})" if values else "0")
        params.extend(values)
    if query.modified_since is not None:
        terms.append("last_modified >= ?")
        params.append(query.modified_since)
    return (" AND ".join(terms) or "1"), params
