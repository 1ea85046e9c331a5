"""What every SQLite store shares: its database, owned (a path) or shared (given)."""

from __future__ import annotations

import os

from engine.store.health import StoreHealth
from engine.store.sqlite.db import SqliteDatabase


class SqliteStoreBase:
    """What every SQLite store shares: its database, owned (a path) or shared (given)."""

    def __init__(
        self, target: str | os.PathLike[str] | SqliteDatabase, *, synchronous: str = "NORMAL"
    ) -> None:
        """``target``: a file path (the store owns its database) or a shared ``SqliteDatabase``
        (opened here if needed, left open by ``close``: its owner closes it)."""
        self._owns_db = not isinstance(target, SqliteDatabase)
        if isinstance(target, SqliteDatabase):
            self._db = target
        else:
            self._db = SqliteDatabase(target, synchronous=synchronous)

    @property
    def db(self) -> SqliteDatabase:
        """The database this store writes to (may be shared with other SQLite stores)."""
        return self._db

    @property
    def health(self) -> StoreHealth:
        """Whether the database accepts writes right now (``GET /health``)."""
        return self._db.health

    async def open(self) -> None:
        """Open the database (migrating it); idempotent."""
        await self._db.open()

    async def close(self) -> None:
        """Close the database if this store owns it (pending writes are committed first)."""
        if self._owns_db:
            await self._db.close()
