"""Streaming job routes (SPEC §6, Kylin 5 envelopes): filled in by the streaming work.

``create_app`` mounts this router under ``/kylin/api`` behind the same authentication and error
handling as the batch routes; add routes with paths relative to that prefix
(``@router.get("/streaming_jobs")``) and take the engine with ``engine.api.deps.EngineDep``.
"""

from __future__ import annotations

from fastapi import APIRouter

from engine.api.schemas import error_responses

router = APIRouter(responses=error_responses(400, 401))
