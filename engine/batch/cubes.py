"""Segment management (SPEC §6.1): the decision is ``engine.core.segments``; this loads what it
needs and writes the result. Callers hold the engine's submit lock, so that no build is planned
against segments that are going away."""

from __future__ import annotations

from engine.core.jobs import Job, Segment
from engine.core.segments import UNFINISHED, plan_delete, plan_purge
from engine.logging import get_logger
from engine.store.ports import JobStore

log = get_logger()


async def _unfinished_jobs(store: JobStore, cube: str) -> list[Job]:
    return [job for job in await store.jobs_in_states(UNFINISHED) if job.cube == cube]


async def delete_segment(store: JobStore, cube: str, name: str) -> list[Segment]:
    """Delete segment ``name`` of ``cube`` if the core allows it; the cube's segments left."""
    target = plan_delete(
        cube, name, await store.segments(cube), await _unfinished_jobs(store, cube)
    )
    await store.delete_segments([target.uuid])
    log.info("kjobs.segment.deleted", cube=cube, segment=name)
    return await store.segments(cube)


async def purge(store: JobStore, cube: str) -> list[Segment]:
    """Delete every segment of ``cube`` if none of its jobs is unfinished; ``[]``."""
    doomed = plan_purge(cube, await store.segments(cube), await _unfinished_jobs(store, cube))
    await store.delete_segments([s.uuid for s in doomed])
    log.info("kjobs.cube.purged", cube=cube, segments=len(doomed))
    return await store.segments(cube)
