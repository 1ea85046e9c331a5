"""Step process groups on PostgreSQL (``LeaseStore.record_process`` and friends), a part of
``PostgresLeases``; the SQL and row shape are SQLite's (``engine.store.sqlite.processes``)."""

from __future__ import annotations

from typing import Final

from engine.store.ports import StepProcess
from engine.store.postgres.db import PostgresDatabase
from engine.store.sqlite.processes import COLUMNS, from_row

RECORD: Final = f"""
INSERT INTO step_processes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (host, pgid) DO UPDATE SET
    job_id = EXCLUDED.job_id, step_id = EXCLUDED.step_id, attempt = EXCLUDED.attempt,
    started = EXCLUDED.started, node_id = EXCLUDED.node_id, node_pid = EXCLUDED.node_pid,
    node_started = EXCLUDED.node_started, recorded = EXCLUDED.recorded
"""
CLEAR: Final = "DELETE FROM step_processes WHERE host = $1 AND pgid = $2"
OF_HOST: Final = f"SELECT {COLUMNS} FROM step_processes WHERE host = $1 ORDER BY recorded, pgid"
OF_JOB: Final = f"""
SELECT {COLUMNS} FROM step_processes WHERE host = $1 AND job_id = $2 ORDER BY recorded, pgid
"""


class PostgresProcesses:
    """The ``step_processes`` table."""

    _db: PostgresDatabase

    async def record_process(self, process: StepProcess) -> None:
        """Record a step's process group (replacing a record of the same host and pgid)."""
        p = process
        await self._db.pool.execute(
            RECORD, p.host, p.pgid, p.job_id, p.step_id, p.attempt, p.started, p.node_id,
            p.node_pid, p.node_started, p.recorded,
        )  # fmt: skip

    async def clear_process(self, host: str, pgid: int) -> None:
        """Drop the group's record (nothing happens when there is none)."""
        await self._db.pool.execute(CLEAR, host, pgid)

    async def step_processes(self, host: str, job_id: str | None = None) -> list[StepProcess]:
        """The recorded groups of ``host`` (of one job only, if given), oldest first."""
        if job_id is None:
            rows = await self._db.pool.fetch(OF_HOST, host)
        else:
            rows = await self._db.pool.fetch(OF_JOB, host, job_id)
        return [from_row(tuple(row)) for row in rows]
