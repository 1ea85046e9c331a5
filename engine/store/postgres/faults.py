"""What a PostgreSQL error means to kjobs: a write to try again later, a broken store, or a bug.

``classify`` maps an error by its SQLSTATE class: a lost or refused connection (class 08, an
``OSError`` while connecting, a closed connection), a server that shuts down or restarts
(57P01-57P03), a pooled connection caught while the server's goodbye is still being read
(asyncpg's ``InternalClientError``: "another operation (2) is in progress") and exhausted
resources (class 53: disk full, out of memory, too many connections) become
``StoreUnavailable`` (the engine retries, the API answers 503, ``/health`` says ``degraded``);
damaged data (XX001, XX002) becomes ``StoreBroken`` (the engine stops); anything else (a
constraint, an SQL error) is a bug and is left as it is. ``GuardedPool`` is the pool every
PostgreSQL store uses, with that mapping on every call and a committed write reported to the
store's health (``ok`` again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, NoReturn

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from engine.core.errors import StoreBroken, StoreError, StoreUnavailable
from engine.store.health import StoreHealth, caused_by

#: SQLSTATEs of a server going away: admin_shutdown, crash_shutdown, cannot_connect_now
SHUTTING_DOWN: Final = frozenset({"57P01", "57P02", "57P03"})
#: SQLSTATE classes of failures that may pass: connection exception, insufficient resources
TRANSIENT_CLASSES: Final = frozenset({"08", "53"})
BROKEN: Final = frozenset({"XX001", "XX002"})  #: data_corrupted, index_corrupted


def classify(error: BaseException, health: StoreHealth) -> BaseException:
    """The error kjobs raises for ``error`` (recorded in ``health``), or ``error`` itself."""
    return health.record(error if isinstance(error, StoreError) else _mapped(error, health.name))


def _mapped(error: BaseException, name: str) -> BaseException:
    if _broken(error):
        return caused_by(StoreBroken(f"store {name}: {error}"), error)
    if _transient(error):  # StoreUnavailable is an OSError too: kjobs' errors never get here
        return caused_by(StoreUnavailable(f"PostgreSQL: {error}".rstrip(": ")), error)
    return error


def _sqlstate(error: BaseException) -> str:
    return str(getattr(error, "sqlstate", "") or "")


def _broken(error: BaseException) -> bool:
    return isinstance(error, asyncpg.PostgresError) and _sqlstate(error) in BROKEN


def _transient(error: BaseException) -> bool:
    if isinstance(error, asyncpg.PostgresError):
        state = _sqlstate(error)
        return state in SHUTTING_DOWN or state[:2] in TRANSIENT_CLASSES
    if isinstance(error, asyncpg.InterfaceError):  # a pooled connection the server closed
        return "connection is closed" in str(error)
    if isinstance(error, asyncpg.exceptions.InternalClientError):
        # the server ended the session while the connection sat in the pool: its protocol is
        # still consuming that error (state 2); the connection closes, another one is made
        return "another operation" in str(error)
    return isinstance(error, (OSError, TimeoutError))  # refused, reset, unreachable


class GuardedPool:
    """An ``asyncpg.Pool`` whose failures say what they mean (``classify``).

    ``acquire()`` lends a connection for a transaction; leaving it without an error counts as a
    write accepted unless ``writes=False`` (a read-only snapshot says nothing about writes).
    ``execute`` is a write; ``fetch``, ``fetchrow`` and ``fetchval`` are reads.
    """

    def __init__(self, pool: asyncpg.Pool, health: StoreHealth) -> None:
        self.raw = pool  #: the pool itself (closing it, its size)
        self._health = health

    @asynccontextmanager
    async def acquire(self, *, writes: bool = True) -> AsyncIterator[PoolConnectionProxy]:
        """``async with pool.acquire() as conn:`` a pooled connection for the body."""
        try:
            async with self.raw.acquire() as conn:
                yield conn
        except Exception as exc:
            self._reraise(exc)
        if writes:
            self._health.accepted()

    async def execute(self, sql: str, *args: Any) -> str:
        """Run one writing statement; its status tag (``UPDATE 1``)."""
        try:
            status: str = await self.raw.execute(sql, *args)
        except Exception as exc:
            self._reraise(exc)
        self._health.accepted()
        return status

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """The rows of one reading statement."""
        try:
            rows: list[asyncpg.Record] = await self.raw.fetch(sql, *args)
        except Exception as exc:
            self._reraise(exc)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of one reading statement, None without rows."""
        try:
            row: asyncpg.Record | None = await self.raw.fetchrow(sql, *args)
        except Exception as exc:
            self._reraise(exc)
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row of one reading statement."""
        try:
            return await self.raw.fetchval(sql, *args)
        except Exception as exc:
            self._reraise(exc)

    def _reraise(self, error: Exception) -> NoReturn:
        mapped = classify(error, self._health)
        if mapped is error:
            raise error
        raise mapped from error
