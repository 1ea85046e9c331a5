"""FastAPI dependencies shared by the routers: the engine, the job renderer, the user.

All ``async def``: FastAPI runs plain ``def`` dependencies in a worker thread, one hop each.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engine.api.auth import current_user
from engine.api.views import JobRenderer
from engine.config.settings import User
from engine.facade import Engine


async def engine_of(request: Request) -> Engine:
    """The ``Engine`` the app serves (set by ``create_app``)."""
    engine: Engine = request.app.state.engine
    return engine


async def renderer_of(request: Request) -> JobRenderer:
    """The app's ``JobRenderer`` (set by ``create_app``)."""
    renderer: JobRenderer = request.app.state.renderer
    return renderer


EngineDep = Annotated[Engine, Depends(engine_of)]
RendererDep = Annotated[JobRenderer, Depends(renderer_of)]
UserDep = Annotated[User, Depends(current_user)]
