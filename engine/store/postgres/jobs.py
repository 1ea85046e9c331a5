"""A ``JobStore`` on PostgreSQL (``db.py`` owns the pool and the migrations).

A job is a summary row in ``jobs``, its definition (written once) and one row per step. A
write is one transaction: the lease check when the write carries one (the lease row is read
``FOR SHARE``, so no claim slips in between), the compare-and-set ``UPDATE jobs ... WHERE
version = $n``, the step rows that changed, outputs and segments, and a NOTIFY when the job is
READY (other nodes wake up at commit). Reads of several statements share one snapshot.

Faults (``faults.py``): a lost connection or a server shutting down is ``StoreUnavailable``.
A write whose connection dropped while it committed may have landed or not: ``save_job``
reads the job back and reports success when the stored summary is the one it wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from engine.core.errors import ConcurrentModification, JobNotFound, StoreUnavailable
from engine.core.jobs import Job, Segment
from engine.core.states import State
from engine.store.health import StoreHealth
from engine.store.ports import DEFAULT_MAX_OUTPUT_BYTES, JobFilter, JobWrite
from engine.store.postgres.db import NOTIFY_WORK, Conn, PostgresDatabase
from engine.store.postgres.leases import PostgresLeases, check_lease
from engine.store.postgres.ops import INSERT_OUTBOX, PostgresOps, outbox_row
from engine.store.postgres.streaming import PostgresStreamingStore
from engine.store.rules import check_write, fold, prepare_output
from engine.store.sqlite.codec import (
    decode_job,
    decode_uuids,
    encode_definition,
    encode_uuids,
    step_row,
    summary_row,
)

_COLUMNS: Final = (
    "id, project, cube, cube_key, state, priority, create_time, last_modified, version, "
    "start_time, end_time, interrupt_time, build_instance"
)
INSERT_JOB: Final = f"""
INSERT INTO jobs ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (id) DO NOTHING
"""
# The compare-and-set: matches no row when another write got there first.
UPDATE_JOB: Final = """
UPDATE jobs SET state = $2, priority = $3, last_modified = $4, version = $5, start_time = $6,
    end_time = $7, interrupt_time = $8, build_instance = $9
WHERE id = $1 AND version = $10
"""
INSERT_DEFINITION: Final = "INSERT INTO job_definitions (job_id, data) VALUES ($1, $2)"
INSERT_STEP: Final = """
INSERT INTO job_steps (job_id, sequence, state, start_time, end_time, wait_time, info, attempts,
                       retries, reattach)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
UPDATE_STEP: Final = """
UPDATE job_steps SET state = $3, start_time = $4, end_time = $5, wait_time = $6, info = $7,
    attempts = $8, retries = $9, reattach = $10
WHERE job_id = $1 AND sequence = $2
"""
DELETE_JOB: Final = "DELETE FROM jobs WHERE id = $1 AND version = $2"
DELETE_LEASE: Final = "DELETE FROM leases WHERE job_id = $1"
JOB_EXISTS: Final = "SELECT 1 FROM jobs WHERE id = $1"
SELECT_JOBS: Final = f"""
SELECT {_COLUMNS}, d.data FROM jobs JOIN job_definitions AS d ON d.job_id = jobs.id
WHERE jobs.id = ANY($1::text[])
"""
SELECT_STEPS: Final = """
SELECT job_id, sequence, state, start_time, end_time, wait_time, info, attempts, retries,
       reattach
FROM job_steps WHERE job_id = ANY($1::text[]) ORDER BY job_id, sequence
"""
SELECT_PAGE: Final = """
SELECT id FROM jobs WHERE {where} ORDER BY last_modified DESC, id DESC LIMIT {limit} OFFSET {offset}
"""
COUNT_JOBS: Final = "SELECT count(*) FROM jobs WHERE {where}"
COUNT_BY_STATE: Final = "SELECT state, count(*) FROM jobs GROUP BY state"
SELECT_IN_STATES: Final = """
SELECT id FROM jobs WHERE state = ANY($1::text[]) ORDER BY create_time, id
"""
DELETE_OUTPUTS: Final = "DELETE FROM step_outputs WHERE step_id = $1"
UPSERT_OUTPUT: Final = """
INSERT INTO step_outputs (step_id, attempt, job_id, text) VALUES ($1, $2, $3, $4)
ON CONFLICT (step_id, attempt) DO UPDATE SET text = EXCLUDED.text
"""
SELECT_OUTPUT: Final = "SELECT text FROM step_outputs WHERE step_id = $1 AND attempt = $2"
SELECT_ATTEMPTS: Final = "SELECT attempt FROM step_outputs WHERE step_id = $1 ORDER BY attempt"
UPSERT_SEGMENT: Final = """
INSERT INTO segments (uuid, cube, name, range_start, range_end, status, merged_from)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (uuid) DO UPDATE SET
    cube = EXCLUDED.cube, name = EXCLUDED.name, range_start = EXCLUDED.range_start,
    range_end = EXCLUDED.range_end, status = EXCLUDED.status, merged_from = EXCLUDED.merged_from
"""
DELETE_SEGMENT: Final = "DELETE FROM segments WHERE uuid = $1"
SELECT_SEGMENTS: Final = """
SELECT uuid, cube, name, range_start, range_end, status, merged_from FROM segments
WHERE cube = $1 ORDER BY range_start, range_end, uuid
"""


class PostgresJobStore(PostgresOps):
    """Batch jobs, step outputs and segments in a PostgreSQL database."""

    def __init__(
        self, db: PostgresDatabase, *, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    ) -> None:
        if max_output_bytes <= 0:
            raise ValueError(f"max_output_bytes must be positive: {max_output_bytes}")
        self.db = db
        self.max_output_bytes = max_output_bytes
        self.leases = PostgresLeases(db)  #: the leases of these jobs (fence ``save_job``)
        self.streaming = PostgresStreamingStore(db)  #: streaming jobs beside them

    @property
    def health(self) -> StoreHealth:
        """Whether the server accepts writes right now (``GET /health``)."""
        return self.db.health

    async def open(self) -> None:
        """Connect and migrate; idempotent per ``close``."""
        await self.db.open()

    async def close(self) -> None:
        """Release the connections (once every store on the database closed)."""
        await self.db.close()

    # -- writes -------------------------------------------------------------------------------

    async def save_job(self, write: JobWrite) -> Job:
        """Compare-and-set the job and apply its segment and output changes, all or nothing."""
        check_write(write)
        job, expected = write.job, write.expected_version
        base = job.version if expected is None else expected
        stored = job.evolve(version=base + 1)
        outputs = [
            (o.step_id, o.attempt, job.id, _text(prepare_output(o.text, self.max_output_bytes)))
            for o in write.outputs
        ]
        try:
            await self._write(write, stored, outputs)
        except StoreUnavailable:
            if await self._landed(stored):
                return stored
            raise
        return stored

    async def _write(self, write: JobWrite, stored: Job, outputs: list[tuple[Any, ...]]) -> None:
        job, expected = write.job, write.expected_version
        async with self.db.pool.acquire() as conn, conn.transaction():
            if write.lease is not None:
                await check_lease(conn, write.lease)
            if expected is None:
                await self._insert(conn, stored)
            else:
                await self._update(conn, stored, expected, write.base)
            for step_id in write.clear_outputs:
                await conn.execute(DELETE_OUTPUTS, step_id)
            if outputs:
                await conn.executemany(UPSERT_OUTPUT, outputs)
            await _write_segments(conn, write)
            if write.notification is not None:  # the outbox row commits with the job's end
                await conn.execute(INSERT_OUTBOX, *outbox_row(write.notification))
            if stored.state is State.READY:
                await conn.execute(NOTIFY_WORK, job.id)

    async def _landed(self, stored: Job) -> bool:
        """Whether a write whose commit went unanswered committed after all (its summary row
        is stored: the version and state it wrote). False when the server is still away."""
        try:
            jobs = await self._load([stored.id])
        except StoreUnavailable:
            return False
        return bool(jobs) and summary_row(jobs[0]) == summary_row(stored)

    async def _insert(self, conn: Conn, job: Job) -> None:
        if await conn.execute(INSERT_JOB, *summary_row(job)) != "INSERT 0 1":
            raise ConcurrentModification(job.id, job.version - 1)
        await conn.execute(INSERT_DEFINITION, job.id, encode_definition(job))
        await conn.executemany(INSERT_STEP, [step_row(s) for s in job.steps])

    async def _update(self, conn: Conn, job: Job, expected: int, base: Job | None) -> None:
        status = await conn.execute(
            UPDATE_JOB, job.id, job.state.value, job.priority, job.last_modified, job.version,
            job.start_time, job.end_time, job.interrupt_time, job.build_instance, expected,
        )  # fmt: skip
        if status != "UPDATE 1":
            raise ConcurrentModification(job.id, expected)
        # steps that are the very same (frozen) objects as in the base are unchanged
        old = base.steps if base is not None else ()
        changed = [s for s in job.steps if len(old) != len(job.steps) or old[s.sequence] is not s]
        if changed:
            await conn.executemany(UPDATE_STEP, [step_row(s) for s in changed])

    async def delete_job(self, job_id: str, expected_version: int) -> None:
        """Delete the job and its outputs (compare-and-set); ``JobNotFound`` if it is gone."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            if await conn.execute(DELETE_JOB, job_id, expected_version) == "DELETE 1":
                await conn.execute(DELETE_LEASE, job_id)
                return
            if await conn.fetchval(JOB_EXISTS, job_id) is None:
                raise JobNotFound(job_id)
            raise ConcurrentModification(job_id, expected_version)

    # -- reads --------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        """The stored job; ``JobNotFound`` when there is none."""
        jobs = await self._load([job_id])
        if not jobs:
            raise JobNotFound(job_id)
        return jobs[0]

    async def _load(self, ids: Sequence[str], conn: Conn | None = None) -> list[Job]:
        """The jobs of ``ids`` that exist, in that order, from one snapshot."""
        if conn is None:
            async with (
                self.db.pool.acquire(writes=False) as own,
                own.transaction(isolation="repeatable_read", readonly=True),
            ):
                return await self._load(ids, own)
        heads = {row["id"]: row for row in await conn.fetch(SELECT_JOBS, list(ids))}
        steps: dict[str, list[Any]] = {}
        for row in await conn.fetch(SELECT_STEPS, list(heads)):
            steps.setdefault(row["job_id"], []).append(row)
        return [
            decode_job(tuple(heads[i])[:-1], heads[i]["data"], steps.get(i, []))
            for i in ids
            if i in heads
        ]

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching ``query``, newest ``last_modified`` first (then by id, descending)."""
        where, params = _where(query)
        limit = "ALL" if query.limit is None else str(max(0, query.limit))
        sql = SELECT_PAGE.format(where=where, limit=limit, offset=max(0, query.offset))
        async with (
            self.db.pool.acquire(writes=False) as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            ids = [row[0] for row in await conn.fetch(sql, *params)]
            return await self._load(ids, conn)

    async def count_jobs(self, query: JobFilter) -> int:
        """How many jobs match ``query`` (paging ignored)."""
        where, params = _where(query)
        return int(await self.db.pool.fetchval(COUNT_JOBS.format(where=where), *params))

    async def count_by_state(self) -> dict[State, int]:
        """Number of jobs in each state that has any."""
        rows = await self.db.pool.fetch(COUNT_BY_STATE)
        return {State(row[0]): int(row[1]) for row in rows}

    async def jobs_in_states(self, states: frozenset[State]) -> list[Job]:
        """Every job in one of ``states``, oldest first (create time, then id)."""
        if not states:
            return []
        async with (
            self.db.pool.acquire(writes=False) as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await conn.fetch(SELECT_IN_STATES, sorted(s.value for s in states))
            return await self._load([row[0] for row in rows], conn)

    async def read_output(self, step_id: str, attempt: int) -> str | None:
        """The stored output of one attempt, None when nothing was stored."""
        text = await self.db.pool.fetchval(SELECT_OUTPUT, step_id, attempt)
        return None if text is None else str(text)

    async def output_attempts(self, step_id: str) -> list[int]:
        """Attempt numbers that have stored output, ascending."""
        return [int(row[0]) for row in await self.db.pool.fetch(SELECT_ATTEMPTS, step_id)]

    async def delete_segments(self, uuids: Sequence[str]) -> None:
        """Delete these segments, in one transaction (one already gone is skipped)."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            await conn.executemany(DELETE_SEGMENT, [(uuid,) for uuid in uuids])

    async def segments(self, cube: str) -> list[Segment]:
        """The cube's segments, by range start (then end, then uuid)."""
        rows = await self.db.pool.fetch(SELECT_SEGMENTS, cube)
        return [
            Segment(uuid, cube_, name, start, end, status, decode_uuids(merged))
            for uuid, cube_, name, start, end, status, merged in rows
        ]


async def _write_segments(conn: Conn, write: JobWrite) -> None:
    change = write.segments
    if change is None:
        return
    if change.upsert:
        rows = [
            (s.uuid, s.cube, s.name, s.start, s.end, s.status, encode_uuids(s.merged_from))
            for s in change.upsert
        ]
        await conn.executemany(UPSERT_SEGMENT, rows)
    if change.delete:
        await conn.executemany(DELETE_SEGMENT, [(uuid,) for uuid in change.delete])


def _text(text: str) -> str:
    # PostgreSQL text cannot hold NUL: it is shown as U+FFFD, as undecodable bytes are
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _where(query: JobFilter) -> tuple[str, list[Any]]:
    terms: list[str] = []
    params: list[Any] = []

    def arg(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if query.cube is not None:
        terms.append(f"strpos(cube_key, {arg(fold(query.cube))}) > 0")
    if query.project is not None:
        terms.append(f"project = {arg(query.project)}")
    if query.states is not None:
        terms.append(f"state = ANY({arg(sorted(s.value for s in query.states))}::text[])")
    if query.modified_since is not None:
        terms.append(f"last_modified >= {arg(query.modified_since)}")
    return (" AND ".join(terms) or "TRUE"), params
