"""A ``JobStore`` on SQLite (see ``db.py`` for connections, group commit and durability).

Steps as rows (migration 0003, ``codec.py``): a job is its summary row in ``jobs``, its
definition in ``job_definitions`` (written once, at submit) and a row per step in ``job_steps``.
A step transition is one guarded ``UPDATE`` of the summary (the compare-and-set) and one small
``UPDATE`` per step that changed (two at a step boundary), committed together with whatever
else is queued at the moment. Output and segment statements run only when the write carries some.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from engine.core.errors import ConcurrentModification, JobNotFound
from engine.core.jobs import Job, Segment
from engine.core.states import State
from engine.store.ports import DEFAULT_MAX_OUTPUT_BYTES, JobFilter, JobWrite, SegmentChange
from engine.store.rules import check_write, fold, prepare_output
from engine.store.sqlite.base import SqliteStoreBase
from engine.store.sqlite.codec import (
    SUMMARY_COLUMNS,
    decode_job,
    decode_uuids,
    encode_definition,
    encode_uuids,
    step_row,
    summary_row,
)
from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.leases import (
    DELETE_LEASE,
    LEASE_HELD,
    SqliteLeases,
    check_lease,
    lease_row,
)
from engine.store.sqlite.ops import SqliteOps, outbox_statement
from engine.store.sqlite.segments import SegmentCache

# -- statements -------------------------------------------------------------------------------

INSERT_JOB: Final = f"""
INSERT INTO jobs (id, project, cube, cube_key, {SUMMARY_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
"""
INSERT_DEFINITION: Final = "INSERT INTO job_definitions (job_id, data) VALUES (?, ?)"
INSERT_STEP: Final = """
INSERT INTO job_steps (job_id, sequence, state, start_time, end_time, wait_time, info, attempts,
                       retries, reattach)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# The compare-and-set: matches no row when another write got there first.
UPDATE_JOB: Final = """
UPDATE jobs SET state = ?, priority = ?, last_modified = ?, version = ?, start_time = ?,
                end_time = ?, interrupt_time = ?, build_instance = ?
WHERE id = ? AND version = ?
"""
UPDATE_STEP: Final = """
UPDATE job_steps SET state = ?, start_time = ?, end_time = ?, wait_time = ?, info = ?,
                     attempts = ?, retries = ?, reattach = ?
WHERE job_id = ? AND sequence = ?
"""
# A runner's write: the same, and the lease must still be the job's current one.
UPDATE_JOB_LEASED: Final = f"{UPDATE_JOB.rstrip()} AND EXISTS ({LEASE_HELD})\n"
DELETE_JOB: Final = "DELETE FROM jobs WHERE id = ? AND version = ?"  # the rest cascades
JOB_EXISTS: Final = "SELECT 1 FROM jobs WHERE id = ?"
_SELECT_SUMMARY: Final = f"SELECT jobs.id, project, cube, cube_key, {SUMMARY_COLUMNS}, def.data"
SELECT_JOB: Final = f"""
{_SELECT_SUMMARY} FROM jobs JOIN job_definitions AS def ON def.job_id = jobs.id WHERE jobs.id = ?
"""
SELECT_STEPS: Final = """
SELECT job_id, sequence, state, start_time, end_time, wait_time, info, attempts, retries,
       reattach
FROM job_steps WHERE job_id IN ({marks}) ORDER BY job_id, sequence
"""
# A page is chosen in the covering index (jobs_by_modified) before any other column is read.
SELECT_PAGE: Final = f"""
{_SELECT_SUMMARY} FROM (
    SELECT id FROM jobs WHERE {{where}}
    ORDER BY last_modified DESC, id DESC LIMIT ? OFFSET ?
) AS page
JOIN jobs ON jobs.id = page.id
JOIN job_definitions AS def ON def.job_id = page.id
ORDER BY jobs.last_modified DESC, jobs.id DESC
"""
COUNT_JOBS: Final = "SELECT count(*) FROM jobs WHERE {where}"
COUNT_BY_STATE: Final = "SELECT state, count(*) FROM jobs GROUP BY state"
SELECT_IN_STATES: Final = f"""
{_SELECT_SUMMARY} FROM jobs JOIN job_definitions AS def ON def.job_id = jobs.id
WHERE state IN ({{marks}}) ORDER BY create_time, jobs.id
"""
_STEP_IDS_PER_QUERY: Final = 500  # bound on host parameters of one SELECT_STEPS

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


class SqliteJobStore(SqliteOps, SqliteStoreBase):
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
        self._segments = SegmentCache()
        super().__init__(target, synchronous=synchronous)
        # another kjobs on the file may have changed segments: seen at this one's next write
        self._db.others.listeners.append(self._segments.clear)
        self.leases = SqliteLeases(self._db)  #: the leases of these jobs (fence ``save_job``)

    # -- writes -------------------------------------------------------------------------------

    async def save_job(self, write: JobWrite) -> Job:
        """Compare-and-set the job and apply its segment and output changes, all or nothing."""
        check_write(write)
        job = write.job
        expected = write.expected_version
        base = job.version if expected is None else expected  #: the version the CAS guards
        stored = job.evolve(version=base + 1)
        statements = _job_statements(write, stored)
        statements += _extra_statements(write, self.max_output_bytes)
        first_sql, first_row = statements[0][0], statements[0][1][0]
        rest = statements[1:]
        lease = write.lease

        if lease is not None and first_sql is UPDATE_JOB:  # fenced by the guarded UPDATE
            first_sql, first_row = UPDATE_JOB_LEASED, (*first_row, *lease_row(lease))

        def op(conn: sqlite3.Connection) -> Job:
            if lease is not None and first_sql is not UPDATE_JOB_LEASED:
                check_lease(conn, lease)  # a runner's write: fenced before anything is written
            if conn.execute(first_sql, first_row).rowcount != 1:
                if lease is not None:
                    check_lease(conn, lease)  # LeaseLost rather than a lost race
                raise ConcurrentModification(job.id, base)
            for sql, rows in rest:
                conn.executemany(sql, rows)
            return stored

        stored = await self._db.write_sync(op)
        if write.segments is not None:
            self._segments.committed(write.segments)
        return stored

    async def delete_job(self, job_id: str, expected_version: int) -> None:
        """Delete the job and its outputs (compare-and-set); ``JobNotFound`` if it is gone."""

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(DELETE_JOB, (job_id, expected_version)).rowcount == 1:
                conn.execute(DELETE_LEASE, (job_id,))
                return
            if conn.execute(JOB_EXISTS, (job_id,)).fetchone() is None:
                raise JobNotFound(job_id)
            raise ConcurrentModification(job_id, expected_version)

        await self._db.write_sync(op)

    # -- reads --------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        """The stored job; ``JobNotFound`` when there is none."""
        jobs = await self._read_jobs(SELECT_JOB, (job_id,))
        if not jobs:
            raise JobNotFound(job_id)
        return jobs[0]

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching ``query``, newest ``last_modified`` first (then by id, descending)."""
        where, params = _where(query)
        limit = _NO_LIMIT if query.limit is None else max(0, query.limit)
        sql = SELECT_PAGE.format(where=where)
        return await self._read_jobs(sql, (*params, limit, max(0, query.offset)))

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
        return await self._read_jobs(sql, values)

    async def read_output(self, step_id: str, attempt: int) -> str | None:
        """The stored output of one attempt, None when nothing was stored."""
        rows = list(await self._db.reader.execute_fetchall(SELECT_OUTPUT, (step_id, attempt)))
        return str(rows[0][0]) if rows else None

    async def output_attempts(self, step_id: str) -> list[int]:
        """Attempt numbers that have stored output, ascending."""
        rows = await self._db.reader.execute_fetchall(SELECT_ATTEMPTS, (step_id,))
        return [int(row[0]) for row in rows]

    async def segments(self, cube: str) -> list[Segment]:
        """The cube's segments, by range start (then end, then uuid); kept in memory."""
        return await self._segments.get(cube, self._load_segments)

    async def _load_segments(self, cube: str) -> list[Segment]:
        rows = await self._db.reader.execute_fetchall(SELECT_SEGMENTS, (cube,))
        return [
            Segment(uuid, cube_, name, start, end, status, decode_uuids(merged))
            for uuid, cube_, name, start, end, status, merged in rows
        ]

    async def delete_segments(self, uuids: Sequence[str]) -> None:
        """Delete these segments, in one transaction."""
        rows = [(uuid,) for uuid in uuids]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(DELETE_SEGMENT, rows)

        await self._db.write_sync(op)
        self._segments.committed(SegmentChange(delete=tuple(uuids)))

    async def _read_jobs(self, sql: str, params: Sequence[Any]) -> list[Job]:
        """The jobs whose summary and definition rows ``sql`` selects, with their steps."""
        reader = self._db.reader
        heads = list(await reader.execute_fetchall(sql, params))
        steps: dict[str, list[Any]] = {row[0]: [] for row in heads}
        ids = list(steps)
        for at in range(0, len(ids), _STEP_IDS_PER_QUERY):
            chunk = ids[at : at + _STEP_IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            for row in await reader.execute_fetchall(SELECT_STEPS.format(marks=marks), chunk):
                steps[row[0]].append(row)
        # a job dropped between the two reads has no step rows left: it is gone, not broken
        return [decode_job(head[:-1], head[-1], steps[head[0]]) for head in heads if steps[head[0]]]


Statements = list[tuple[str, list[tuple[Any, ...]]]]


def _job_statements(write: JobWrite, stored: Job) -> Statements:
    """The job's own statements, the guarded one first: a new job's rows, or its summary and
    the steps that changed since ``write.base``."""
    if write.expected_version is None:
        return [
            (INSERT_JOB, [summary_row(stored)]),
            (INSERT_DEFINITION, [(stored.id, encode_definition(stored))]),
            (INSERT_STEP, [step_row(s) for s in stored.steps]),
        ]
    j = stored
    guarded = (j.state.value, j.priority, j.last_modified, j.version, j.start_time, j.end_time,
               j.interrupt_time, j.build_instance, j.id, write.expected_version)  # fmt: skip
    old = write.base.steps if write.base is not None else None
    rows: list[tuple[Any, ...]] = []
    for index, step in enumerate(stored.steps):
        if old is None or old[index] is not step:
            row = step_row(step)
            rows.append((*row[2:], row[0], row[1]))
    statements: Statements = [(UPDATE_JOB, [guarded])]
    if rows:
        statements.append((UPDATE_STEP, rows))
    return statements


def _extra_statements(write: JobWrite, max_bytes: int) -> Statements:
    """The statements after the job's own, in order; none for a bare step transition."""
    extra: Statements = []
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
    if write.notification is not None:
        extra.append(outbox_statement(write.notification))
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
