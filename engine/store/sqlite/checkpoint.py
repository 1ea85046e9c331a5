"""WAL checkpoints off the commit path: on their own connection and thread, when the writer
is idle.

SQLite's automatic checkpoint runs inside the ``COMMIT`` that crosses 1,000 WAL pages, so one
write in a thousand pays milliseconds. The writer connection turns it off
(``wal_autocheckpoint = 0``) and tells the ``Checkpointer`` after each batch whether more writes
are queued; once enough commits have piled up and the writer has nothing queued, a ``PASSIVE``
checkpoint runs on a separate connection (WAL checkpoints never block writers there). Under a
load that never leaves the writer idle, one runs every ``force_every`` commits anyway, so the
WAL stays bounded.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from engine.logging import get_logger

log = get_logger()

IDLE_EVERY: Final = 200  #: commits since the last checkpoint that make an idle writer ask
FORCE_EVERY: Final = 4000  #: commits after which a busy writer asks too


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection, one at a time."""

    def __init__(
        self, path: str, *, idle_every: int = IDLE_EVERY, force_every: int = FORCE_EVERY
    ) -> None:
        self._path = path
        self._idle_every = idle_every
        self._force_every = force_every
        self._since = 0  #: commits since the last checkpoint started
        self._running: asyncio.Future[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self.completed = 0  #: checkpoints run so far

    def committed(self, *, idle: bool) -> None:
        """A batch was committed; ``idle``: no write is queued behind it."""
        self._since += 1
        due = self._since >= (self._idle_every if idle else self._force_every)
        if due and (self._running is None or self._running.done()):
            self._since = 0
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="kjobs-sqlite-checkpoint")
            loop = asyncio.get_running_loop()
            self._running = loop.run_in_executor(self._thread, self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self._path, isolation_level=None, check_same_thread=False
                )
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.completed += 1
        except sqlite3.Error as exc:  # a missed checkpoint only lets the WAL grow a while
            log.warning("kjobs.store.checkpoint_failed", path=self._path, error=repr(exc))

    async def close(self) -> None:
        """Wait for a running checkpoint, close the connection and the thread."""
        running, self._running = self._running, None
        if running is not None:
            await asyncio.shield(running)
        thread, self._thread = self._thread, None
        if thread is not None:
            conn, self._conn = self._conn, None
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(thread, conn.close)
            thread.shutdown(wait=False)
