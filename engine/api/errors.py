"""Errors over HTTP: ONE table from error type to HTTP status and Kylin error code (SPEC §6).

Every error answer has Kylin's body, in this key order::

    {"code": "999", "data": null, "msg": "...", "exception": "...", "url": "...",
     "error_code": "KE-..."}

``exception`` repeats the message (Kylin puts the exception's message there, and kylinpy reads
an error's text from it). The status codes are kjobs's **[beyond Kylin, which answers 500 for
everything]**: 400 bad parameter or body, 401 authentication, 404 unknown job/step/catalog
entry or route, 409 not allowed in the current state, 503 (with ``Retry-After``) while the
store refuses writes (disk full, I/O error, locked too long: nothing was changed, try again)
or is broken, 500 only for a real fault.

An exception may carry an ``error_code`` attribute (a ``KE-...`` string) to refine the code of
its table row without a new row: the streaming API uses it for its own parameter codes.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.core.errors import (
    CatalogNotFound,
    ConcurrentModification,
    InvalidRequest,
    JobNotFound,
    KjobsError,
    ModelBroken,
    NotAllowed,
    NotFoundError,
    OperationNotAllowed,
    SegmentsOverlap,
    StepNotFound,
    StoreBroken,
    StoreUnavailable,
    StreamingActionNotAllowed,
)
from engine.logging import get_logger

log = get_logger()

INVALID_PARAMETER: Final = "KE-010000003"  #: bad parameter, malformed JSON, wrong type
UNKNOWN_JOB: Final = "KE-010032219"
JOB_ACTION_NOT_ALLOWED: Final = "KE-010032217"
UNKNOWN_CATALOG_ENTRY: Final = "KE-010001002"  #: unknown cube, model or project
SEGMENTS_OVERLAP: Final = "KE-010022001"
STREAMING_START_REFUSED: Final = "KE-010035005"
#: a streaming parameter's own codes ride on ``InvalidStreamingParameter.error_code``
#: kjobs's own codes where SPEC §6 names none
UNAUTHORIZED: Final = "KE-010001201"
UNKNOWN_ROUTE: Final = "KE-010000004"
INTERNAL_ERROR: Final = "KE-010000001"
STORE_UNAVAILABLE: Final = "KE-010000005"  #: the store refuses writes or is broken
RETRY_AFTER_S: Final = 5  #: ``Retry-After`` of a 503 for a refused write


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """How one error type answers: HTTP status and Kylin error code."""

    status: int
    code: str
    retry_after: int | None = None  #: seconds, sent as ``Retry-After``


# ---------------------------------------------------------------------------------------------
# THE table. The most specific class in an exception's MRO wins, so a subclass row overrides
# its parent's row; a KjobsError with no row in its MRO is a real fault (500).
# ---------------------------------------------------------------------------------------------
ERROR_TABLE: Final[Mapping[type[BaseException], ErrorKind]] = {
    InvalidRequest: ErrorKind(400, INVALID_PARAMETER),
    RequestValidationError: ErrorKind(400, INVALID_PARAMETER),
    JobNotFound: ErrorKind(404, UNKNOWN_JOB),
    StepNotFound: ErrorKind(404, UNKNOWN_JOB),
    CatalogNotFound: ErrorKind(404, UNKNOWN_CATALOG_ENTRY),
    NotFoundError: ErrorKind(404, UNKNOWN_JOB),
    NotAllowed: ErrorKind(409, JOB_ACTION_NOT_ALLOWED),
    OperationNotAllowed: ErrorKind(409, JOB_ACTION_NOT_ALLOWED),
    SegmentsOverlap: ErrorKind(409, SEGMENTS_OVERLAP),
    StreamingActionNotAllowed: ErrorKind(409, STREAMING_START_REFUSED),
    ModelBroken: ErrorKind(409, STREAMING_START_REFUSED),
    # a write that lost its race MAX_RACES times in a row: the state kept changing under it
    ConcurrentModification: ErrorKind(409, JOB_ACTION_NOT_ALLOWED),
    # the store refused the write (nothing changed) or broke: never a silent success, never 500
    StoreUnavailable: ErrorKind(503, STORE_UNAVAILABLE, RETRY_AFTER_S),
    StoreBroken: ErrorKind(503, STORE_UNAVAILABLE),
}

#: what a Starlette HTTP error (no route, wrong method) answers with
_HTTP_CODES: Final[Mapping[int, str]] = {
    400: INVALID_PARAMETER,
    401: UNAUTHORIZED,
    404: UNKNOWN_ROUTE,
}


def kind_of(exc: BaseException) -> ErrorKind | None:
    """The table row for ``exc`` (most specific class first), None for a real fault."""
    for cls in type(exc).__mro__:
        kind = ERROR_TABLE.get(cls)
        if kind is not None:
            code = getattr(exc, "error_code", None)
            return ErrorKind(kind.status, code, kind.retry_after) if isinstance(code, str) else kind
    return None


def error_body(
    msg: str, url: str, error_code: str, stacktrace: str | None = None
) -> dict[str, Any]:
    """Kylin's error body, keys in Kylin's order (``stacktrace`` only in debug mode)."""
    body: dict[str, Any] = {
        "code": "999",
        "data": None,
        "msg": msg,
        "exception": msg,
        "url": url,
        "error_code": error_code,
    }
    if stacktrace is not None:
        body["stacktrace"] = stacktrace
    return body


def error_response(
    request: Request,
    status: int,
    msg: str,
    error_code: str,
    headers: Mapping[str, str] | None = None,
    exc: BaseException | None = None,
) -> JSONResponse:
    """A JSON error answer with Kylin's body."""
    trace = None
    if exc is not None and getattr(request.app.state, "kjobs_debug", False):
        trace = "".join(traceback.format_exception(exc))
    body = error_body(msg, str(request.url), error_code, trace)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


#: what a parameter checked by a pattern may be, in words (routes add theirs)
PATTERN_HINTS: dict[str, str] = {}


def validation_message(exc: RequestValidationError) -> str:
    """One line naming the first bad parameter or body field and what is wrong with it."""
    errors = exc.errors()
    if not errors:
        return "Invalid request"
    first = errors[0]
    problem = str(first.get("msg", "invalid value"))
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", problem)
        return f"Malformed JSON body: {detail}"
    loc = [str(part) for part in first.get("loc", ())]
    where = loc[0] if loc else "request"
    names = [n for n in loc[1:] if not n.isdigit()]
    hint = PATTERN_HINTS.get(names[-1]) if names else None
    if first.get("type") == "string_pattern_mismatch" and hint is not None:
        problem = f"{first.get('input')!r} is not one of {hint}"  # not the regex
    if not names:
        return f"Invalid {where}: {problem}"
    return f"Invalid {where} parameter '{'.'.join(names)}': {problem}"


async def _kjobs_error(request: Request, exc: Exception) -> JSONResponse:
    kind = kind_of(exc)
    if kind is None:
        return await _internal_error(request, exc)
    headers = {"Retry-After": str(kind.retry_after)} if kind.retry_after is not None else None
    if kind.retry_after is not None:  # (a broken store ends the process: its line says why)
        log.warning("kjobs.api.store_unavailable", path=request.url.path, error=str(exc))
    return error_response(request, kind.status, str(exc), kind.code, headers, exc=exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 400, validation_message(exc), INVALID_PARAMETER)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        msg = f"No such endpoint: {request.method} {request.url.path}"
    else:
        msg = str(exc.detail)
    code = _HTTP_CODES.get(exc.status_code, INVALID_PARAMETER)
    return error_response(request, exc.status_code, msg, code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "kjobs.api.internal_error",
        method=request.method,
        path=request.url.path,
        error=type(exc).__name__,
        exc_info=exc,
    )
    return error_response(
        request, 500, f"Internal server error: {type(exc).__name__}", INTERNAL_ERROR, exc=exc
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the table: Kylin bodies, 400 (never 422), 404 for no route."""
    app.add_exception_handler(KjobsError, _kjobs_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
