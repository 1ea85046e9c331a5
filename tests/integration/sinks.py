"""Real sinks for executor tests: they collect what an executor writes."""

from __future__ import annotations

import anyio


class Lines:
    """An output sink that keeps every line and wakes waiters on each write."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = anyio.Event()

    def write(self, text: str) -> None:
        self.lines.append(text)
        self._changed.set()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    async def wait_for(self, needle: str) -> None:
        while needle not in self.text:
            event = self._changed = anyio.Event()
            await event.wait()
