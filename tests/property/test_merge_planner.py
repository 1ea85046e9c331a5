"""Hypothesis: planning merges from the unsettled tail (``settled``) plans what the whole does.

Two properties: on any offset-ordered list of segments (any layers, sizes, gaps, statuses) the
plan of the tail is the plan of the whole; and over a run of micro-batches and merge passes,
as the merge loop makes them, a count carried from pass to pass (``known``) is the count made
from scratch, and never skips a segment a later merge takes.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.streaming import StreamingSegment
from engine.core.streaming_params import merge_segments, plan_merge, settled

MAX = 100  #: max_size_bytes of these tests


def _segment(
    i: int, start: int, width: int, size: int, layer: int, status: str
) -> StreamingSegment:
    return StreamingSegment(
        f"s{i}", "m", "p", start, start + width, start, start + width, width, size, i, layer,
        status,
    )  # fmt: skip


@st.composite
def segment_lists(draw: st.DrawFn) -> list[StreamingSegment]:
    """Offset-ordered segments: gaps, layers 0-3, sizes around the limit, a few not READY."""
    segments, start = [], 0
    for i in range(draw(st.integers(0, 14))):
        start += draw(st.sampled_from((0, 0, 0, 1)))  # mostly contiguous
        width = draw(st.integers(1, 3))
        size = draw(st.integers(1, 80))
        layer = draw(st.sampled_from((0, 1, 1, 2, 2, 3)))
        status = draw(st.sampled_from(("READY",) * 9 + ("NEW",)))
        segments.append(_segment(i, start, width, size, layer, status))
        start += width
    return segments


@settings(max_examples=1500, deadline=None)
@given(segment_lists(), st.integers(2, 4))
def test_the_tail_plans_what_the_whole_plans(segments: list[StreamingSegment], need: int) -> None:
    skip = settled(segments, max_size_bytes=MAX)
    assert 0 <= skip <= max(0, len(segments) - 1)
    frozen, tail = segments[:skip], segments[skip:]
    # and goes on doing so while the merges it plans are made (a merge may raise the layer of
    # the segment that follows the settled ones)
    for n in range(len(segments)):
        whole = plan_merge(frozen + tail, threshold=need, max_size_bytes=MAX)
        assert plan_merge(tail, threshold=need, max_size_bytes=MAX) == whole
        if not whole:
            break
        gone = {s.id for s in whole}
        merged = merge_segments(whole, f"m{n}", n)
        tail = sorted([s for s in tail if s.id not in gone] + [merged], key=_offset)


def _offset(segment: StreamingSegment) -> int:
    return segment.start_offset


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(5, 45), min_size=1, max_size=60), st.integers(2, 3))
def test_counts_carried_between_passes_match_counts_from_scratch(
    sizes: list[int], need: int
) -> None:
    segments: list[StreamingSegment] = []
    known = 0
    for i, size in enumerate(sizes):  # batch i covers offsets [i, i + 1)
        segments.append(_segment(i, i, 1, size, 0, "READY"))
        if i % 2:  # a merge pass every second batch, merging while the planner finds groups
            known = settled(segments, max_size_bytes=MAX, known=known)
            assert known == settled(segments, max_size_bytes=MAX)
            frozen = {s.id for s in segments[:known]}
            while group := plan_merge(segments, threshold=need, max_size_bytes=MAX):
                assert not frozen & {s.id for s in group}
                merged = merge_segments(group, f"m{i}.{len(segments)}", i)
                gone = {s.id for s in group}
                segments = sorted([s for s in segments if s.id not in gone] + [merged], key=_offset)
