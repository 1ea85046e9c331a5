"""Cube segments (SPEC §2.2): which range a BUILD, MERGE or REFRESH may take, and what it leaves.

Pure functions over the cube's current segments; the store persists the result.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from engine.core.errors import InvalidRequest, NotAllowed, SegmentNotFound, SegmentsOverlap
from engine.core.jobs import FULL_BUILD_END, Job, Segment, segment_name
from engine.core.states import BuildType, SegmentStatus, State

BUILD_TYPES = tuple(t.value for t in BuildType)
LIVE = frozenset({SegmentStatus.NEW, SegmentStatus.READY})
NEW, READY = SegmentStatus.NEW, SegmentStatus.READY
#: a job in one of these may still build, merge or refresh its segments
UNFINISHED = frozenset({State.READY, State.RUNNING, State.STOPPED, State.ERROR})


def normalise_range(start: int, end: int) -> tuple[int, int]:
    """``startTime`` 0 and ``endTime`` 0 mean a full build over ``[0, 2^63 - 1)``."""
    if start < 0 or end < 0:
        raise InvalidRequest(f"startTime and endTime must not be negative: {start}, {end}")
    if start == 0 and end == 0:
        return 0, FULL_BUILD_END
    if start > end:
        raise InvalidRequest(f"startTime {start} must not be greater than endTime {end}")
    if start == end:
        raise InvalidRequest(f"the segment range [{start}, {end}) is empty")
    return start, end


def _overlaps(a: tuple[int, int], b: Segment) -> bool:
    return a[0] < b.end and b.start < a[1]


def plan_segment(
    uuid: str,
    cube: str,
    build_type: str,
    start: int,
    end: int,
    existing: Sequence[Segment],
) -> Segment:
    """The NEW segment a job of ``build_type`` over ``[start, end)`` creates, or an error."""
    if build_type not in BUILD_TYPES:
        raise InvalidRequest(f"buildType must be one of {', '.join(BUILD_TYPES)}: {build_type!r}")
    rng = normalise_range(start, end)
    if build_type == BuildType.BUILD:
        return _plan_build(uuid, cube, rng, existing)
    if build_type == BuildType.REFRESH:
        return _plan_refresh(uuid, cube, rng, existing)
    return _plan_merge(uuid, cube, rng, existing)


def _new(uuid: str, cube: str, rng: tuple[int, int], merged_from: tuple[str, ...] = ()) -> Segment:
    return Segment(uuid, cube, segment_name(*rng), rng[0], rng[1], NEW, merged_from)


def _plan_build(uuid: str, cube: str, rng: tuple[int, int], existing: Sequence[Segment]) -> Segment:
    live = [seg for seg in existing if seg.status in LIVE]
    for seg in live:
        if _overlaps(rng, seg):
            last_end = max(s.end for s in live)
            free_from = last_end if last_end < FULL_BUILD_END else None
            raise SegmentsOverlap(cube, rng, seg.name, (seg.start, seg.end), free_from)
    return _new(uuid, cube, rng)


def _plan_refresh(
    uuid: str, cube: str, rng: tuple[int, int], existing: Sequence[Segment]
) -> Segment:
    target = next((s for s in existing if s.status == READY and (s.start, s.end) == rng), None)
    if target is None:
        raise NotAllowed(f"Cube '{cube}' has no READY segment [{rng[0]}, {rng[1]}) to refresh")
    for seg in existing:
        if seg.status == NEW and _overlaps(rng, seg):
            raise SegmentsOverlap(cube, rng, seg.name)
    return _new(uuid, cube, rng, (target.uuid,))


def _plan_merge(uuid: str, cube: str, rng: tuple[int, int], existing: Sequence[Segment]) -> Segment:
    for seg in existing:
        if seg.status == NEW and _overlaps(rng, seg):
            raise SegmentsOverlap(cube, rng, seg.name)
    inside = sorted(
        (s for s in existing if s.status == READY and rng[0] <= s.start and s.end <= rng[1]),
        key=lambda s: s.start,
    )
    if len(inside) < 2:
        raise NotAllowed(
            f"Cube '{cube}' needs at least two READY segments inside [{rng[0]}, {rng[1]}) to merge"
        )
    for before, after in itertools.pairwise(inside):
        if before.end != after.start:
            raise NotAllowed(
                f"Cube '{cube}' has a gap between segments {before.name} and {after.name}"
            )
    merged = (inside[0].start, inside[-1].end)
    return _new(uuid, cube, merged, tuple(s.uuid for s in inside))


def land_segment(new: Segment, existing: Sequence[Segment]) -> list[Segment]:
    """ "Update Cube Info": the new segment READY, the segments it replaces removed."""
    replaced = set(new.merged_from)
    kept = [s for s in existing if s.uuid not in replaced and s.uuid != new.uuid]
    return [*kept, Segment(new.uuid, new.cube, new.name, new.start, new.end, READY)]


# -- segment management (SPEC §6.1) -------------------------------------------------------------


def _user_of(segment: Segment, jobs: Sequence[Job]) -> Job | None:
    """An unfinished job that builds ``segment`` or replaces it (merge, refresh)."""
    for job in jobs:
        uses = job.segment.uuid == segment.uuid or segment.uuid in job.segment.merged_from
        if job.state in UNFINISHED and uses:
            return job
    return None


def plan_delete(cube: str, name: str, segments: Sequence[Segment], jobs: Sequence[Job]) -> Segment:
    """The segment ``name`` if it may go: the first or the last by range (Kylin's rule, so
    that no hole opens between segments), and no unfinished job of ``jobs`` uses it."""
    ordered = sorted(segments, key=lambda s: (s.start, s.end, s.uuid))
    target = next((s for s in ordered if s.name == name), None)
    if target is None:
        raise SegmentNotFound(cube, name)
    if target is not ordered[0] and target is not ordered[-1]:
        raise NotAllowed(
            f"Cube '{cube}': only the first ({ordered[0].name}) or the last "
            f"({ordered[-1].name}) segment may be deleted, not {name}"
        )
    user = _user_of(target, jobs)
    if user is not None:
        raise NotAllowed(
            f"Segment {name} of cube '{cube}' is used by job {user.id} "
            f"({user.state.rest_name}): discard the job or let it finish first"
        )
    return target


def plan_purge(cube: str, segments: Sequence[Segment], jobs: Sequence[Job]) -> tuple[Segment, ...]:
    """Every segment of ``cube``, if none of its jobs is unfinished (``jobs``: the cube's)."""
    busy = [job for job in jobs if job.state in UNFINISHED]
    if busy:
        raise NotAllowed(
            f"Cube '{cube}' has {len(busy)} unfinished job(s) (job {busy[0].id} is "
            f"{busy[0].state.rest_name}): discard them or let them finish before a purge"
        )
    return tuple(segments)


def segment_to_drop(segment: Segment, existing: Sequence[Segment]) -> Segment | None:
    """A discarded job's segment goes away while still NEW; once landed READY, it stays."""
    mine = next((s for s in existing if s.uuid == segment.uuid), None)
    return mine if mine is not None and mine.status == NEW else None


def refreshable_range(existing: Sequence[Segment]) -> tuple[int, int] | None:
    """The range a simulated REFRESH takes: the last READY segment's, if any."""
    ready = [s for s in existing if s.status == READY]
    return (ready[-1].start, ready[-1].end) if ready else None


def mergeable_range(existing: Sequence[Segment]) -> tuple[int, int] | None:
    """The range a simulated MERGE takes: the first run of two or more adjacent READY segments."""
    run: list[tuple[int, int]] = []
    for seg in (s for s in existing if s.status == READY):
        if run and run[-1][1] != seg.start:
            if len(run) >= 2:
                break
            run = []
        run.append((seg.start, seg.end))
    return (run[0][0], run[-1][1]) if len(run) >= 2 else None
