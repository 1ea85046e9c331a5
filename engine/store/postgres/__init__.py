"""The PostgreSQL stores (``--store postgresql://user:password@host:port/dbname``): the batch
job store with its leases and the streaming store, sharing one ``PostgresDatabase`` (pool,
migrations, LISTEN/NOTIFY). The scale-out store of SPEC §9: any number of nodes share it."""

from __future__ import annotations

from engine.store.ports import DEFAULT_MAX_OUTPUT_BYTES
from engine.store.postgres.db import PostgresDatabase
from engine.store.postgres.jobs import PostgresJobStore
from engine.store.postgres.leases import PostgresLeases
from engine.store.postgres.streaming import PostgresStreamingStore

__all__ = [
    "PostgresDatabase",
    "PostgresJobStore",
    "PostgresLeases",
    "PostgresStores",
    "PostgresStreamingStore",
    "is_postgres_url",
]


def is_postgres_url(spec: str) -> bool:
    """Whether a store spec names a PostgreSQL database."""
    return spec.startswith(("postgresql://", "postgres://"))


class PostgresStores:
    """The stores of one PostgreSQL database (not connected until ``open``)."""

    def __init__(
        self, url: str, *, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, pool_size: int = 10
    ) -> None:
        self.db = PostgresDatabase(url, pool_size=pool_size)
        self.jobs = PostgresJobStore(self.db, max_output_bytes=max_output_bytes)
        self.streaming: PostgresStreamingStore = self.jobs.streaming
