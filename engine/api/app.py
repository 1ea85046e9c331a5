"""The Kylin-compatible REST server: ``create_app(engine)`` builds the FastAPI app.

::

    async with Engine(config) as engine:            # tests: the engine is entered by the caller
        app = create_app(engine)

    app = create_server_app(Engine(config))         # `kjobs serve`: entered around uvicorn

Everything under ``/kylin`` (the API, the live events, the monitor page) needs HTTP Basic
credentials, and so does ``/metrics`` unless ``kjobs.metrics.public`` is set; ``/openapi.json``
and ``/docs`` do not. Errors answer Kylin's error body through the one table in
``engine.api.errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from engine.api import (
    catalog,
    cluster,
    events,
    health,
    jobs,
    metrics,
    monitor,
    schedules,
    streaming,
)
from engine.api.auth import API_PREFIX, BasicAuthMiddleware, guarded, guarded_prefixes
from engine.api.docs import install_docs
from engine.api.errors import install_error_handlers
from engine.api.examples import add_examples, build_examples
from engine.api.views import JobRenderer
from engine.facade import Engine

TITLE = "kjobs"
DESCRIPTION = (
    "Apache Kylin's batch Job REST API (Kylin 3 shapes) and Streaming Job API (Kylin 5 "
    "envelopes), served by the kjobs engine. Every path under `/kylin/api` needs HTTP Basic "
    "authentication."
)
Lifespan = Callable[[FastAPI], Any]


def _version() -> str:
    try:
        return metadata.version("kjobs")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def create_app(engine: Engine, *, lifespan: Lifespan | None = None, debug: bool = False) -> FastAPI:
    """The REST app over ``engine`` (which the caller enters, unless ``lifespan`` does)."""
    app = FastAPI(
        title=TITLE,
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets: engine.api.docs
        redoc_url=None,
        openapi_url="/openapi.json",
        # a JSON body without a Content-Type is still JSON (some Kylin clients omit it)
        strict_content_type=False,
    )
    # "/kylin/api/jobs/" is an unknown route (404), not a redirect clients would have to follow
    app.router.redirect_slashes = False
    app.state.engine = engine
    app.state.renderer = JobRenderer(engine.settings.version)
    app.state.kjobs_debug = debug  # our own flag: Starlette's debug would bypass the handlers
    #: set when the server starts shutting down: open event streams end at once
    app.state.closing = events.Closing()
    install_error_handlers(app)
    install_docs(app)
    for router in (
        jobs.router,
        catalog.router,
        streaming.router,
        schedules.router,
        events.router,
        cluster.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(metrics.router)
    app.include_router(health.router)  # no auth: for load balancers (SPEC §6.1)
    monitor.install(app)
    app.add_middleware(
        BasicAuthMiddleware,
        users=engine.settings.users,
        prefixes=guarded_prefixes(engine.settings.metrics_public),
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def create_server_app(engine: Engine, *, debug: bool = False) -> FastAPI:
    """The app for ``kjobs serve``, which enters ``engine`` around the server (not in a
    lifespan: an engine that cannot start, or that stops, ends the process in one line)."""
    return create_app(engine, debug=debug)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus Basic auth, 400 (not 422) for invalid requests, and examples."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["basicAuth"] = {"type": "http", "scheme": "basic"}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            if guarded(path):
                operation["security"] = [{"basicAuth": []}]
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    add_examples(schema, build_examples(app.state.engine))
    app.openapi_schema = schema
    return schema
