"""The throwaway PostgreSQL server the PostgreSQL store's tests run on."""

from __future__ import annotations

import asyncpg

from engine.store.postgres.scratch import ScratchPostgres


async def test_a_fresh_database_accepts_connections_on_loopback(
    postgres_server: ScratchPostgres, postgres_url: str
) -> None:
    assert postgres_url.startswith("postgresql://kjobs@127.0.0.1:")
    conn = await asyncpg.connect(postgres_url)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        )
        listen = await conn.fetchval("SHOW listen_addresses")
    finally:
        await conn.close()
    assert listen == "127.0.0.1"
    assert postgres_server.data.is_dir()
