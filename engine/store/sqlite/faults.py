"""What a SQLite error means to kjobs: a write to try again later, a broken store, or a bug.

``classify`` maps a ``sqlite3.Error`` by its primary result code: a full disk (``SQLITE_FULL``),
an I/O error, a lock held too long (``SQLITE_BUSY``/``SQLITE_LOCKED`` after the busy timeout)
and the like become ``StoreUnavailable`` (the write may succeed later: the engine retries, the
API answers 503); a damaged file (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) becomes
``StoreBroken`` (the engine stops); anything else (a constraint, an SQL error) is a bug and is
left as it is. ``Reader`` is the read connection with the same mapping on every read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, Final

import aiosqlite

from engine.core.errors import StoreBroken, StoreUnavailable
from engine.store.health import StoreHealth, caused_by

#: primary result codes of failures that may pass (https://sqlite.org/rescode.html)
TRANSIENT: Final = {
    5: "database is locked",  # SQLITE_BUSY
    6: "a table is locked",  # SQLITE_LOCKED
    7: "out of memory",  # SQLITE_NOMEM
    8: "the file is read-only now",  # SQLITE_READONLY
    10: "disk I/O error",  # SQLITE_IOERR
    13: "database or disk is full",  # SQLITE_FULL
    14: "unable to open a file of the database",  # SQLITE_CANTOPEN
    15: "database lock protocol error",  # SQLITE_PROTOCOL
}
BROKEN: Final = frozenset({11, 26})  #: SQLITE_CORRUPT, SQLITE_NOTADB


def classify(error: BaseException, health: StoreHealth, *, record: bool = True) -> BaseException:
    """The error kjobs raises for ``error`` (recorded in ``health`` unless ``record`` is
    False: a store that failed to open has no health to speak of), or ``error`` itself."""
    mapped = _mapped(error, health.name)
    return health.record(mapped) if record else mapped


def _mapped(error: BaseException, name: str) -> BaseException:
    if not isinstance(error, sqlite3.Error):
        return error
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in BROKEN:
        return caused_by(StoreBroken(f"store {name}: {error}"), error)
    if primary in TRANSIENT:
        return caused_by(StoreUnavailable(str(error) or TRANSIENT[primary]), error)
    return error


class Reader:
    """The read-only connection; a failed read raises what ``classify`` says."""

    def __init__(self, conn: aiosqlite.Connection, health: StoreHealth) -> None:
        self.conn = conn
        self._health = health

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> Iterable[sqlite3.Row]:
        """The rows of one statement."""
        try:
            return await self.conn.execute_fetchall(sql, parameters)
        except sqlite3.Error as exc:
            raise classify(exc, self._health) from exc
