"""``GET /health`` (SPEC §6.1): no credentials, outside ``/kylin/api``, the store and node named.

The degraded answer (503) is provoked for real by ``tests/faults/test_full_disk.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


async def test_health_needs_no_credentials_and_names_store_and_node(
    fast_api: Any, tmp_path: Path
) -> None:
    store = tmp_path / "k.sqlite"
    async with fast_api(**{"kjobs.store": str(store)}) as (engine, client):
        root = httpx.URL(str(client.base_url).removesuffix("/kylin/api"))
        answer = await client.get(root.join("/health"), auth=None)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "store": str(store), "node_id": engine.node_id}
        assert (await client.get("/health")).status_code == 404  # not under /kylin/api


async def test_health_of_a_memory_store(fast_api: Any) -> None:
    async with fast_api() as (engine, client):
        root = httpx.URL(str(client.base_url).removesuffix("/kylin/api"))
        body = (await client.get(root.join("/health"), auth=None)).json()
        assert body == {"status": "ok", "store": ":memory:", "node_id": engine.node_id}
