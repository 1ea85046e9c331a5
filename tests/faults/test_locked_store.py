"""A store locked by another process for longer than the busy timeout: the write is refused
(``StoreUnavailable``, a 503 over HTTP), the store's health is ``degraded``; once the lock is
gone the same write goes through and the health is ``ok`` again. A step's process record that
the store refuses is waited for (the command stays at its gate), not a crash of the step.
Real SQLite, a real lock."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import anyio
import pytest

from engine.batch.orphans import StepProcesses
from engine.clock import SystemClock
from engine.core.errors import StoreUnavailable
from engine.store.commit import WriteRetry
from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.leases import SqliteLeases


async def test_a_lock_held_too_long_is_a_refused_write_then_a_retried_one(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite"
    db = SqliteDatabase(path, busy_timeout_ms=100, synchronous="FULL")  # FULL: via the thread
    await db.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailable, match="database is locked"):
            await db.write_sync(lambda conn: conn.execute("PRAGMA user_version = 41"))
        assert db.health.status == "degraded"

        tries = []
        retry = WriteRetry(lambda: (tries.append(1), other.rollback()), first_s=0.01)
        await retry.until_accepted(
            "test", lambda: db.write_sync(lambda conn: conn.execute("PRAGMA user_version = 42"))
        )
        assert len(tries) == 1  # refused once, released, accepted
        assert db.health.status == "ok"
        assert other.execute("PRAGMA user_version").fetchone()[0] == 42
    finally:
        other.close()
        await db.close()


async def test_a_refused_step_process_record_waits_for_the_store(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite"
    db = SqliteDatabase(path, busy_timeout_ms=50, synchronous="FULL")
    await db.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        leases = SqliteLeases(db)
        refused: list[int] = []
        refused_twice = anyio.Event()

        def on_retry() -> None:
            refused.append(1)
            if len(refused) == 2:
                refused_twice.set()

        retry = WriteRetry(on_retry, first_s=0.01)
        processes = StepProcesses(leases, SystemClock(), "n1", retry)
        other.execute("BEGIN IMMEDIATE")  # the store refuses writes when the step starts
        recorded = anyio.Event()

        async def start_step() -> None:
            await processes.recorder("job-1", "job-1-00", 0).started(os.getpid())
            recorded.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(start_step)
            with anyio.fail_after(5):
                await refused_twice.wait()
            assert not recorded.is_set()  # still at the gate, not failed
            other.rollback()
            with anyio.fail_after(5):
                await recorded.wait()
        rows = await leases.step_processes(processes.host, "job-1")
        assert [(r.pgid, r.step_id, r.node_id) for r in rows] == [(os.getpid(), "job-1-00", "n1")]
    finally:
        other.close()
        await db.close()
