"""``GET /kylin/api/cluster/nodes``: the live nodes on the engine's store (SPEC §9)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.api.deps import EngineDep
from engine.api.schemas import error_responses

router = APIRouter(responses=error_responses(400, 401))


@router.get("/cluster/nodes", summary="The live nodes of the cluster")
async def cluster_nodes(engine: EngineDep) -> list[dict[str, Any]]:
    """Every node whose heartbeat is younger than a lease: id, host, pid, times, running jobs."""
    return [
        {
            "node_id": node.node_id,
            "host": node.host,
            "pid": node.pid,
            "started": node.started,
            "last_heartbeat": node.last_heartbeat,
            "running_jobs": node.running_jobs,
        }
        for node in await engine.cluster_nodes()
    ]
