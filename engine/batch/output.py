"""Live output of running steps: bounded in memory, readable while the step runs.

The text becomes durable in the store when the attempt ends (in the same write as the step's
new state), which is what SPEC §2 asks: durable at least when the step ends, readable live.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from engine.store.rules import bound_output

NO_OUTPUT = "no output"  #: what a step reset by resume/restart/recovery shows until it runs


@dataclass(frozen=True, slots=True)
class StepOutput:
    """``GET .../steps/{stepId}/output``: the padded step id and its latest output."""

    job_id: str
    step_id: str
    cmd_output: str | None


class LiveOutput:
    """The output of one attempt, keeping at most ``max_bytes`` of its tail."""

    __slots__ = ("_chunks", "_cut", "_listener", "_max", "_size")

    def __init__(self, max_bytes: int, listener: Callable[[str], None] | None = None) -> None:
        self._chunks: deque[str] = deque()
        self._size = 0  # UTF-8 bytes held
        self._cut = 0  # UTF-8 bytes of whole chunks dropped from the head
        self._max = max_bytes
        self._listener = listener

    def write(self, text: str) -> None:
        """Append ``text``, dropping the oldest chunks beyond the bound."""
        if not text:
            return
        self._chunks.append(text)
        self._size += _size(text)
        # drop a head chunk only when the rest still fills the bound: ``text()`` then keeps
        # exactly the tail the store's rule keeps of the whole output
        while len(self._chunks) > 1:
            head = _size(self._chunks[0])
            if self._size - head < self._max:
                break
            self._chunks.popleft()
            self._size -= head
            self._cut += head
        if self._listener is not None:
            self._listener(text)

    def text(self) -> str:
        """What is kept, bounded by the store's one rule (its note counts every byte cut)."""
        return bound_output("".join(self._chunks), self._max, cut=self._cut)

    def __bool__(self) -> bool:
        return bool(self._chunks)


def _size(text: str) -> int:
    """UTF-8 bytes of ``text`` (ASCII, the usual case, costs no encoding)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
