"""Streaming arithmetic: sizes, params, retry delays, batch stats and the merge planner."""

from __future__ import annotations

import dataclasses

import pytest

from engine.config.settings import StreamingSettings
from engine.core.errors import InvalidRequest
from engine.core.states import StreamingJobType
from engine.core.streaming import StreamingSegment
from engine.core.streaming_params import (
    batch_stats,
    default_params,
    effective_params,
    merge_segments,
    parse_size,
    plan_merge,
    retry_delay,
)

MB = 1 << 20


@pytest.mark.parametrize(
    ("text", "size"),
    [("32m", 32 * MB), ("1g", 1 << 30), ("512K", 512 << 10), ("1024", 1024), ("2mb", 2 * MB)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "m", "32x", "-1m", "1 gigabyte"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_size(text)


def test_default_params_follow_the_seed() -> None:
    settings = StreamingSettings()
    build = default_params(StreamingJobType.STREAMING_BUILD, settings)
    merge = default_params(StreamingJobType.STREAMING_MERGE, settings)
    assert build["kylin.streaming.duration"] == "30"
    assert build["kylin.streaming.kafka-conf.maxOffsetsPerTrigger"] == "0"
    assert merge["kylin.streaming.segment-max-size"] == "32m"
    assert merge["kylin.streaming.segment-merge-threshold"] == "3"
    assert (
        build["kylin.streaming.job-retry-enabled"]
        == "false"
        == merge["kylin.streaming.job-retry-enabled"]
    )


def test_effective_params_override_settings() -> None:
    settings = StreamingSettings()
    assert effective_params({}, settings).duration_ms == 30_000
    params = effective_params(
        {
            "kylin.streaming.duration": "0.5",
            "kylin.streaming.segment-max-size": "1k",
            "kylin.streaming.job-retry-enabled": "TRUE",
        },
        settings,
    )
    assert params.duration_ms == 500 and params.max_size_bytes == 1024 and params.retry_enabled


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kylin.streaming.duration", "0"),
        ("kylin.streaming.duration", "soon"),
        ("kylin.streaming.segment-merge-threshold", "1"),
        ("kylin.streaming.kafka-conf.maxOffsetsPerTrigger", "-5"),
        ("kylin.streaming.job-retry-enabled", "yes"),
    ],
)
def test_effective_params_name_a_bad_key(key: str, value: str) -> None:
    with pytest.raises(InvalidRequest, match=key):
        effective_params({key: value}, StreamingSettings())


def test_retry_delay_grows_by_five_minutes_up_to_thirty() -> None:
    settings = StreamingSettings()
    assert [retry_delay(n, settings) / 60 for n in range(8)] == [5, 10, 15, 20, 25, 30, 30, 30]
    custom = StreamingSettings(job_retry_interval_s=10, job_retry_max_interval_s=25)
    assert [retry_delay(n, custom) for n in range(4)] == [10, 20, 25, 25]


def test_batch_stats_formulas() -> None:
    stats = batch_stats(
        "j",
        "p",
        rows=95,
        min_event_time=1_000,
        max_event_time=4_000,
        duration_ms=30_000,
        processing_ms=700,
        now=10_000,
    )
    assert stats.rows_per_second == 95 * 1000 // 30_000 == 3
    assert stats.min_data_latency == 10_000 - 1_000 + 30_000
    assert stats.max_data_latency == 10_000 - 4_000 + 30_000
    assert stats.processing_time == 700 and stats.create_time == 10_000


def test_empty_batch_stats_are_zeros() -> None:
    stats = batch_stats(
        "j", "p", rows=0, min_event_time=0, max_event_time=0, duration_ms=30_000,
        processing_ms=12, now=10_000,
    )  # fmt: skip
    assert (stats.batch_row_num, stats.rows_per_second, stats.processing_time) == (0, 0, 0)
    assert (stats.min_data_latency, stats.max_data_latency) == (0, 0)


def seg(i: int, size: int = MB, layer: int = 0, length: int = 10) -> StreamingSegment:
    start = i * length
    return StreamingSegment(
        f"s{i}", "m", "p", start, start + length, start, start + length - 1, length, size, i, layer
    )


def test_merge_needs_threshold_segments_besides_the_newest() -> None:
    three = [seg(0), seg(1), seg(2)]
    assert plan_merge(three, threshold=3, max_size_bytes=32 * MB) == ()  # s2 is the newest
    four = [*three, seg(3)]
    assert [s.id for s in plan_merge(four, threshold=3, max_size_bytes=32 * MB)] == [
        "s0",
        "s1",
        "s2",
    ]


def test_merge_respects_max_size() -> None:
    segments = [seg(0, 20 * MB), seg(1, 10 * MB), seg(2, 10 * MB), seg(3, 10 * MB), seg(4)]
    group = plan_merge(segments, threshold=3, max_size_bytes=32 * MB)
    assert [s.id for s in group] == ["s1", "s2", "s3"]
    assert plan_merge(segments[:4], threshold=3, max_size_bytes=32 * MB) == ()


def test_merge_takes_one_layer_of_adjacent_segments() -> None:
    merged = merge_segments([seg(0), seg(1), seg(2)], "L1", 99)
    assert (merged.layer, merged.start_offset, merged.end_offset, merged.row_count) == (
        1,
        0,
        30,
        30,
    )
    assert (merged.min_event_time, merged.max_event_time, merged.size_bytes) == (0, 29, 3 * MB)
    # a layer-1 segment between layer-0 ones breaks the run of layer 0
    mixed = [seg(3), seg(4, layer=1), seg(5), seg(6), seg(7)]
    assert plan_merge(mixed, threshold=3, max_size_bytes=32 * MB) == ()
    layers = [seg(0, layer=1), seg(1, layer=1), seg(2, layer=1), seg(3)]
    assert [s.id for s in plan_merge(layers, threshold=3, max_size_bytes=32 * MB)] == [
        "s0",
        "s1",
        "s2",
    ]


def test_merge_skips_non_ready_and_gaps() -> None:
    gap = [seg(0), seg(1), seg(3), seg(4), seg(5)]
    assert plan_merge(gap, threshold=3, max_size_bytes=32 * MB) == ()
    not_ready = [seg(0), dataclasses.replace(seg(1), status="NEW"), seg(2), seg(3), seg(4)]
    assert plan_merge(not_ready, threshold=3, max_size_bytes=32 * MB) == ()
    assert [s.id for s in plan_merge(not_ready, threshold=2, max_size_bytes=32 * MB)] == [
        "s2",
        "s3",
    ]
