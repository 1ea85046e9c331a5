"""HTTP Basic authentication of everything under ``/kylin`` (SPEC §6, §10).

The API under ``/kylin/api``, the monitor page under ``/kylin/`` and, unless
``kjobs.metrics.public`` is set, ``/metrics``.

A pure ASGI middleware, so that it guards unknown routes too (a request without valid
credentials learns nothing, not even whether a route exists) and costs one header parse per
request. Users come from ``EngineSettings.users``. Every configured user is compared, with
``hmac.compare_digest``, whatever the outcome, so that timing reveals neither names nor
passwords. Credentials are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterable
from typing import Final

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api.errors import UNAUTHORIZED, error_body
from engine.config.settings import User
from engine.logging import get_logger

log = get_logger()

API_PREFIX: Final = "/kylin/api"
MONITOR_PREFIX: Final = "/kylin"  #: the page and its files; contains API_PREFIX
METRICS_PATH: Final = "/metrics"
USER_KEY: Final = "kjobs.user"  #: where the authenticated ``User`` is kept in the ASGI scope
CHALLENGE: Final = 'Basic realm="kylin"'


def guarded(path: str, prefix: str = API_PREFIX) -> bool:
    """Whether ``path`` needs credentials (``/openapi.json`` and ``/docs`` do not)."""
    return path == prefix or path.startswith(prefix + "/")


def parse_basic(header: bytes | None) -> tuple[bytes, bytes] | None:
    """``Authorization: Basic base64(user:password)`` -> (user, password) bytes, else None."""
    if not header:
        return None
    scheme, _, token = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    name, sep, password = decoded.partition(b":")
    return (name, password) if sep else None


class Authenticator:
    """Checks credentials against the configured users in constant time."""

    def __init__(self, users: Iterable[User]) -> None:
        self._users = tuple((u, u.name.encode("utf-8"), u.password.encode("utf-8")) for u in users)

    def check(self, header: bytes | None) -> User | None:
        """The user the ``Authorization`` header proves, or None."""
        creds = parse_basic(header)
        name, password = creds if creds is not None else (b"", b"")
        found: User | None = None
        for user, user_name, user_password in self._users:
            same_name = hmac.compare_digest(name, user_name)
            same_password = hmac.compare_digest(password, user_password)
            if same_name and same_password and creds is not None:
                found = user
        return found


class BasicAuthMiddleware:
    """Answers 401 to any request under the prefixes without valid Basic credentials."""

    def __init__(
        self, app: ASGIApp, users: Iterable[User], prefixes: Iterable[str] = (API_PREFIX,)
    ) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.authenticator = Authenticator(users)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate HTTP requests under the prefixes; pass everything else through."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not any(guarded(path, prefix) for prefix in self.prefixes):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        user = self.authenticator.check(header)
        if user is None:
            log.info("kjobs.api.unauthorized", path=scope["path"])
            await _unauthorized(scope, send)
            return
        scope[USER_KEY] = user
        await self.app(scope, receive, send)


def guarded_prefixes(metrics_public: bool) -> tuple[str, ...]:
    """What ``BasicAuthMiddleware`` guards: ``/kylin/…`` always, ``/metrics`` unless public."""
    return (MONITOR_PREFIX,) if metrics_public else (MONITOR_PREFIX, METRICS_PATH)


async def _unauthorized(scope: Scope, send: Send) -> None:
    url = str(Request(scope).url)
    body = json.dumps(error_body("Unauthorized", url, UNAUTHORIZED), separators=(",", ":"))
    payload = body.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode("ascii")),
                (b"www-authenticate", CHALLENGE.encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def current_user(request: Request) -> User:
    """The user the middleware authenticated for this request (async: no thread hop)."""
    user = request.scope.get(USER_KEY)
    if not isinstance(user, User):  # only reachable if a route is mounted outside the prefix
        raise RuntimeError("request was not authenticated")
    return user
