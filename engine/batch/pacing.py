"""Runner pacing: how much step work one event-loop iteration may do.

asyncio runs every callback that is ready at the start of an iteration before it polls the
network again. A saturated engine makes long iterations: a group commit settles a hundred
runners at once, and each then runs its next step in the same iteration. Measured under
``bench.rest`` (100 builds running, 10 clients submitting): iterations of 16 ms at the median,
and a build ``PUT``, which needs about eleven iterations, waited 170 ms.

``Pacer.turn()`` is the gate a runner passes before each step. While the loop is not busy the
gate is free: no yield, one ``call_soon`` per iteration at most. Once the runners of the current
iteration have spent ``budget_s`` the next ones queue, first come first served, and each later
iteration lets a few through: as many as kept the iterations near the budget so far (more while
they are short, half as many after a long one). Everything else the loop has to do (requests,
the store's writer, timers) runs between, so it waits about one budget per iteration, not one
whole wave of runners. The engine's throughput stays: the work is the same, only its order
changes.

A simulation on the virtual clock is not paced (``Pacer(None)``): which runner queues depends
on real time, and a simulation's events must not.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final

BUDGET_S: Final = 0.002  #: runner work per event-loop iteration once the loop is busy
MAX_PER_TICK: Final = 256  #: the most runners one iteration lets through


class Pacer:
    """The gate before each step: free while an iteration is within budget, else a FIFO."""

    def __init__(self, budget_s: float | None = BUDGET_S) -> None:
        """``budget_s`` None: never pace (every turn is free)."""
        if budget_s is not None and budget_s <= 0:
            raise ValueError(f"budget_s must be positive: {budget_s}")
        self._budget = budget_s
        self._began = 0.0  #: when the current iteration's runner work began
        self._ticking = False  #: a tick is scheduled for the next iteration
        self._queue: deque[asyncio.Future[None]] = deque()
        self._per_tick = 1  #: runners let through per iteration while they queue
        self.waits = 0  #: turns that had to wait (how often the loop was busy)

    @property
    def waiting(self) -> int:
        """Runners queued for a turn now."""
        return len(self._queue)

    async def turn(self) -> None:
        """Return when this runner may do its next step's work (at once if the loop is idle)."""
        if self._budget is None:
            return
        now = time.perf_counter()
        if not self._ticking:  # the first runner of an iteration: its budget starts now
            self._began = now
            self._ticking = True
            asyncio.get_running_loop().call_soon(self._tick)
            return
        if not self._queue and now - self._began < self._budget:
            return
        self.waits += 1
        ticket = asyncio.get_running_loop().create_future()
        self._queue.append(ticket)
        try:
            await ticket
        except BaseException:
            ticket.cancel()  # a tick skips it (a granted turn is simply not used)
            raise

    def _tick(self) -> None:
        """At the start of an iteration: a new budget, and some queued runners let through."""
        now = time.perf_counter()
        spent, self._began = now - self._began, now
        if not self._queue:
            self._ticking = False
            return
        asyncio.get_running_loop().call_soon(self._tick)
        assert self._budget is not None  # only a paced turn schedules ticks
        if spent > 2 * self._budget:
            self._per_tick = max(1, self._per_tick // 2)
        elif self._per_tick < MAX_PER_TICK:
            self._per_tick += 1
        granted = 0
        while self._queue and granted < self._per_tick:
            ticket = self._queue.popleft()
            if not ticket.done():
                ticket.set_result(None)
                granted += 1
