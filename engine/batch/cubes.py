"""Segment management (SPEC §6.1): the decisions are ``engine.core.segments``; this loads what
they need and writes the result.

``CubeSegments`` is the one door to a cube's segments: a build plans its segment here
(``planning``), a segment is deleted or a cube purged here. One at a time in this engine (a
lock, and the segments of submits still writing stay visible to the next plan), and one node at
a time per cube on a shared store (``CubeLocks``): no build is planned against segments that
are going away, or against the same view as another node's build.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from anyio.abc import TaskGroup

from engine.batch.cube_locks import CubeLocks
from engine.clock import Clock
from engine.core.jobs import Job, Segment
from engine.core.segments import UNFINISHED, plan_delete, plan_purge, plan_segment
from engine.logging import get_logger
from engine.store.commit import JobLocks
from engine.store.ports import JobStore, LeaseStore

log = get_logger()


class CubeSegments:
    """Plans, deletes and purges the segments of cubes in ``store``."""

    def __init__(
        self,
        store: JobStore,
        leases: LeaseStore,
        node_id: str,
        clock: Clock,
        new_id: Callable[[], str],
    ) -> None:
        self._store = store
        self._new_id = new_id
        # planning in this engine: one at a time per cube. A free lock is taken without a
        # yield (anyio's Lock yields while holding it): planning from the cached segments
        # then runs start to end in one go, and concurrent submits of a cube never queue.
        self._locks_here = JobLocks()
        self._locks = CubeLocks(leases, node_id, clock)
        #: NEW segments planned by submits whose write has not returned yet: the lock covers
        #: planning only, so that concurrent submits share a group commit
        self._planned: dict[str, Segment] = {}

    def attach(self, tg: TaskGroup) -> None:
        """The running engine's task group: cube locks are released from it (``CubeLocks``)."""
        self._locks.attach(tg)

    @asynccontextmanager
    async def planning(
        self, cube: str, build_type: str, start: int, end: int
    ) -> AsyncIterator[Segment]:
        """``async with segments.planning(...) as segment:`` write the build's job in the body;
        the segment counts as planned (for this engine and, by the cube's lock, every node)
        until the body ends."""
        async with self._locks.hold(cube):
            async with self._locks_here.hold(cube):
                existing = await self._store.segments(cube)
                planned = [s for s in self._planned.values() if s.cube == cube]
                if planned:
                    existing = sorted([*existing, *planned], key=lambda s: (s.start, s.end, s.uuid))
                segment = plan_segment(self._new_id(), cube, build_type, start, end, existing)
                self._planned[segment.uuid] = segment
            try:
                yield segment
            finally:
                self._planned.pop(segment.uuid, None)

    async def delete(self, cube: str, name: str) -> list[Segment]:
        """Delete segment ``name`` of ``cube`` if the core allows it; the cube's segments left."""
        async with self._locks.hold(cube), self._locks_here.hold(cube):
            target = plan_delete(
                cube, name, await self._store.segments(cube), await self._unfinished(cube)
            )
            await self._store.delete_segments([target.uuid])
        log.info("kjobs.segment.deleted", cube=cube, segment=name)
        return await self._store.segments(cube)

    async def purge(self, cube: str) -> list[Segment]:
        """Delete every segment of ``cube`` if none of its jobs is unfinished; ``[]``."""
        async with self._locks.hold(cube), self._locks_here.hold(cube):
            segments = await self._store.segments(cube)
            doomed = plan_purge(cube, segments, await self._unfinished(cube))
            await self._store.delete_segments([s.uuid for s in doomed])
        log.info("kjobs.cube.purged", cube=cube, segments=len(doomed))
        return await self._store.segments(cube)

    async def _unfinished(self, cube: str) -> list[Job]:
        return [job for job in await self._store.jobs_in_states(UNFINISHED) if job.cube == cube]
