"""``GET /health`` (SPEC §6.1): whether this server can do its work, for load balancers.

No authentication, outside ``/kylin/api``. ``ok`` (200) while the store accepts writes,
``degraded`` (503) while it refuses them (disk full, I/O error, locked too long: running jobs
wait and continue once it accepts writes again) or is broken (the process is stopping). The
answer is what the store's latest writes found (``engine.store.health``): it turns ``ok`` with
the first write accepted again (a retried job write, or the node's heartbeat).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from engine.api.deps import EngineDep
from engine.store import MEMORY
from engine.store.postgres.db import redact

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The health answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "store": "/var/lib/kjobs/kjobs.sqlite", "node_id": "4242@host"}
            ]
        }
    )

    status: Literal["ok", "degraded"]
    store: str  #: the SQLite file, the PostgreSQL URL without its password, or ``:memory:``
    node_id: str


@router.get(
    "/health",
    summary="Health for load balancers (no authentication)",
    response_model=Health,
    responses={503: {"model": Health, "description": "The store refuses writes (degraded)"}},
)
async def health(engine: EngineDep) -> JSONResponse:
    """200 ``ok`` while the store accepts writes, 503 ``degraded`` while it refuses them."""
    store = engine.store_health
    ok = store is None or store.status == "ok"
    body = Health(
        status="ok" if ok else "degraded",
        store=store.name if store is not None else redact(engine.settings.store or MEMORY),
        node_id=engine.node_id,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
