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


def run_sync(
    conn: sqlite3.Connection, items: list[Pending], begin: bool, commit: bool
) -> list[Outcome]:
    """On the writer's thread: run sync ops (opening / committing the transaction if told)."""
    if begin:
        conn.execute("BEGIN IMMEDIATE")
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
    begin: bool,
    commit: bool,
) -> list[Outcome]:
    """The same as ``_run_sync`` for async ops (one thread trip per statement)."""
    if begin:
        await conn.execute("BEGIN IMMEDIATE")
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
