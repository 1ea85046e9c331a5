"""Whether a store accepts writes right now, as its own latest writes found (``GET /health``).

Each store adapter that can fail keeps one ``StoreHealth`` (``health_of(store)`` finds it) and
reports to it: ``refused`` when a write (or read) failed in a way that may pass (disk full, I/O
error, locked too long, connection lost: ``StoreUnavailable``), ``accepted`` when a write
committed, ``broke`` when the store failed so that the engine cannot go on (``StoreBroken``:
a damaged file). The status is ``ok``, ``degraded`` (refusing writes) or ``failing`` (broken);
the engine stops on ``failing`` (``wait_broken``), it rides out ``degraded``.
"""

from __future__ import annotations

import time
from typing import Literal, TypeVar

import anyio

from engine.core.errors import StoreBroken, StoreUnavailable
from engine.logging import get_logger

log = get_logger()

Status = Literal["ok", "degraded", "failing"]
E = TypeVar("E", bound=BaseException)


def caused_by(error: E, cause: BaseException) -> E:
    """``error`` with ``cause`` as its ``__cause__`` (``raise error from cause`` when raised)."""
    error.__cause__ = cause
    return error


class StoreHealth:
    """The write health of one store, named ``name`` (its path or redacted URL)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.refusal: StoreUnavailable | None = None  #: the latest refusal, until a commit
        self.refused_since: float | None = None  #: ``time.monotonic()`` of the first refusal
        self.broken: StoreBroken | None = None
        self._broken_event: anyio.Event | None = None  # made in the loop that waits on it

    @property
    def status(self) -> Status:
        """``failing`` (broken), ``degraded`` (refusing writes) or ``ok``."""
        if self.broken is not None:
            return "failing"
        return "degraded" if self.refusal is not None else "ok"

    def record(self, error: E) -> E:
        """Note what ``error`` says of the store (a refusal, a break; any other error:
        nothing) and hand it back, for the adapters' ``classify``."""
        if isinstance(error, StoreUnavailable):
            self.refused(error)
        elif isinstance(error, StoreBroken):
            self.broke(error)
        return error

    def refused(self, error: StoreUnavailable) -> None:
        """A write or read failed in a way that may pass."""
        if self.refusal is None:
            self.refused_since = time.monotonic()
            log.warning("kjobs.store.degraded", store=self.name, reason=error.reason)
        self.refusal = error

    def accepted(self) -> None:
        """A write committed: the store accepts writes (again)."""
        if self.refusal is None:
            return
        since = self.refused_since or time.monotonic()
        self.refusal = self.refused_since = None
        log.warning("kjobs.store.recovered", store=self.name, seconds=time.monotonic() - since)

    def broke(self, error: StoreBroken) -> None:
        """The store failed for good: whoever waits in ``wait_broken`` is told."""
        if self.broken is None:
            self.broken = error
        if self._broken_event is not None:
            self._broken_event.set()

    async def wait_broken(self) -> StoreBroken:
        """Return once the store is broken (the engine's watchdog)."""
        if self.broken is None:
            if self._broken_event is None:
                self._broken_event = anyio.Event()
            await self._broken_event.wait()
        assert self.broken is not None
        return self.broken


def health_of(store: object) -> StoreHealth | None:
    """The ``StoreHealth`` a store keeps (None for a store that cannot fail: memory)."""
    health = getattr(store, "health", None)
    return health if isinstance(health, StoreHealth) else None


async def watch_store(health: StoreHealth | None, ended: anyio.Event) -> None:
    """Raise the store's ``StoreBroken`` once it breaks (the engine's task group then ends:
    the engine cannot go on). Set ``ended`` when the engine's task group ends, for whatever
    reason (``kjobs serve`` stops serving then: no server without an engine)."""
    try:
        if health is not None:
            raise await health.wait_broken()
        await anyio.sleep_forever()
    finally:
        ended.set()
