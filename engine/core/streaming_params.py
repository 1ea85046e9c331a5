"""Pure arithmetic of streaming jobs (SPEC §5): params, sizes, retry delays, stats, merge plans.

A job's params override the engine's ``StreamingSettings``; keys are Kylin's property names.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from engine.core.errors import InvalidRequest
from engine.core.states import StreamingJobType, StreamingStatus
from engine.core.streaming_jobs import BatchStats, StreamingJob, StreamingSegment

DURATION: Final = "kylin.streaming.duration"
MAX_OFFSETS_PER_TRIGGER: Final = "kylin.streaming.kafka-conf.maxOffsetsPerTrigger"
MERGE_THRESHOLD: Final = "kylin.streaming.segment-merge-threshold"
MAX_SIZE: Final = "kylin.streaming.segment-max-size"
RETRY_ENABLED: Final = "kylin.streaming.job-retry-enabled"
MERGE_INTERVAL: Final = "kylin.streaming.segment-merge-interval"


@dataclass(frozen=True, slots=True)
class StreamingSettings:
    """``kylin.streaming.*`` defaults; a job's own params override them."""

    duration_s: int = 30  #: kylin.streaming.duration: build micro-batch interval
    merge_interval_s: int = 60  #: kjobs.streaming.merge-interval: merge pass interval
    segment_merge_threshold: int = 3  #: kylin.streaming.segment-merge-threshold
    segment_max_size: str = "32m"  #: kylin.streaming.segment-max-size
    max_offsets_per_trigger: int = 0  #: kylin.streaming.kafka-conf.maxOffsetsPerTrigger
    job_retry_enabled: bool = False  #: kylin.streaming.job-retry-enabled
    job_retry_interval_s: int = 300  #: kylin.streaming.job-retry-interval (5 min)
    job_retry_max_interval_s: int = 1800  #: kylin.streaming.job-retry-max-interval (30 min)


#: the Spark settings Kylin puts in every new job's params (shown, not used by the simulation)
SPARK_DEFAULTS: Final[Mapping[str, str]] = {
    "spark.master": "yarn",
    "spark.driver.memory": "512m",
    "spark.executor.instances": "2",
    "spark.executor.cores": "2",
    "spark.executor.memory": "1g",
    "spark.sql.shuffle.partitions": "8",
}

_SIZE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$", re.IGNORECASE)
_UNITS: Final[Mapping[str, int]] = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TRUE: Final = frozenset({"true"})
_BOOLEANS: Final = frozenset({"true", "false"})


def default_params(job_type: StreamingJobType, settings: StreamingSettings) -> dict[str, str]:
    """The params a new build or merge job starts with (Kylin's defaults, from settings)."""
    params = dict(SPARK_DEFAULTS)
    params[RETRY_ENABLED] = "true" if settings.job_retry_enabled else "false"
    if job_type is StreamingJobType.STREAMING_BUILD:
        params[DURATION] = str(settings.duration_s)
        params[MAX_OFFSETS_PER_TRIGGER] = str(settings.max_offsets_per_trigger)
    else:
        params[MAX_SIZE] = settings.segment_max_size
        params[MERGE_THRESHOLD] = str(settings.segment_merge_threshold)
    return params


def parse_size(text: str) -> int:
    """Bytes in a Kylin size such as ``"32m"``, ``"1g"``, ``"512k"``, ``"1024"`` (binary units)."""
    match = _SIZE.match(text)
    if match is None:
        raise InvalidRequest(f'The size "{text}" is invalid; use a number with k, m, g or t')
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclass(frozen=True, slots=True)
class StreamingParams:
    """The settings one run of a job uses: its params over the engine's defaults."""

    duration_ms: int  #: micro-batch interval
    max_offsets_per_trigger: int  #: 0 = no cap
    merge_threshold: int
    max_size_bytes: int
    merge_interval_ms: int
    retry_enabled: bool


def effective_params(params: Mapping[str, str], settings: StreamingSettings) -> StreamingParams:
    """Parse a job's params over ``settings``; ``InvalidRequest`` names a bad key."""
    return StreamingParams(
        duration_ms=_millis(params, DURATION, settings.duration_s),
        max_offsets_per_trigger=_integer(
            params, MAX_OFFSETS_PER_TRIGGER, settings.max_offsets_per_trigger, minimum=0
        ),
        merge_threshold=_integer(params, MERGE_THRESHOLD, settings.segment_merge_threshold, 2),
        max_size_bytes=parse_size(params.get(MAX_SIZE, settings.segment_max_size)),
        merge_interval_ms=_millis(params, MERGE_INTERVAL, settings.merge_interval_s),
        retry_enabled=_boolean(params, RETRY_ENABLED, settings.job_retry_enabled),
    )


def _millis(params: Mapping[str, str], key: str, default_s: float) -> int:
    text = params.get(key)
    if text is None:
        return round(default_s * 1000)
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise InvalidRequest(
            f'The parameter "{key}" must be a positive number of seconds: "{text}"'
        )
    return max(1, round(seconds * 1000))


def _integer(params: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    text = params.get(key)
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise InvalidRequest(f'The parameter "{key}" must be an integer ≥ {minimum}: "{text}"')
    return value


def _boolean(params: Mapping[str, str], key: str, default: bool) -> bool:
    text = params.get(key)
    if text is None:
        return default
    if text.strip().lower() not in _BOOLEANS:
        raise InvalidRequest(f'The parameter "{key}" must be "true" or "false": "{text}"')
    return text.strip().lower() in _TRUE


def may_retry(job: StreamingJob, settings: StreamingSettings) -> bool:
    """Whether an automatic retry follows: the job is in ERROR (not LAUNCHING_ERROR) and its
    params enable retries (params that do not parse enable nothing)."""
    if job.status is not StreamingStatus.ERROR:
        return False
    try:
        return effective_params(job.params, settings).retry_enabled
    except InvalidRequest:
        return False


def retry_delay(retry_count: int, settings: StreamingSettings) -> float:
    """Seconds before automatic retry number ``retry_count`` (0-based): 5, 10, ... 30 min."""
    step = settings.job_retry_interval_s
    ceiling = max(step, settings.job_retry_max_interval_s)
    return float(min(step * (retry_count + 1), ceiling))


def batch_stats(
    job_id: str,
    project: str,
    *,
    rows: int,
    min_event_time: int,
    max_event_time: int,
    duration_ms: int,
    processing_ms: int,
    now: int,
) -> BatchStats:
    """The stats row of one micro-batch; an empty batch has zeros everywhere."""
    if rows <= 0:
        return BatchStats(job_id, project, 0, 0, 0, 0, 0, now)
    return BatchStats(
        job_id=job_id,
        project=project,
        batch_row_num=rows,
        rows_per_second=rows * 1000 // duration_ms,
        processing_time=processing_ms,
        min_data_latency=now - min_event_time + duration_ms,
        max_data_latency=now - max_event_time + duration_ms,
        create_time=now,
    )


_START: Final = operator.attrgetter("start_offset")
_END: Final = operator.attrgetter("end_offset")


def plan_merge(
    segments: Sequence[StreamingSegment], *, threshold: int, max_size_bytes: int
) -> tuple[StreamingSegment, ...]:
    """The next segments to merge (oldest first), or ``()`` when nothing can merge.

    Candidates are READY segments, minus the newest layer-0 one (a build may still be
    appending after it). The lowest layer first: ``threshold`` adjacent segments of one layer
    whose offsets follow each other and whose total size stays within ``max_size_bytes``.
    """
    ready = sorted([s for s in segments if s.status == "READY"], key=_START)
    fresh = [s for s in ready if s.layer == 0]
    if fresh:
        newest = max(fresh, key=_END)
        ready = [s for s in ready if s is not newest]
    if not ready:
        return ()
    need = max(2, threshold)
    lowest = min(s.layer for s in ready)
    # One pass: a run of adjacent segments of one layer is broken by any other segment, so only
    # one window is open at a time; the first full window of each layer is kept.
    found: dict[int, tuple[StreamingSegment, ...]] = {}
    window: list[StreamingSegment] = []
    total = 0  #: the window's size, kept as it changes rather than summed at each step
    for seg in ready:
        if window and (seg.layer != window[-1].layer or window[-1].end_offset != seg.start_offset):
            window = []
            total = 0
        window.append(seg)
        total += seg.size_bytes
        while total > max_size_bytes:
            total -= window.pop(0).size_bytes
        if len(window) >= need and seg.layer not in found:
            found[seg.layer] = tuple(window)
            if seg.layer == lowest:
                break
    return found[min(found)] if found else ()


def settled(segments: Sequence[StreamingSegment], *, max_size_bytes: int, known: int = 0) -> int:
    """How many of ``segments`` (by offset) no merge can take any more: plan from the rest.

    A prefix of READY, merged (layer ≥ 1) segments in which no two neighbours can ever share a
    group can never merge. A group is a run of same-layer neighbours within the size, so it
    holds at most the prefix's last segment; that one stays with the rest (the count is of
    those before it), and it may still be merged into a bigger segment of a higher layer that
    starts where it did. So a pair only counts as apart when that cannot bring it together: a
    gap in offsets, a size together over ``max_size_bytes``, or the later one of a higher layer
    (a merge only adds size and layers). ``plan_merge`` on ``segments[settled(...):]`` is
    ``plan_merge`` on all of them, now and after any merges of the rest (the lowest layer left
    out has no group; no layer-0 segment is left out). ``known``: a count returned before for
    the same leading segments and size, from which the check goes on (its last pair is checked
    again: the segment after it may have changed).
    """
    if not segments or not _may_settle(segments[0]):
        return 0
    last = max(0, min(known, len(segments)) - 1)  #: the prefix's last segment
    while last + 1 < len(segments):
        here, after = segments[last], segments[last + 1]
        if not _may_settle(after):
            break
        if (
            here.end_offset == after.start_offset
            and here.layer >= after.layer  # ``after`` may grow into ``here``'s layer
            and here.size_bytes + after.size_bytes <= max_size_bytes
        ):
            break
        last += 1
    return last


def _may_settle(segment: StreamingSegment) -> bool:
    # READY: a segment of another status would be left out of the plan, joining its neighbours;
    # merged: the newest layer-0 segment is left out of the plan, so none may be skipped
    return segment.status == "READY" and segment.layer > 0


def merge_segments(
    group: Sequence[StreamingSegment], segment_id: str, now: int
) -> StreamingSegment:
    """The one segment that replaces ``group``: one layer up, covering all of it."""
    first = group[0]
    return StreamingSegment(
        id=segment_id,
        model_id=first.model_id,
        project=first.project,
        start_offset=min(s.start_offset for s in group),
        end_offset=max(s.end_offset for s in group),
        min_event_time=min(s.min_event_time for s in group),
        max_event_time=max(s.max_event_time for s in group),
        row_count=sum(s.row_count for s in group),
        size_bytes=sum(s.size_bytes for s in group),
        create_time=now,
        layer=max(s.layer for s in group) + 1,
    )
