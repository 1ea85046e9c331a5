"""The monitor page (SPEC §10): ``/kylin/`` serves it, ``/`` redirects there.

Plain HTML, CSS and JavaScript shipped in the package (``static/``, ``templates/``): no CDN,
no build step. The page reads the REST API and the live event stream like any other client.
The rules it needs (which action is allowed from which status, the status colours of the
simulation's timeline) are rendered into the page from ``engine.core.states`` and
``engine.simulation.timeline``, so the JavaScript re-encodes none of them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from string import Template
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from engine.core.states import (
    OPERATION_ALLOWED_FROM,
    REST_NAMES,
    STATUS_CODES,
    STREAMING_ACTIONS,
    Operation,
    RecordAction,
    State,
    StreamingStatus,
)
from engine.simulation.timeline import COLORS

HERE: Final = Path(__file__).parent
PAGE: Final = "/kylin/"
STATIC: Final = "/kylin/static"
#: the page's buttons, one per operation of SPEC §2.1 (restart is a Kylin 5 bulk action only)
PAGE_OPERATIONS: Final = (
    Operation.RESUME,
    Operation.PAUSE,
    Operation.DISCARD,
    Operation.ROLLBACK,
    Operation.DROP,
)
#: streaming statuses as the list API shows them (LAUNCHING_ERROR is listed as ERROR)
LISTED_STREAMING: Final = tuple(dict.fromkeys(s.listed_as for s in StreamingStatus))
#: a streaming status is drawn in the colour of the batch state that means the same
STREAMING_LOOKS_LIKE: Final = {
    StreamingStatus.STOPPED: State.DISCARDED,
    StreamingStatus.STARTING: State.STOPPED,
    StreamingStatus.RUNNING: State.RUNNING,
    StreamingStatus.STOPPING: State.STOPPED,
    StreamingStatus.ERROR: State.ERROR,
    StreamingStatus.LAUNCHING_ERROR: State.ERROR,
}
#: the status a streaming record starts
RECORD_STARTS: Final = {
    RecordAction.START: StreamingStatus.RUNNING,
    RecordAction.STOP: StreamingStatus.STOPPED,
    RecordAction.ERROR: StreamingStatus.ERROR,
}

router = APIRouter(include_in_schema=False)


def page_rules() -> dict[str, Any]:
    """What the page's JavaScript needs to know of Kylin's rules, from the core's tables."""
    return {
        "statuses": [s for s in STATUS_CODES if s in REST_NAMES.values()],  # not NEW (never)
        "codes": dict(STATUS_CODES),
        "colors": {state.rest_name: COLORS[state.value] for state in State},
        "running": State.RUNNING.rest_name,
        #: a job's step worth showing first when none runs
        "attention": [State.ERROR.rest_name, State.STOPPED.rest_name],
        "allowed": {
            op.value.lower(): sorted(s.rest_name for s in OPERATION_ALLOWED_FROM[op])
            for op in PAGE_OPERATIONS
        },
        "confirm": [Operation.DISCARD.value.lower(), Operation.DROP.value.lower()],
        "streaming": {
            "statuses": list(LISTED_STREAMING),
            "actions": {
                action.value: sorted({s.listed_as for s, chain in row.items() if chain})
                for action, row in STREAMING_ACTIONS.items()
            },
            "colors": {s.listed_as: COLORS[STREAMING_LOOKS_LIKE[s].value] for s in StreamingStatus},
            "records": {action.value: status.value for action, status in RECORD_STARTS.items()},
            "running": StreamingStatus.RUNNING.value,
        },
    }


@cache
def _template() -> Template:
    return Template((HERE / "templates" / "index.html").read_text(encoding="utf-8"))


@router.get("/", response_class=RedirectResponse)
async def root() -> RedirectResponse:
    """``/`` -> the monitor page."""
    return RedirectResponse(PAGE, status_code=307)


@router.get("/kylin", response_class=RedirectResponse)
async def kylin() -> RedirectResponse:
    """``/kylin`` -> ``/kylin/``."""
    return RedirectResponse(PAGE, status_code=307)


@router.get(PAGE, response_class=HTMLResponse)
async def page(request: Request) -> HTMLResponse:
    """The monitor page, with the rules and the user rendered in."""
    user = request.scope.get("kjobs.user")
    config = {
        "rules": page_rules(),
        "user": getattr(user, "name", ""),
        "version": request.app.version,
        "static": STATIC,
    }
    # "</" cannot end the script element early once escaped
    blob = json.dumps(config, separators=(",", ":")).replace("</", "<\\/")
    html = _template().substitute(config=blob, static=STATIC, version=request.app.version)
    return HTMLResponse(html, headers={"cache-control": "no-store"})


def install(app: FastAPI) -> None:
    """Mount the page, its redirects and its static files on ``app``."""
    app.include_router(router)
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="monitor-static")
