"""The stores: the ports (``ports.py``) and their adapters (``memory.py``, ``sqlite/``).

``open_stores(spec)`` is the one way a store spec becomes stores: the batch job store and the
streaming store beside it (the same SQLite file, or both in memory).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from engine.store.memory import MemoryJobStore, MemoryStreamingStore
from engine.store.ports import (
    DEFAULT_MAX_OUTPUT_BYTES,
    JobFilter,
    JobStore,
    JobWrite,
    OutputWrite,
    SegmentChange,
    StreamingStore,
    StreamingWrite,
)
from engine.store.rules import bound_output
from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.jobs import SqliteJobStore
from engine.store.sqlite.migrations import load_migrations
from engine.store.sqlite.preflight import preflight
from engine.store.sqlite.streaming import SqliteStreamingStore

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "MEMORY",
    "JobFilter",
    "JobStore",
    "JobWrite",
    "MemoryJobStore",
    "MemoryStreamingStore",
    "OutputWrite",
    "SegmentChange",
    "SqliteDatabase",
    "SqliteJobStore",
    "SqliteStreamingStore",
    "Stores",
    "StreamingStore",
    "StreamingWrite",
    "bound_output",
    "default_store_path",
    "open_store",
    "open_stores",
    "resolve_store",
    "streaming_store_beside",
]

MEMORY: str = ":memory:"  #: the store spec of the in-memory stores

if TYPE_CHECKING:  # mypy proves that the adapters implement the ports
    _ADAPTERS: tuple[type[JobStore], ...] = (MemoryJobStore, SqliteJobStore)
    _STREAMING: tuple[type[StreamingStore], ...] = (MemoryStreamingStore, SqliteStreamingStore)


class Stores(NamedTuple):
    """The stores one spec names; ``db`` is the shared SQLite database (None in memory)."""

    jobs: JobStore
    streaming: StreamingStore
    db: SqliteDatabase | None


def open_stores(
    spec: str, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, *, synchronous: str = "NORMAL"
) -> Stores:
    """The stores ``spec`` names: ``":memory:"``, else a SQLite file (its folder is created).

    A file that cannot be a kjobs store raises ``StoreRefused`` (see ``sqlite/preflight.py``).
    They are not connected yet: ``await store.open()`` (and ``close()``) as for any store.
    """
    if spec == MEMORY:
        return Stores(
            MemoryJobStore(max_output_bytes=max_output_bytes), MemoryStreamingStore(), None
        )
    path = Path(spec).expanduser()
    # refuse a file that cannot be a kjobs store with one clear reason, before touching it
    preflight(path, max((m.version for m in load_migrations()), default=0))
    path.parent.mkdir(parents=True, exist_ok=True)
    # the job store owns the database (opens and closes it); the streaming store shares it
    jobs = SqliteJobStore(path, max_output_bytes=max_output_bytes, synchronous=synchronous)
    return Stores(jobs, SqliteStreamingStore(jobs.db), jobs.db)


def open_store(
    spec: str, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, *, synchronous: str = "NORMAL"
) -> JobStore:
    """The batch job store of ``open_stores(spec)`` (its streaming store shares its database)."""
    return open_stores(spec, max_output_bytes, synchronous=synchronous).jobs


def streaming_store_beside(store: JobStore) -> StreamingStore:
    """Streaming jobs live beside the batch jobs: the same SQLite database, or memory."""
    if isinstance(store, SqliteJobStore):
        return SqliteStreamingStore(store.db)
    return MemoryStreamingStore()


def resolve_store(store: JobStore | str | None, configured: str, max_bytes: int) -> JobStore:
    """The job store an ``Engine`` was given: a store, a spec, else the configured spec, else
    ``default_store_path()``."""
    if store is None:
        store = configured or default_store_path()
    if isinstance(store, str):
        return open_store(store, max_output_bytes=max_bytes)
    return store


def default_store_path() -> str:
    """``$XDG_DATA_HOME/kjobs/kjobs.sqlite`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "kjobs" / "kjobs.sqlite")
