"""``GET /kylin/api/cluster/nodes``: the live nodes on the engine's store (SPEC §9)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from engine.api import schemas
from engine.api.deps import EngineDep
from engine.api.schemas import error_responses
from engine.store.ports import NodeInfo

router = APIRouter(responses=error_responses(400, 401))


def node_view(node: NodeInfo) -> dict[str, Any]:
    """One node: id, host, pid, times (epoch ms) and its running jobs."""
    return {
        "node_id": node.node_id,
        "host": node.host,
        "pid": node.pid,
        "started": node.started,
        "last_heartbeat": node.last_heartbeat,
        "running_jobs": node.running_jobs,
    }


@router.get(
    "/cluster/nodes",
    response_model=list[schemas.ClusterNode],
    summary="The live nodes of the cluster",
)
async def cluster_nodes(engine: EngineDep) -> JSONResponse:
    """Every node whose heartbeat is younger than a lease: id, host, pid, times, running jobs."""
    return JSONResponse([node_view(node) for node in await engine.cluster_nodes()])
