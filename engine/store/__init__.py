"""The job store: the ``JobStore`` port and its adapters (memory, SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.store.base import (
    DEFAULT_MAX_OUTPUT_BYTES,
    JobFilter,
    JobStore,
    JobWrite,
    OutputWrite,
    SegmentChange,
    bound_output,
)
from engine.store.memory import MemoryJobStore
from engine.store.sqlite import SqliteJobStore
from engine.store.sqlite_db import SqliteDatabase

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "JobFilter",
    "JobStore",
    "JobWrite",
    "MemoryJobStore",
    "OutputWrite",
    "SegmentChange",
    "SqliteDatabase",
    "SqliteJobStore",
    "bound_output",
    "open_store",
]

MEMORY: str = ":memory:"  #: the ``open_store`` spec of the in-memory store

if TYPE_CHECKING:  # mypy proves that both adapters implement the port
    _ADAPTERS: tuple[type[JobStore], ...] = (MemoryJobStore, SqliteJobStore)


def open_store(
    spec: str, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, *, synchronous: str = "NORMAL"
) -> JobStore:
    """The store ``spec`` names: ``":memory:"``, else a SQLite file (its folder is created).

    The store is not connected yet: ``await store.open()`` (and ``close()``) as for any store.
    """
    if spec == MEMORY:
        return MemoryJobStore(max_output_bytes=max_output_bytes)
    path = Path(spec).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteJobStore(path, max_output_bytes=max_output_bytes, synchronous=synchronous)
