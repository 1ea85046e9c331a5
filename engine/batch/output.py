"""Live output of running steps: bounded in memory, readable while the step runs.

The text becomes durable in the store when the attempt ends (in the same write as the step's
new state), which is what SPEC §2 asks: durable at least when the step ends, readable live.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

NO_OUTPUT = "no output"  #: what a step reset by resume/restart/recovery shows until it runs


class LiveOutput:
    """The output of one attempt, keeping at most ``max_bytes`` of its tail."""

    __slots__ = ("_chunks", "_cut", "_listener", "_max", "_size")

    def __init__(self, max_bytes: int, listener: Callable[[str], None] | None = None) -> None:
        self._chunks: deque[str] = deque()
        self._size = 0  # characters held (a cheap stand-in for bytes; the store bounds bytes)
        self._cut = 0
        self._max = max_bytes
        self._listener = listener

    def write(self, text: str) -> None:
        """Append ``text``, dropping the oldest chunks beyond the bound."""
        if not text:
            return
        self._chunks.append(text)
        self._size += len(text)
        while self._size > self._max and len(self._chunks) > 1:
            dropped = self._chunks.popleft()
            self._size -= len(dropped)
            self._cut += len(dropped)
        if self._listener is not None:
            self._listener(text)

    def text(self) -> str:
        """Everything kept so far, with a note when the head was cut."""
        body = "".join(self._chunks)
        if self._size > self._max:
            body = body[-self._max :]
        if self._cut:
            return f"[kjobs: {self._cut} characters of earlier output were cut]\n{body}"
        return body

    def __bool__(self) -> bool:
        return bool(self._chunks)
