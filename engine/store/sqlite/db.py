"""The shared SQLite layer: one writer task doing group commit, one reader, numbered migrations.

Every SQLite-backed store (batch jobs in ``jobs.py``, streaming jobs in ``streaming.py``) goes
through one ``SqliteDatabase``; only this module opens connections to the file.

Writes. One writer task owns the writer connection. It takes every write queued so far and runs
them in ONE ``BEGIN IMMEDIATE ... COMMIT`` (group commit): a burst of N writes costs one commit.
A write returns once its transaction is committed (how a batch runs: ``batch.py``). There are
two kinds of write op:

- ``await db.write(op)``: ``async def op(conn: aiosqlite.Connection) -> T``. Each statement is
  one trip to aiosqlite's thread.
- ``await db.write_sync(fn)``: ``def fn(conn: sqlite3.Connection) -> T``, run on the writer's
  thread. Consecutive ones of a batch share one thread trip (``BEGIN`` and ``COMMIT``
  included), so a batch of 100 step transitions is one trip, not 102: hot paths use this.

Rules for ops of both kinds:

- An op talks only to ``conn``: it must not wait on anything else, nor call ``db.write`` (the
  writer would wait on itself).
- An op that loses a race raises ``ConcurrentModification`` (``LeaseLost``, a ``NotFoundError``)
  BEFORE it writes anything: its first statement is the guarded
  ``UPDATE ... WHERE id = ? AND version = ?`` and it checks ``rowcount``. Its caller gets the
  error; the rest of the batch still commits.
  (The writer checks ``total_changes``: such an error after a write counts as any other error.)
- Any other exception rolls the whole batch back; the failing op's caller gets it, and every
  other op of the batch runs again alone, one transaction each. So an op may run more than once
  and must not keep state between runs (prepare parameters before, not inside, the op).

Reads. ``await db.read(fn)`` runs ``async def fn(conn) -> T`` on a separate read-only connection
(also ``db.reader``); in WAL mode reads run beside the writer and see every write whose
``write()`` has returned.

Durability. WAL with ``synchronous=NORMAL`` (the default): a committed write survives a crash or
kill of the process, but the last commits may be lost on power failure or an OS crash, since the
WAL is synced at checkpoints, not at every commit. That is the usual choice for WAL and what makes
thousands of step transitions a second cheap. ``synchronous="FULL"`` syncs the WAL at every
commit (group commit spreads the cost over the batch) and survives power loss too.

Migrations. ``open()`` brings the file up to the numbered migrations of ``schema/`` first; see
``migrations.py`` for how to add one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar, cast

import aiosqlite

from engine.core.errors import KjobsError, StoreUnavailable
from engine.logging import get_logger
from engine.store.health import StoreHealth
from engine.store.sqlite.batch import OpFailed as _OpFailed
from engine.store.sqlite.batch import OtherCommits
from engine.store.sqlite.batch import Outcome as _Outcome
from engine.store.sqlite.batch import Pending as _Pending
from engine.store.sqlite.batch import begin as _begin
from engine.store.sqlite.batch import optimize as _optimize
from engine.store.sqlite.batch import rollback as _rollback
from engine.store.sqlite.batch import run_async as _run_async
from engine.store.sqlite.batch import run_sync as _run_sync
from engine.store.sqlite.batch import settle_all as _settle_all
from engine.store.sqlite.batch import settle_error as _settle_error
from engine.store.sqlite.batch import split_runs as _runs
from engine.store.sqlite.checkpoint import Checkpointer
from engine.store.sqlite.faults import Reader, classify
from engine.store.sqlite.migrations import Migration, load_migrations, migrate

T = TypeVar("T")

#: ``async def op(conn) -> T``, run by the writer task inside a group-commit transaction.
WriteOp = Callable[[aiosqlite.Connection], Awaitable[T]]
#: ``def fn(conn) -> T``, run on the writer's thread inside a group-commit transaction.
SyncWriteOp = Callable[[sqlite3.Connection], T]
#: ``async def fn(conn) -> T``, run on the read connection.
ReadOp = Callable[[aiosqlite.Connection], Awaitable[T]]

SYNCHRONOUS_LEVELS: Final = frozenset({"NORMAL", "FULL", "EXTRA"})
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
#: a store used before ``open`` or after ``close`` (kjobs starting or stopping): a 503, not a 500
NOT_OPEN: Final = "the store is not open: kjobs is starting or stopping"

log = get_logger()


class SqliteDatabase:
    """One SQLite file: a writer task with group commit, a read connection, migrations."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        level = synchronous.upper()
        if level not in SYNCHRONOUS_LEVELS:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_LEVELS)}: {level!r}")
        self._path = os.fspath(path)
        if self._path in ("", ":memory:") or self._path.startswith("file:"):
            raise ValueError("SqliteDatabase needs a file path (WAL and two connections)")
        self._synchronous = level
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._migrations = tuple(migrations) if migrations is not None else load_migrations()
        self._writer: aiosqlite.Connection | None = None
        self._raw: sqlite3.Connection | None = None  #: the writer's own sqlite3 connection
        self._thread: ThreadPoolExecutor | None = None  #: runs sync ops on ``_raw``
        self._reader: Reader | None = None
        #: refused writes (disk full, I/O error, locked too long) and a damaged file, as found
        self.health = StoreHealth(self._path)
        self._writer_task: asyncio.Task[None] | None = None
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._committed_batches = 0
        self._checkpointer = Checkpointer(self._path)
        #: a batch of one sync write commits on the loop thread (no thread hop) when a commit
        #: cannot wait on the disk: NORMAL syncs the WAL at checkpoints only
        self._inline = level == "NORMAL"
        self._waits = True  #: the writer connection's busy timeout is on (see _wait_for_locks)
        self.others = OtherCommits()  #: tells when another process has committed to the file

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def is_open(self) -> bool:
        """Whether ``open()`` has run and ``close()`` has not."""
        return self._writer_task is not None

    @property
    def committed_batches(self) -> int:
        """Transactions committed by the writer so far (group commit: fewer than writes)."""
        return self._committed_batches

    @property
    def reader(self) -> Reader:
        """The read-only connection (a failed read raises ``StoreUnavailable`` or
        ``StoreBroken`` where ``faults.classify`` says so)."""
        if self._reader is None:
            raise StoreUnavailable(NOT_OPEN)
        return self._reader

    @property
    def migrations(self) -> tuple[Migration, ...]:
        """The migrations ``open()`` brings the file up to."""
        return self._migrations

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, apply pending migrations and start the writer task; idempotent."""
        if self._writer_task is not None:
            return
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kjobs-sqlite-writer")
        try:
            await self._open_writer()
            done = await self._in_thread(migrate, self._raw, self._path, self._migrations)
            self._reader = Reader(await self._connect_reader(), self.health)
        except BaseException as exc:
            await self._release(optimize=False)  # a store that failed to open is left alone
            mapped = classify(exc, self.health, record=False)
            if mapped is exc:
                raise
            raise mapped from exc
        for version in done:
            log.info("kjobs.store.migrated", path=self._path, version=version)
        self._closing = False
        self._wakeup = asyncio.Event()
        self._writer_task = asyncio.create_task(self._write_loop(), name="kjobs.sqlite.writer")
        log.debug("kjobs.store.opened", path=self._path, synchronous=self._synchronous)

    async def close(self) -> None:
        """Commit every write queued so far, stop the writer task, close both connections."""
        task = self._writer_task
        if task is None:
            return
        self._closing = True
        self._wakeup.set()
        try:
            await asyncio.shield(task)
        finally:
            if not task.done():  # close() itself was cancelled: stop the writer, do not wait
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._writer_task = None
            await self._checkpointer.close()
            await self._release()
            log.debug("kjobs.store.closed", path=self._path)

    async def _open_writer(self) -> None:
        made: list[sqlite3.Connection] = []

        def connector() -> sqlite3.Connection:
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), never implicit.
            # check_same_thread=False: the writer task uses this connection from aiosqlite's
            # thread (async ops) and from ours (sync ops), never from both at once.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            made.append(conn)
            return conn

        # built like aiosqlite.connect() does, to keep hold of the sqlite3 connection
        self._writer = await aiosqlite.Connection(connector, 64)
        self._raw = made[0]
        await self._in_thread(self._configure_writer, self._raw)

    def _configure_writer(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        self._waits = True
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoint.py runs them, off commits

    async def _connect_reader(self) -> aiosqlite.Connection:
        reader = await aiosqlite.connect(self._path, isolation_level=None)
        try:
            await reader.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            await reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await reader.close()
            raise
        return reader

    async def _release(self, *, optimize: bool = True) -> None:
        reader, writer, raw = self._reader, self._writer, self._raw
        self._reader = self._writer = self._raw = None
        if reader is not None:
            await reader.conn.close()
        if raw is not None and optimize:
            await self._in_thread(self._wait_for_locks, raw, True)
            await self._in_thread(_optimize, raw)
        if writer is not None:
            await writer.close()
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the writer's thread."""
        if self._thread is None:
            raise RuntimeError("the database is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args))

    # -- reads and writes ---------------------------------------------------------------------

    async def read(self, fn: ReadOp[T]) -> T:
        """Run ``fn`` on the read connection."""
        try:
            return await fn(self.reader.conn)
        except sqlite3.Error as exc:
            raise classify(exc, self.health) from exc

    async def write(self, op: WriteOp[T]) -> T:
        """Run the async ``op`` in the next group-commit transaction; its result once committed."""
        return cast(T, await self._submit(op, sync=False))

    async def write_sync(self, fn: SyncWriteOp[T], *, inline: bool = True) -> T:
        """Run the plain ``fn`` on the writer's thread in the next group-commit transaction
        (``inline=False``: a long op, whose batch never commits on the event loop's thread)."""
        return cast(T, await self._submit(fn, sync=True, inline=inline))

    async def _submit(self, op: Callable[..., Any], *, sync: bool, inline: bool = True) -> Any:
        task = self._writer_task
        if task is None or self._closing or task.done():
            raise StoreUnavailable(NOT_OPEN)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(op, sync, future, inline))
        self._wakeup.set()
        return await future

    async def _write_loop(self) -> None:
        batch: list[_Pending] = []
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                batch, self._queue = self._queue, []
                if batch:
                    await self._run_batch(batch)
                    batch = []
                    self.others.check()
                    self._checkpointer.committed(idle=not self._queue)
                    self._wakeup.set()  # more may have come while the batch ran
                elif self._closing:
                    return
        finally:
            # only reached with writes left when the task itself is cancelled or broken
            stopped = StoreUnavailable("the store's writer stopped")
            for item in [*batch, *self._queue]:
                _settle_error(item, stopped)
            self._queue = []

    async def _run_batch(self, batch: list[_Pending]) -> None:
        live = [item for item in batch if not item.future.done()]  # callers that gave up
        if not live:
            return
        try:
            outcomes = self._run_inline(live)
            if outcomes is None:
                outcomes = await self._transaction(live)
        except _OpFailed as failed:
            self._fail(failed.item, failed.error)
            others = [item for item in live if item is not failed.item]
            log.debug("kjobs.store.batch_failed", error=repr(failed.error), rerun=len(others))
            for item in others:
                await self._run_alone(item)
            return
        except Exception as exc:  # BEGIN or COMMIT itself failed
            log.debug("kjobs.store.commit_failed", error=repr(exc), writes=len(live))
            if len(live) == 1:
                self._fail(live[0], exc)
                return
            for item in live:
                await self._run_alone(item)
            return
        self._committed(outcomes)

    async def _run_alone(self, item: _Pending) -> None:
        if item.future.done():
            return
        try:
            outcomes = await self._transaction([item])
        except _OpFailed as failed:
            self._fail(item, failed.error)
        except Exception as exc:
            self._fail(item, exc)
        else:
            self._committed(outcomes)

    def _committed(self, outcomes: list[_Outcome]) -> None:
        self.health.accepted()
        _settle_all(outcomes)

    def _fail(self, item: _Pending, error: BaseException) -> None:
        """The write failed: its caller gets the error kjobs means by it (``classify``)."""
        mapped = classify(error, self.health)
        if mapped is error and not isinstance(error, (sqlite3.Error, KjobsError)):
            log.warning("kjobs.store.write_failed", error=repr(error))  # a bug in an op
        _settle_error(item, mapped)

    def _run_inline(self, batch: list[_Pending]) -> list[_Outcome] | None:
        """A batch of sync writes run on the loop thread: no round trip through the writer's
        thread and its fight for the GIL. None when it may not (an async or long op, FULL
        durability) or when another connection holds the lock: the loop never waits for one."""
        raw = self._raw
        if not self._inline or raw is None or not all(i.sync and i.inline for i in batch):
            return None
        self._wait_for_locks(raw, False)  # stays off until the writer's thread needs it
        try:
            _begin(raw, self.others.saw)
        except sqlite3.OperationalError:
            _rollback(raw)  # (when BEGIN itself was refused there is nothing to roll back)
            return None  # busy: the writer's thread waits for the lock instead
        try:
            outcomes = _run_sync(raw, batch, None, True)
        except BaseException:
            _rollback(raw)
            raise
        self._committed_batches += 1
        return outcomes

    async def _transaction(self, batch: list[_Pending]) -> list[_Outcome]:
        """Run ``batch`` in one transaction; roll back and raise unless all of it commits."""
        conn, raw = self._writer, self._raw
        assert conn is not None and raw is not None
        runs = _runs(batch)
        outcomes: list[_Outcome] = []
        if not self._waits:
            await self._in_thread(self._wait_for_locks, raw, True)
        try:
            for index, (sync, items) in enumerate(runs):
                seen, commit = self.others.saw if index == 0 else None, index == len(runs) - 1
                if sync:
                    outcomes += await self._in_thread(_run_sync, raw, items, seen, commit)
                else:
                    outcomes += await _run_async(conn, raw, items, seen, commit)
        except BaseException:
            await self._in_thread(_rollback, raw)
            raise
        self._committed_batches += 1
        return outcomes

    def _wait_for_locks(self, raw: sqlite3.Connection, waits: bool) -> None:
        """The writer's busy timeout: off on the loop thread, on in the writer's thread."""
        if self._waits != waits:
            raw.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms if waits else 0}")
            self._waits = waits
