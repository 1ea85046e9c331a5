"""The writes of one group-commit transaction: queued ops, how a batch runs, who gets what.

``SqliteDatabase`` (``db.py``) owns the connections and the writer task; this module is what
that task does with a batch on the writer connection: cut it into runs of sync and async ops,
run each (``BEGIN IMMEDIATE`` first, ``COMMIT`` last), tell a clean lost race (the op's own
outcome) from an error that spoils the batch, and settle every caller's future.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiosqlite

from engine.core.errors import ConcurrentModification, LeaseLost, NotFoundError
from engine.logging import get_logger

#: errors an op raises before it writes anything: they do not spoil the rest of its batch
CLEAN_FAILURES: Final = (ConcurrentModification, LeaseLost, NotFoundError)
#: on the writer connection: changes when ANOTHER connection (another process) has committed
DATA_VERSION: Final = "PRAGMA data_version"

Seen = Callable[[int], None]  #: told the file's data version at the start of a transaction

log = get_logger()


@dataclass(slots=True)
class Pending:
    """A write waiting for its transaction: the op, its kind, and the caller's future."""

    op: Callable[..., Any]
    sync: bool  #: a ``SyncWriteOp`` (else a ``WriteOp``)
    future: asyncio.Future[Any]
    #: may commit on the event loop's thread (``db.py``); a long op (a sweep batch) may not
    inline: bool = True


Outcome = tuple[Pending, bool, Any]  #: (write, succeeded, result or clean error)


class OpFailed(Exception):
    """An op raised something that may have left writes behind: the batch must roll back."""

    def __init__(self, item: Pending, error: BaseException) -> None:
        super().__init__(repr(error))
        self.item = item
        self.error = error


def split_runs(batch: list[Pending]) -> list[tuple[bool, list[Pending]]]:
    """``batch`` cut into runs of consecutive sync / async ops, in order."""
    runs: list[tuple[bool, list[Pending]]] = []
    for item in batch:
        if runs and runs[-1][0] == item.sync:
            runs[-1][1].append(item)
        else:
            runs.append((item.sync, [item]))
    return runs


class OtherCommits:
    """Whether another process committed to the file between two of this one's transactions.

    Every transaction of the writer starts by reading ``PRAGMA data_version`` (``begin``),
    which only changes when another connection committed; the writer task then calls
    ``check``, which tells ``listeners`` (the SQLite store drops the segments it kept).
    """

    def __init__(self) -> None:
        self._seen: int | None = None  #: the data version the last transaction began at
        self._known: int | None = None  #: the one ``check`` last looked at
        self.listeners: list[Callable[[], None]] = []

    def saw(self, version: int) -> None:
        """A transaction began at ``version`` (on whichever thread ran it: an int store)."""
        self._seen = version

    def check(self) -> None:
        """On the event loop, after a batch: call the listeners if the version moved."""
        seen, known = self._seen, self._known
        if seen == known:
            return
        self._known = seen
        if known is not None:
            for listener in self.listeners:
                listener()


def begin(conn: sqlite3.Connection, seen: Seen) -> None:
    """Open the write transaction and tell ``seen`` the data version it starts from."""
    conn.execute("BEGIN IMMEDIATE")
    seen(conn.execute(DATA_VERSION).fetchone()[0])


def run_sync(
    conn: sqlite3.Connection, items: list[Pending], seen: Seen | None, commit: bool
) -> list[Outcome]:
    """On the writer's thread: run sync ops (opening the transaction when given ``seen``,
    committing it if told)."""
    if seen is not None:
        begin(conn, seen)
    outcomes: list[Outcome] = []
    for item in items:
        before = conn.total_changes
        try:
            outcomes.append((item, True, item.op(conn)))
        except Exception as exc:
            outcomes.append(failed(item, exc, conn.total_changes != before))
    if commit:
        conn.execute("COMMIT")
    return outcomes


async def run_async(
    conn: aiosqlite.Connection,
    raw: sqlite3.Connection,
    items: list[Pending],
    seen: Seen | None,
    commit: bool,
) -> list[Outcome]:
    """The same as ``_run_sync`` for async ops (one thread trip per statement)."""
    if seen is not None:
        await conn.execute("BEGIN IMMEDIATE")
        async with conn.execute(DATA_VERSION) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        seen(row[0])
    outcomes: list[Outcome] = []
    for item in items:
        before = raw.total_changes
        try:
            outcomes.append((item, True, await item.op(conn)))
        except Exception as exc:
            outcomes.append(failed(item, exc, raw.total_changes != before))
    if commit:
        await conn.execute("COMMIT")
    return outcomes


def failed(item: Pending, error: Exception, wrote: bool) -> Outcome:
    """A clean lost race is the op's outcome; anything else spoils the batch."""
    if isinstance(error, CLEAN_FAILURES) and not wrote:
        return (item, False, error)
    raise OpFailed(item, error) from error


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (SQLite ends some on its own after errors)."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.warning("kjobs.store.rollback_failed", error=repr(exc))


def settle_all(outcomes: list[Outcome]) -> None:
    """Hand every outcome to its caller."""
    for item, ok, value in outcomes:
        if ok:
            settle(item, value)
        else:
            settle_error(item, value)


def settle(item: Pending, value: Any) -> None:
    """The write committed: its caller gets ``value`` (unless it gave up)."""
    if not item.future.done():
        item.future.set_result(value)


def settle_error(item: Pending, error: BaseException) -> None:
    """The write failed: its caller gets ``error`` (unless it gave up)."""
    if not item.future.done():
        item.future.set_exception(error)


def optimize(conn: sqlite3.Connection) -> None:
    """``PRAGMA optimize`` before closing, as SQLite recommends; never fatal."""
    try:
        conn.execute("PRAGMA optimize")
    except sqlite3.Error as exc:
        log.warning("kjobs.store.optimize_failed", error=repr(exc))
