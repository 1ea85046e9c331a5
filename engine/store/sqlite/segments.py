"""The cube segments a ``SqliteJobStore`` knows, kept in memory per cube.

Every build reads its cube's segments twice (planning at submit, landing at "Update Cube
Info"); with a thousand segments per cube that read was the largest cost of a submit. After
a cube's first read its list is kept and updated by each write this store commits. A read
that raced with a write (the write committed while the read was loading) is answered but not
kept.

Several ``kjobs serve`` may share one file (SPEC §9). Each transaction of this process starts by
reading the file's ``data_version``, which changes only when another connection committed:
then every cube is forgotten (``clear``) and read again. A build plans under its cube's lock,
whose claim is a transaction, so it never plans against another node's stale view; a read
alone sees another node's changes after this node's next write (its heartbeat at the latest).
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable

from engine.core.jobs import Segment
from engine.store.ports import SegmentChange


def _order(segment: Segment) -> tuple[int, int, str]:
    return (segment.start, segment.end, segment.uuid)


class SegmentCache:
    """Segments per cube, by range start (then end, then uuid)."""

    def __init__(self) -> None:
        self._cubes: dict[str, list[Segment]] = {}
        self._cube_of: dict[str, str] = {}  #: uuid -> cube, for the cubes kept
        self._writes = 0  #: committed segment changes so far

    async def get(
        self, cube: str, load: Callable[[str], Awaitable[list[Segment]]]
    ) -> list[Segment]:
        """The cube's segments (a copy), loaded with ``load`` on the first read."""
        known = self._cubes.get(cube)
        if known is not None:
            return list(known)
        writes = self._writes
        found = await load(cube)
        if writes == self._writes:  # no write landed while loading: the list is current
            self._cubes[cube] = sorted(found, key=_order)
            self._cube_of.update((s.uuid, cube) for s in found)
        return found

    def clear(self) -> None:
        """Forget every cube (another process wrote to the file): the next reads load."""
        self._writes += 1  # a load in flight may predate the other process's writes
        self._cubes.clear()
        self._cube_of.clear()

    def committed(self, change: SegmentChange) -> None:
        """Apply a change that was just committed (upserts first, then deletes, as stored)."""
        self._writes += 1
        for segment in change.upsert:
            self._drop(segment.uuid)
            kept = self._cubes.get(segment.cube)
            if kept is not None:
                bisect.insort(kept, segment, key=_order)
                self._cube_of[segment.uuid] = segment.cube
        for uuid in change.delete:
            self._drop(uuid)

    def _drop(self, uuid: str) -> None:
        cube = self._cube_of.pop(uuid, None)
        if cube is not None:
            self._cubes[cube] = [s for s in self._cubes[cube] if s.uuid != uuid]
