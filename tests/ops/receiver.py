"""A real HTTP receiver of job-end notifications on loopback, in a thread of the test process.

``Receiver(fail_first=2)`` answers 503 to its first two POSTs, then 200. Every POST is kept
(parsed JSON) in arrival order; ``wait_for(predicate, timeout)`` blocks until the received
bodies satisfy ``predicate`` (use it through ``anyio.to_thread.run_sync`` in async tests).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Bodies = list[dict[str, Any]]


def free_port() -> int:
    """A loopback port nobody listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """A notification receiver on ``127.0.0.1:port`` (a free port when 0)."""

    def __init__(self, port: int = 0, *, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.posts: Bodies = []  #: every POST, accepted or not
        self.accepted: Bodies = []
        self.headers: list[dict[str, str]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                ok = receiver._record(body, dict(self.headers))
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/kylin-hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> bool:
        with self._cond:
            self.posts.append(body)
            self.headers.append(headers)
            ok = len(self.posts) > self.fail_first
            if ok:
                self.accepted.append(body)
            self._cond.notify_all()
            return ok

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def wait_for(self, done: Callable[[Bodies], bool], timeout: float = 30.0) -> Bodies:
        """Block until ``done(accepted bodies)``; ``TimeoutError`` after ``timeout`` s."""
        with self._cond:
            if not self._cond.wait_for(lambda: done(self.accepted), timeout):
                raise TimeoutError(f"receiver got {self.posts!r}")
            return list(self.accepted)
