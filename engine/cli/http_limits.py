"""``kjobs serve``'s HTTP/1.1 protocol: uvicorn's h11 one, with a bound on the request head and
Kylin's JSON error body (``engine.api.errors``) for a head it refuses.

A request whose line and headers exceed ``kjobs.server.max-request-head`` bytes is answered, and
its connection closed, before any of it reaches the application: ``414`` when the request line
alone is longer, else ``431``. A head h11 cannot parse at all is answered ``400``. uvicorn's own
answer to both is ``400`` with a plain-text body; a head larger than its h11 buffer that arrives
in one piece is not refused by it at all.
"""

from __future__ import annotations

import json
from typing import Final

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine.api.errors import INVALID_PARAMETER, error_body

DEFAULT_LIMIT: Final = 16 * 1024  #: h11's own default
LINGER_SECONDS: Final = 2.0  #: after a refusal, the rest of the request is read and dropped
_REASONS: Final = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def refusal(status: int, msg: str, url: str = "") -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 answer with Kylin's error body."""
    body = json.dumps(error_body(msg, url, INVALID_PARAMETER)).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def head_refusal(head: bytes, limit: int) -> bytes | None:
    """The answer to a request head (what arrived of it so far) over ``limit``, else None."""
    end = head.find(b"\r\n\r\n")
    size = end + 4 if end >= 0 else len(head)
    if size <= limit:
        return None
    line_end = head.find(b"\n")
    if line_end < 0 or line_end > limit:
        msg = f"Request line longer than {limit} bytes (kjobs.server.max-request-head)"
        return refusal(414, msg)
    target = head[:line_end].split(b" ")
    url = target[1].decode("latin-1")[:200] if len(target) > 1 else ""
    msg = f"Request headers longer than {limit} bytes in all (kjobs.server.max-request-head)"
    return refusal(431, msg, url)


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that bounds the request head and answers refusals in JSON."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        limit = self.config.h11_max_incomplete_event_size
        self._limit = limit if limit is not None else DEFAULT_LIMIT
        self._head = bytearray()  #: what arrived of the head h11 has not parsed yet
        self._refused = False

    def data_received(self, data: bytes) -> None:
        """Refuse a head over the limit; hand everything else to h11."""
        if self._refused:
            return  # the rest of a refused request: dropped
        if self.conn.their_state is h11.IDLE:
            self._head += data[: self._limit + 4 - len(self._head)]
            answer = head_refusal(bytes(self._head), self._limit)
            if answer is not None:
                self.logger.warning("Request head over %d bytes refused", self._limit)
                self._refuse(answer)
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head.clear()  # the head is parsed: the next one is counted afresh

    def eof_received(self) -> None:
        """The client is done sending: after a refusal, the connection can go now."""
        if self._refused:
            self.transport.close()
            return
        super().eof_received()

    def send_400_response(self, msg: str) -> None:
        """h11 could not parse the head: ``400`` with Kylin's body."""
        self._refuse(refusal(400, f"{msg} (malformed request line or headers)"))

    def _refuse(self, answer: bytes) -> None:
        """Answer, then close gently: closing a socket with unread input resets it, and the
        client may lose the answer; so the rest of the request is read and dropped first (until
        the client closes its side, or ``LINGER_SECONDS``)."""
        self._refused = True
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
