"""``GET /kylin/api/cluster/nodes`` (SPEC §9): the live nodes, behind the same authentication."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

Api = Callable[..., AbstractAsyncContextManager[tuple[Any, httpx.AsyncClient]]]


async def test_the_engine_lists_itself_as_the_one_live_node(fast_api: Api) -> None:
    async with fast_api() as (engine, client):
        response = await client.get("/cluster/nodes")
        assert response.status_code == 200
        (node,) = response.json()
        assert list(node) == [
            "node_id", "host", "pid", "started", "last_heartbeat", "running_jobs",
        ]  # fmt: skip
        assert node["node_id"] == engine.node_id
        assert node["pid"] == os.getpid()
        assert node["running_jobs"] == 0
        assert node["started"] <= node["last_heartbeat"]
        refused = await client.get("/cluster/nodes", auth=("ADMIN", "wrong"))
        assert refused.status_code == 401
