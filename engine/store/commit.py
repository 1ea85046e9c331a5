"""How the runtime stores a decision, batch and streaming alike (one policy, written once).

1. Hold the job's lock (``JobLocks``): a user action and the engine's own event on one job never
   interleave in this process.
2. Decide on the freshest job, then write with compare-and-set on its version inside a shielded
   cancel scope (``shielded``): a cancelled caller (pause, FORCE_STOP, shutdown) never abandons a
   write half way, so what is stored and what the caller believes stay the same.
3. A write that loses a race (``ConcurrentModification``: another process, or a write made
   outside the lock) is decided again on a fresh read, at most ``MAX_RACES`` times in a row
   (``retry_lost_races``); after that the error is raised, never swallowed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio

from engine.core.errors import ConcurrentModification

T = TypeVar("T")
J = TypeVar("J")

MAX_RACES = 50  #: a decision re-taken this often in a row means something is badly wrong


class JobLocks:
    """One ``anyio.Lock`` per job id, kept only while someone holds or waits for it.

    ``checkpoint=False`` takes a free lock without yielding to the event loop (anyio's
    ``acquire`` always yields once): the batch writer uses it, so adding its lock did not
    change how tasks interleave (a simulation's event log stays byte-identical); the
    streaming runtime keeps the yield its writes always had.
    """

    def __init__(self, *, checkpoint: bool = True) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}
        self._checkpoint = checkpoint

    @asynccontextmanager
    async def hold(self, job_id: str) -> AsyncIterator[None]:
        """Hold the job's lock for the body."""
        lock, users = self._locks.get(job_id) or (anyio.Lock(), 0)
        self._locks[job_id] = (lock, users + 1)
        try:
            await self._acquire(lock)
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[job_id]
            if users == 1:
                del self._locks[job_id]
            else:
                self._locks[job_id] = (lock, users - 1)

    async def _acquire(self, lock: anyio.Lock) -> None:
        if not self._checkpoint:
            try:
                lock.acquire_nowait()
                return
            except anyio.WouldBlock:
                pass
        await lock.acquire()


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
