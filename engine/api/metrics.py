"""``GET /metrics``: the engine's Prometheus registry in the text format (SPEC §10).

Behind Basic auth unless ``kjobs.metrics.public = true`` (``engine.api.auth`` decides).
"""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from engine.api.deps import EngineDep

# outside /kylin/api and in Prometheus' format, not Kylin's: not part of the OpenAPI document
router = APIRouter(tags=["metrics"], include_in_schema=False)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(engine: EngineDep) -> Response:
    """The metrics of SPEC §10; the per-status job counts are re-read from the store."""
    await engine.refresh_metrics()
    return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)
