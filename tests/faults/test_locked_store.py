"""A store locked by another process for longer than the busy timeout: the write is refused
(``StoreUnavailable``, a 503 over HTTP), the store's health is ``degraded``; once the lock is
gone the same write goes through and the health is ``ok`` again. Real SQLite, a real lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.core.errors import StoreUnavailable
from engine.store.commit import WriteRetry
from engine.store.sqlite.db import SqliteDatabase


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
