"""The clock port. Nothing outside this module reads the time or sleeps on its own.

``SystemClock`` is real time; the deterministic ``VirtualClock`` of simulations is in
``engine.clock.virtual``. Both answer the same two questions.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    """Where the engine gets "now" and how it waits."""

    def now_ms(self) -> int:
        """Current time, epoch milliseconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (0 still yields once)."""


class SystemClock:
    """Wall-clock time."""

    def now_ms(self) -> int:
        """Current wall-clock time, epoch milliseconds."""
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        """Sleep in real time."""
        await anyio.sleep(max(0.0, seconds))


def monotonic() -> float:
    """Seconds from an arbitrary start that never goes back (for measuring, not for records)."""
    return time.perf_counter()
