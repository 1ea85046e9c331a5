"""A cube's segment planning, one node at a time on a shared store (SPEC §9).

A build plans its segment against the cube's stored segments, then writes its job with that
segment. Within one engine, ``Engine._planned`` shows a planned segment to the submits after
it until its write returns. Across engines on one store (a shared SQLite file, PostgreSQL) a
node holds the cube's lock from before it reads the segments until its write has returned:
two nodes never plan overlapping builds of one cube from the same view.

The lock is a lease in the store's lease table, on the id ``cube:<name>`` (job ids are
uuids): it is fenced and expires like a job's (a node that dies holding it delays the
cube's next submit by at most ``ttl_ms``). In one engine the lease is shared by every submit
of the cube in flight (a count): they still share one group commit. An engine alone with its
store (memory, an unshared file) takes no lease at all.

Once the engine runs (``attach``), the last submit to leave does not release the lease
itself: a background task releases it ``linger_s`` later unless another submit took it up
meanwhile. A stream of submits thus claims the lock once, and no submit waits for a release
write (a claim and a release were 5 of a build ``PUT``'s 8 event-loop iterations); another
node waits at most ``linger_s`` longer for the cube.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import anyio
from anyio.abc import TaskGroup

from engine.clock import Clock
from engine.core.errors import StoreError, StoreUnavailable
from engine.store.ports import Lease, LeaseStore

PREFIX: Final = "cube:"  #: lease ids of cube locks
TTL_MS: Final = 10_000  #: a lock left by a dead node is free again after this
WAIT_S: Final = 0.01  #: between two claims of a lock another node holds
TIMEOUT_S: Final = 10.0  #: a submit waits this long for another node's planning, then 503
LINGER_S: Final = 0.05  #: a lock no submit uses is released this long after the last one


@dataclass(slots=True)
class _Holding:
    """This engine's lease on one cube and how many of its submits use it now."""

    lease: Lease
    users: int = 0
    left_at: float = 0.0  #: when the last user left (``time.monotonic``)
    lingering: bool = False  #: a release task waits for the lock to stay unused


class CubeLocks:
    """``async with locks.hold(cube):`` plans and writes with the cube locked cluster-wide."""

    def __init__(
        self,
        leases: LeaseStore,
        owner: str,
        clock: Clock,
        *,
        ttl_ms: int = TTL_MS,
        timeout_s: float = TIMEOUT_S,
        linger_s: float = LINGER_S,
    ) -> None:
        self._leases = leases
        self._owner = owner
        self._clock = clock
        self._ttl_ms = ttl_ms
        self._timeout_s = timeout_s
        self._linger_s = linger_s
        self._tg: TaskGroup | None = None  #: runs the lingering releases (``attach``)
        self._holding: dict[str, _Holding] = {}
        self._gates: dict[str, anyio.Lock] = {}  #: one claim of a cube at a time, per engine

    def attach(self, tg: TaskGroup) -> None:
        """Release unused locks from ``tg`` (the running engine's) after ``linger_s``."""
        self._tg = tg

    @asynccontextmanager
    async def hold(self, cube: str) -> AsyncIterator[None]:
        """Hold ``cube``'s lock for the body (``StoreUnavailable`` after ``timeout_s``)."""
        if not self._leases.shared:
            yield
            return
        holding = await self._enter(cube)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self._leave(cube, holding)

    async def _enter(self, cube: str) -> _Holding:
        holding = self._holding.get(cube)
        if holding is None:
            async with self._gates.setdefault(cube, anyio.Lock()):
                holding = self._holding.get(cube)
                if holding is None:
                    holding = self._holding[cube] = _Holding(await self._claim(cube))
        holding.users += 1  # no await since the look-up: a leaving submit cannot drop it
        if holding.lease.expires - self._clock.now_ms() < self._ttl_ms // 2:
            holding.lease = await self._claim(cube)  # held for long by a stream of submits
        return holding

    async def _leave(self, cube: str, holding: _Holding) -> None:
        holding.users -= 1
        if holding.users or self._holding.get(cube) is not holding:
            return
        holding.left_at = time.monotonic()
        if holding.lingering:
            return
        if self._tg is not None:
            try:
                self._tg.start_soon(self._linger, cube, holding, name=f"kjobs.cube_lock.{cube}")
            except RuntimeError:  # the engine has stopped: release it here
                pass
            else:
                holding.lingering = True
                return
        await self._release(cube, holding)

    async def _linger(self, cube: str, holding: _Holding) -> None:
        """Release ``holding`` once it stayed unused for ``linger_s`` (or the engine stops)."""
        try:
            while True:
                unused_for = time.monotonic() - holding.left_at
                if unused_for >= self._linger_s or holding.users:
                    break
                await anyio.sleep(self._linger_s - unused_for)
        finally:
            holding.lingering = False
            if holding.users == 0:  # in use again: its last user's leave lingers anew
                with anyio.CancelScope(shield=True), contextlib.suppress(StoreError):
                    await self._release(cube, holding)  # else it expires by itself

    async def _release(self, cube: str, holding: _Holding) -> None:
        if self._holding.get(cube) is holding:
            del self._holding[cube]
            await self._leases.release(holding.lease)  # a newer claim since: a no-op

    async def _claim(self, cube: str) -> Lease:
        deadline = time.monotonic() + self._timeout_s
        while True:
            now = self._clock.now_ms()
            lease = await self._leases.claim(PREFIX + cube, self._owner, now, self._ttl_ms)
            if lease is not None:
                return lease
            if time.monotonic() >= deadline:
                raise StoreUnavailable(
                    f"cube {cube}'s segments are being planned by another node for over "
                    f"{self._timeout_s:g} s"
                )
            await anyio.sleep(WAIT_S)
