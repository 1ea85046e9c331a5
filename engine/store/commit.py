"""How the runtime stores a decision, batch and streaming alike (one policy, written once).

1. Hold the job's lock (``JobLocks``): a user action and the engine's own event on one job never
   interleave in this process.
2. Decide on the freshest job, then write with compare-and-set on its version inside a shielded
   cancel scope (``shielded``): a cancelled caller (pause, FORCE_STOP, shutdown) never abandons a
   write half way, so what is stored and what the caller believes stay the same.
3. A write that loses a race (``ConcurrentModification``: another process, or a write made
   outside the lock) is decided again on a fresh read, at most ``MAX_RACES`` times in a row
   (``retry_lost_races``); after that the error is raised, never swallowed.
4. A write the store refuses (``StoreUnavailable``: disk full, I/O error, locked too long,
   connection lost) is tried again by the engine's own writers (a job's runner, a streaming
   loop) with bounded exponential backoff until the store accepts it (``WriteRetry``); a user's
   request is not retried: it gets the error (503) at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import anyio
import anyio.lowlevel

from engine.core.errors import ConcurrentModification, StoreUnavailable
from engine.logging import get_logger

T = TypeVar("T")
J = TypeVar("J")

MAX_RACES = 50  #: a decision re-taken this often in a row means something is badly wrong
FIRST_RETRY_S: Final = 0.1  #: the first wait after a refused write
MAX_RETRY_S: Final = 2.0  #: the longest wait between two tries (the backoff's bound)

log = get_logger()


class JobLocks:
    """A lock per job id: a FIFO of waiters, kept only while someone holds or waits for it.

    A free lock is taken without yielding to the event loop (anyio's ``Lock.acquire`` always
    yields once): a yield per write was a tenth of a long simulation's time, and a write awaits
    its store anyway. ``checkpoint=True`` (the streaming runtime) keeps anyio's other rule: a
    cancelled caller does not take a free lock (a FORCE_STOPped loop never writes its batch
    after the stop). ``checkpoint=False`` (the batch writer) takes it even then: a cancelled
    runner still records its step's outcome. A free lock costs a dict entry, not a lock object
    (the writer takes one per step).
    """

    def __init__(self, *, checkpoint: bool = True) -> None:
        #: job id -> the futures of its waiters, first come first served (while it is held)
        self._locks: dict[str, deque[asyncio.Future[None]]] = {}
        self._checkpoint = checkpoint

    def hold(self, job_id: str) -> _Held:
        """``async with locks.hold(job_id):`` holds the job's lock for the body."""
        return _Held(self, job_id)

    async def _acquire(self, job_id: str) -> None:
        waiters = self._locks.get(job_id)
        if waiters is None:  # free: as anyio's Lock, a cancelled caller does not take it
            if self._checkpoint:
                await anyio.lowlevel.checkpoint_if_cancelled()
            self._locks[job_id] = deque()
            return
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(job_id)  # handed over just as it was cancelled: pass it on
            else:
                waiter.cancel()  # the next release skips it
            raise

    def _release(self, job_id: str) -> None:
        waiters = self._locks[job_id]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the first live waiter owns it now
                return
        del self._locks[job_id]


class _Held:
    """The context manager of ``JobLocks.hold`` (a class: cheaper than a generator)."""

    __slots__ = ("_job_id", "_locks")

    def __init__(self, locks: JobLocks, job_id: str) -> None:
        self._locks = locks
        self._job_id = job_id

    async def __aenter__(self) -> None:
        await self._locks._acquire(self._job_id)

    async def __aexit__(self, *exc: object) -> None:
        self._locks._release(self._job_id)


async def shielded(write: Callable[[], Awaitable[T]]) -> T:
    """Run the final write of a decision where cancellation cannot interrupt it."""
    with anyio.CancelScope(shield=True):
        result = await write()
    return result


async def retry_lost_races(
    job_id: str,
    job: J,
    attempt: Callable[[J], Awaitable[T]],
    reread: Callable[[str], Awaitable[J]],
) -> T:
    """``attempt(job)`` (decide + write); on a lost race, ``reread`` the job and decide again."""
    lost: ConcurrentModification | None = None
    for _ in range(MAX_RACES):
        try:
            return await attempt(job)
        except ConcurrentModification as exc:
            lost = exc
            job = await reread(job_id)
    assert lost is not None
    raise lost


class WriteRetry:
    """The one policy for writes the store refuses: wait, double the wait (up to
    ``max_s``), try again, until the store accepts the write; logged and counted.

    ``on_retry`` is called once per refused try (the engine counts them in
    ``kjobs_store_write_retries_total``). Waits are real time (the store's recovery is), and
    cancellable: a runner that is shut down stops retrying.
    """

    def __init__(
        self,
        on_retry: Callable[[], None] | None = None,
        *,
        first_s: float = FIRST_RETRY_S,
        max_s: float = MAX_RETRY_S,
    ) -> None:
        self.on_retry = on_retry
        self.first_s = first_s
        self.max_s = max_s

    async def until_accepted(self, what: str, write: Callable[[], Awaitable[T]], **ctx: str) -> T:
        """``await write()`` until it is not refused; ``what`` (and ``ctx``) name it in logs."""
        delay, tries, started = self.first_s, 0, time.monotonic()
        while True:
            try:
                result = await write()
            except StoreUnavailable as exc:
                tries += 1
                if tries & (tries - 1) == 0:  # 1st, 2nd, 4th, 8th… refusal: a log line
                    log.warning(
                        "kjobs.store.write_refused", write=what, tries=tries,
                        retry_in_s=delay, reason=exc.reason, **ctx,
                    )  # fmt: skip
                if self.on_retry is not None:
                    self.on_retry()
                await anyio.sleep(delay)
                delay = min(delay * 2, self.max_s)
                continue
            if tries:
                waited = round(time.monotonic() - started, 3)
                log.warning(
                    "kjobs.store.write_accepted", write=what, tries=tries + 1,
                    waited_s=waited, **ctx,
                )  # fmt: skip
            return result
