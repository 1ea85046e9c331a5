"""The stores: the ports (``ports.py``) and their adapters (``memory.py``, ``sqlite/``,
``postgres/``).

``open_stores(spec)`` is the one way a store spec becomes stores: the batch job store and the
streaming store beside it (the same SQLite file, the same PostgreSQL database, or both in
memory).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from engine.store.leases import LocalLeases
from engine.store.memory import MemoryJobStore, MemoryStreamingStore
from engine.store.ports import (
    DEFAULT_MAX_OUTPUT_BYTES,
    JobFilter,
    JobStore,
    JobWrite,
    Lease,
    LeaseStore,
    OutputWrite,
    SegmentChange,
    StreamingStore,
    StreamingWrite,
)
from engine.store.postgres import PostgresJobStore, PostgresLeases, PostgresStores, is_postgres_url
from engine.store.rules import bound_output
from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.jobs import SqliteJobStore
from engine.store.sqlite.leases import SqliteLeases
from engine.store.sqlite.migrations import load_migrations
from engine.store.sqlite.preflight import preflight
from engine.store.sqlite.streaming import SqliteStreamingStore

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "MEMORY",
    "JobFilter",
    "JobStore",
    "JobWrite",
    "LeaseStore",
    "LocalLeases",
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
    "leases_of",
    "open_store",
    "open_stores",
    "resolve_store",
    "streaming_store_beside",
]

MEMORY: str = ":memory:"  #: the store spec of the in-memory stores

if TYPE_CHECKING:  # mypy proves that the adapters implement the ports
    _ADAPTERS: tuple[type[JobStore], ...] = (MemoryJobStore, SqliteJobStore)
    _LEASES: tuple[type[LeaseStore], ...] = (LocalLeases, SqliteLeases, PostgresLeases)
    _STREAMING: tuple[type[StreamingStore], ...] = (MemoryStreamingStore, SqliteStreamingStore)


class Stores(NamedTuple):
    """The stores one spec names; ``db`` is the shared SQLite database (None in memory)."""

    jobs: JobStore
    streaming: StreamingStore
    db: SqliteDatabase | None


def open_stores(
    spec: str,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    *,
    synchronous: str = "NORMAL",
    pool_size: int = 10,
) -> Stores:
    """The stores ``spec`` names: ``":memory:"``, a ``postgresql://`` URL (a pool of
    ``pool_size`` connections), else a SQLite file (its folder is created).

    A file that cannot be a kjobs store raises ``StoreRefused`` (see ``sqlite/preflight.py``).
    They are not connected yet: ``await store.open()`` (and ``close()``) as for any store.
    """
    if is_postgres_url(spec):
        pg = PostgresStores(spec, max_output_bytes=max_output_bytes, pool_size=pool_size)
        return Stores(pg.jobs, pg.streaming, None)
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
    spec: str,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    *,
    synchronous: str = "NORMAL",
    pool_size: int = 10,
) -> JobStore:
    """The batch job store of ``open_stores(spec)`` (its streaming store shares its database)."""
    return open_stores(spec, max_output_bytes, synchronous=synchronous, pool_size=pool_size).jobs


def resolve_store(
    store: JobStore | str | None, configured: str, max_output_bytes: int, pool_size: int
) -> JobStore:
    """``store`` itself, or the store its spec names (None: ``configured``, else the default
    SQLite file of ``default_store_path``)."""
    if store is None or isinstance(store, str):
        spec = store or configured or default_store_path()
        return open_store(spec, max_output_bytes, pool_size=pool_size)
    return store


def default_store_path() -> str:
    """``$XDG_DATA_HOME/kjobs/kjobs.sqlite`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "kjobs" / "kjobs.sqlite")


def streaming_store_beside(store: JobStore) -> StreamingStore:
    """Streaming jobs live beside the batch jobs: the same database, or memory."""
    if isinstance(store, SqliteJobStore):
        return SqliteStreamingStore(store.db)
    if isinstance(store, PostgresJobStore):
        return store.streaming
    return MemoryStreamingStore()


def leases_of(store: JobStore) -> tuple[LeaseStore, Callable[[Lease], None] | None]:
    """The lease store of ``store`` and how a writer fences: None when ``store`` checks the
    lease of each write itself (its own leases), else a check to run before each write (leases
    kept in this process, for stores without leases of their own: a simulation's)."""
    own = getattr(store, "leases", None)
    if isinstance(own, (LocalLeases, SqliteLeases, PostgresLeases)):
        return own, None
    local = LocalLeases(store)
    return local, local.verify
