"""``VirtualClock``: a deterministic clock on which hours of workflow run in seconds.

The engine asks its ``Clock`` for the time and sleeps on it; nothing else waits for time. On a
``VirtualClock`` a sleep registers a timer, and time jumps to the earliest timer only when the
whole program is waiting:

- the event loop has nothing ready to run (every task is blocked on this clock, an event, a lock
  or a queue), and
- no work registered with ``busy()`` is outstanding (a store call running on a thread, such as
  every aiosqlite call, looks idle to the event loop while the thread works).

Then results cannot depend on machine speed or thread timing: the same program on the same
inputs takes the same steps at the same virtual instants. Timers due at the same instant wake
in the order they were set.

Prior art: trio's ``MockClock(autojump_threshold=0)`` and ``looptime`` jump time when the loop is
idle; the ``busy()`` count is the extra rule that keeps a thread-backed write from being mistaken
for idleness. Idleness is read from the asyncio loop's ready queue, so the clock needs asyncio's
own event loop (the default under anyio and pytest-asyncio; uvloop is not supported).

Time moves only while something drives the clock, in one of two ways:

- explicitly, from one task: ``await clock.advance(seconds)``, ``await clock.run_until(ms)``,
  ``await clock.run_until_true(predicate, within=seconds)``;
- automatically: ``async with clock.autojump(): ...`` starts a driver task that jumps whenever the
  program is idle (convenient in tests that just ``await engine.wait_for(...)``).

::

    clock = VirtualClock()
    async with Engine(config, store=":memory:", clock=clock) as engine:
        job = await engine.submit_build("kylin_sales_cube")
        await clock.advance(3600)            # one simulated hour, in milliseconds of wall time
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

from engine.core.timefmt import format_iso, parse_iso

#: 2024-01-01T00:00:00Z: where virtual time starts unless told otherwise
DEFAULT_START_MS: Final = 1_704_067_200_000
_US_PER_MS: Final = 1_000
_US_PER_S: Final = 1_000_000


class VirtualClock:
    """A ``Clock`` whose time advances only when every task waits on it (see module doc)."""

    def __init__(self, start_ms: int = DEFAULT_START_MS) -> None:
        self._now_us = start_ms * _US_PER_MS
        self._timers: list[tuple[int, int, asyncio.Future[None]]] = []  # (deadline, seq, fut)
        self._seq = itertools.count()
        self._busy = 0
        self._driving = False
        self._wakeup: asyncio.Future[None] | None = None  #: a parked driver waits on it
        self.fired = 0  #: timers woken so far (for progress reports and benchmarks)

    # -- the Clock protocol -----------------------------------------------------------------

    def now_ms(self) -> int:
        """Virtual time, epoch milliseconds."""
        return self._now_us // _US_PER_MS

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time; 0 (or less) only yields once to the loop."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        deadline = self._now_us + round(seconds * _US_PER_S)
        heapq.heappush(self._timers, (deadline, next(self._seq), future))
        self._wake_driver()
        await future

    # -- more about time ----------------------------------------------------------------------

    @property
    def now_us(self) -> int:
        """Virtual time, epoch microseconds (the clock's resolution)."""
        return self._now_us

    def isoformat(self) -> str:
        """Virtual time as ISO 8601 UTC (``2024-01-01T00:00:00.000Z``)."""
        return format_iso(self.now_ms())

    def next_deadline_ms(self) -> int | None:
        """When the earliest pending timer is due (epoch ms), None when none is pending."""
        deadline = self._next_deadline()
        return None if deadline is None else deadline // _US_PER_MS

    @property
    def pending(self) -> int:
        """Timers set and not yet woken or cancelled."""
        return sum(1 for _, _, f in self._timers if not f.done())

    # -- in-flight work -------------------------------------------------------------------------

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Mark real work in flight (e.g. a store call on a thread): time stands still meanwhile.

        ``with clock.busy(): await store.save_job(write)``
        """
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._wake_driver()

    @property
    def busy_count(self) -> int:
        """How many ``busy()`` sections are open now."""
        return self._busy

    # -- driving ------------------------------------------------------------------------------

    async def wait_idle(self) -> None:
        """Let everything that can run, run; return once the program is idle. Time stays put.

        For the task that drives the clock (explicit mode); refused while ``autojump`` runs.
        """
        with self._driver():
            await self._wait_idle()

    async def settle(self) -> None:
        """Return once every other task is blocked; for use inside a ``busy()`` section.

        A thread-backed call that ends inside ``busy()`` and settles before leaving it always
        resumes its caller from the same global state (all other tasks blocked, time unmoved),
        however long the thread took: ``with clock.busy(): r = await call(); await
        clock.settle()``.
        """
        ready = _ready_queue()
        while True:
            await asyncio.sleep(0)
            if not ready:
                return

    async def _wait_idle(self) -> None:
        ready = _ready_queue()
        while True:
            await asyncio.sleep(0)
            if self._busy:
                await self._park()
            elif not ready:
                return

    async def run_until(
        self, when_ms: int, *, progress: Callable[[int], None] | None = None
    ) -> None:
        """Drive time up to ``when_ms`` (epoch ms), waking every timer due by then, in order.

        Returns with the clock at ``when_ms`` and the program idle. ``progress(now_ms)`` is
        called after every jump.
        """
        with self._driver():
            target = when_ms * _US_PER_MS
            while True:
                await self._wait_idle()
                deadline = self._next_deadline()
                if deadline is None or deadline > target:
                    self._now_us = max(self._now_us, target)
                    return
                self._fire(deadline)
                if progress is not None:
                    progress(self.now_ms())

    async def advance(self, seconds: float) -> None:
        """Drive time ``seconds`` forward (``run_until(now + seconds)``)."""
        await self.run_until((self._now_us + round(seconds * _US_PER_S)) // _US_PER_MS)

    async def run_until_true(self, predicate: Callable[[], bool], *, within: float) -> None:
        """Drive time until ``predicate()`` holds at an idle moment; ``TimeoutError`` after
        ``within`` seconds of virtual time (the clock then stands at that limit).
        """
        with self._driver():
            limit = self._now_us + round(within * _US_PER_S)
            while True:
                await self._wait_idle()
                if predicate():
                    return
                deadline = self._next_deadline()
                if deadline is None or deadline > limit:
                    self._now_us = max(self._now_us, limit)
                    raise TimeoutError(
                        f"still false after {within} s of virtual time (now {self.isoformat()})"
                    )
                self._fire(deadline)

    @asynccontextmanager
    async def autojump(self) -> AsyncIterator[VirtualClock]:
        """Jump time whenever the program is idle, for as long as the block runs."""
        with self._driver():
            task = asyncio.get_running_loop().create_task(
                self._autojump_forever(), name="kjobs.virtual-clock"
            )
            try:
                yield self
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _autojump_forever(self) -> None:
        while True:
            await self._wait_idle()
            deadline = self._next_deadline()
            if deadline is None:
                await self._park()
            else:
                self._fire(deadline)

    # -- internals ----------------------------------------------------------------------------

    @contextmanager
    def _driver(self) -> Iterator[None]:
        if self._driving:
            raise RuntimeError("this VirtualClock is already being driven by another task")
        self._driving = True
        try:
            yield
        finally:
            self._driving = False

    def _next_deadline(self) -> int | None:
        timers = self._timers
        while timers and timers[0][2].done():  # cancelled sleeps leave their entry behind
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _fire(self, deadline: int) -> None:
        """Jump to ``deadline`` and wake every timer due then, in the order they were set."""
        self._now_us = max(self._now_us, deadline)
        timers = self._timers
        while timers and timers[0][0] <= deadline:
            _, _, future = heapq.heappop(timers)
            if not future.done():
                future.set_result(None)
                self.fired += 1

    async def _park(self) -> None:
        """Wait until a timer is set or the last ``busy()`` section ends."""
        wakeup = self._wakeup
        if wakeup is None or wakeup.done():
            wakeup = self._wakeup = asyncio.get_running_loop().create_future()
        await wakeup

    def _wake_driver(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)


def _ready_queue() -> deque[Any]:
    """The running asyncio loop's queue of callbacks ready to run."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    if not isinstance(ready, deque):
        raise RuntimeError(
            f"VirtualClock needs asyncio's standard event loop; {type(loop).__name__} has no "
            "ready queue to watch"
        )
    return ready


__all__ = ["DEFAULT_START_MS", "VirtualClock", "format_iso", "parse_iso"]
