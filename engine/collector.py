"""The engine process's garbage collector (``kjobs.gc-threshold``).

Python's young-generation collection runs every 700 allocations, and every tenth and hundredth
of them walks the older generations too: with a hundred jobs in flight, each step boundary
allocates a few hundred short-lived objects (a decision, a write, its rows, a future), so the
collector ran on almost every boundary and took a quarter of the engine's CPU (measured A/B on
the durable bench: 359 -> 285 µs of CPU per step). A running engine raises the young threshold
and puts the old one back when it stops; 0 leaves the collector alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_threshold(young: int) -> Iterator[None]:
    """Raise the young-generation threshold to ``young`` (never lower it) for the block."""
    before = gc.get_threshold()
    if young > before[0]:
        gc.set_threshold(young, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
