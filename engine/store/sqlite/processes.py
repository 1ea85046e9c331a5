"""Step process groups on SQLite (``LeaseStore.record_process`` and friends), a part of
``SqliteLeases``: every node of the file sees the groups the others recorded."""

from __future__ import annotations

import sqlite3
from typing import Final

from engine.store.ports import StepProcess
from engine.store.sqlite.db import SqliteDatabase

COLUMNS: Final = (  #: the columns of ``step_processes``, in ``StepProcess`` order
    "host, pgid, job_id, step_id, attempt, started, node_id, node_pid, node_started, recorded"
)
RECORD: Final = f"INSERT OR REPLACE INTO step_processes ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
CLEAR: Final = "DELETE FROM step_processes WHERE host = ? AND pgid = ?"
OF_HOST: Final = f"SELECT {COLUMNS} FROM step_processes WHERE host = ? ORDER BY recorded, pgid"
OF_JOB: Final = f"""
SELECT {COLUMNS} FROM step_processes WHERE host = ? AND job_id = ? ORDER BY recorded, pgid
"""


class SqliteProcesses:
    """The ``step_processes`` table."""

    _db: SqliteDatabase

    async def record_process(self, process: StepProcess) -> None:
        """Record a step's process group (replacing a record of the same host and pgid)."""
        p = process
        args = (p.host, p.pgid, p.job_id, p.step_id, p.attempt, p.started, p.node_id,
                p.node_pid, p.node_started, p.recorded)  # fmt: skip

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(RECORD, args)

        await self._db.write_sync(op)

    async def clear_process(self, host: str, pgid: int) -> None:
        """Drop the group's record (nothing happens when there is none)."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(CLEAR, (host, pgid))

        await self._db.write_sync(op)

    async def step_processes(self, host: str, job_id: str | None = None) -> list[StepProcess]:
        """The recorded groups of ``host`` (of one job only, if given), oldest first."""
        if job_id is None:
            rows = await self._db.reader.execute_fetchall(OF_HOST, (host,))
        else:
            rows = await self._db.reader.execute_fetchall(OF_JOB, (host, job_id))
        return [from_row(tuple(row)) for row in rows]


def from_row(row: tuple[object, ...]) -> StepProcess:
    """A ``StepProcess`` from a row of ``COLUMNS`` (both SQL adapters)."""
    host, pgid, job_id, step_id, attempt, started, node_id, node_pid, node_started, recorded = row
    return StepProcess(
        str(host), _int(pgid), str(job_id), str(step_id), _int(attempt), str(started),
        str(node_id), _int(node_pid), str(node_started), _int(recorded),
    )  # fmt: skip


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value
