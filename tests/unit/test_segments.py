"""``core.segments`` by example (SPEC §2.2): what a BUILD, REFRESH or MERGE may take, and what
landing, discarding and the simulator's ranges leave."""

from __future__ import annotations

import pytest

from engine.core.errors import InvalidRequest, NotAllowed, SegmentsOverlap
from engine.core.jobs import FULL_BUILD_END, Segment
from engine.core.segments import (
    land_segment,
    mergeable_range,
    normalise_range,
    plan_segment,
    refreshable_range,
    segment_to_drop,
)
from engine.core.states import CubeStatus, SegmentStatus, cube_status

NEW, READY = SegmentStatus.NEW, SegmentStatus.READY


def seg(uuid: str, start: int, end: int, status: str = READY) -> Segment:
    return Segment(uuid, "cube", f"{start}_{end}", start, end, status)


CUBE = [seg("a", 0, 10), seg("b", 10, 20), seg("c", 30, 40), seg("n", 40, 50, NEW)]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, (0, FULL_BUILD_END)),  # 0, 0 = a full build
        (5, 10, (5, 10)),
        (10, 5, InvalidRequest),
        (5, 5, InvalidRequest),
        (-1, 5, InvalidRequest),
    ],
)
def test_normalise_range(start: int, end: int, expected: object) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):  # type: ignore[arg-type]
            normalise_range(start, end)
    else:
        assert normalise_range(start, end) == expected


# (build type, start, end) -> (range of the NEW segment, segments it replaces) or the error
PLANS: list[tuple[str, int, int, object]] = [
    ("BUILD", 20, 30, ((20, 30), ())),  # the gap between b and c
    ("BUILD", 15, 25, SegmentsOverlap),  # overlaps READY b
    ("BUILD", 45, 60, SegmentsOverlap),  # overlaps NEW n
    ("BUILD", 50, 60, ((50, 60), ())),
    ("REFRESH", 10, 20, ((10, 20), ("b",))),
    ("REFRESH", 10, 25, NotAllowed),  # no READY segment with exactly that range
    ("REFRESH", 40, 50, NotAllowed),  # n is NEW, not READY
    ("MERGE", 0, 20, ((0, 20), ("a", "b"))),
    ("MERGE", 0, 40, NotAllowed),  # a gap between b and c
    ("MERGE", 0, 10, NotAllowed),  # one segment is not enough
    ("MERGE", 30, 50, SegmentsOverlap),  # n is NEW inside the range
    ("CUBE", 0, 10, InvalidRequest),  # not a build type
]


@pytest.mark.parametrize(("build_type", "start", "end", "expected"), PLANS)
def test_plan_segment(build_type: str, start: int, end: int, expected: object) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):  # type: ignore[arg-type]
            plan_segment("new", "cube", build_type, start, end, CUBE)
        return
    planned = plan_segment("new", "cube", build_type, start, end, CUBE)
    assert ((planned.start, planned.end), planned.merged_from) == expected
    assert planned.status == NEW


def test_landing_a_merge_replaces_what_it_merged() -> None:
    merged = plan_segment("m", "cube", "MERGE", 0, 20, CUBE)
    landed = land_segment(merged, [*CUBE, merged])
    assert [(s.uuid, s.status) for s in landed] == [
        ("c", READY),
        ("n", NEW),
        ("m", READY),
    ]


@pytest.mark.parametrize(("status", "dropped"), [(NEW, True), (READY, False)])
def test_a_discarded_jobs_segment_goes_only_while_new(status: str, dropped: bool) -> None:
    mine = seg("x", 60, 70, status)
    found = segment_to_drop(mine, [*CUBE, mine])
    assert (found is not None) is dropped
    assert segment_to_drop(seg("gone", 0, 1), CUBE) is None


@pytest.mark.parametrize(
    ("segments", "merge", "refresh"),
    [
        ([], None, None),
        ([seg("a", 0, 10)], None, (0, 10)),
        ([seg("a", 0, 10), seg("b", 10, 20)], (0, 20), (10, 20)),
        ([seg("a", 0, 10), seg("c", 30, 40)], None, (30, 40)),  # not adjacent
        (CUBE, (0, 20), (30, 40)),  # the first run; n (NEW) is not refreshable
        (
            [seg("a", 0, 10), seg("c", 30, 40), seg("d", 40, 50), seg("e", 50, 60)],
            (30, 60),
            (50, 60),
        ),
    ],
)
def test_the_simulators_ranges(
    segments: list[Segment], merge: tuple[int, int] | None, refresh: tuple[int, int] | None
) -> None:
    assert mergeable_range(segments) == merge
    assert refreshable_range(segments) == refresh


@pytest.mark.parametrize(
    ("statuses", "cube"),
    [((), CubeStatus.DISABLED), ((NEW,), CubeStatus.DISABLED), ((NEW, READY), CubeStatus.READY)],
)
def test_cube_status(statuses: tuple[str, ...], cube: CubeStatus) -> None:
    assert cube_status(statuses) is cube
