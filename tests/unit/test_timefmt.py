"""``core.timefmt``: the one epoch-ms to UTC text converter, by example."""

from __future__ import annotations

import pytest

from engine.core.jobs import FULL_BUILD_END
from engine.core.timefmt import COMPACT, format_iso, format_utc, parse_iso

JAN_1_2024 = 1_704_067_200_000


@pytest.mark.parametrize(
    ("epoch_ms", "fmt", "text"),
    [
        (0, None, "1970-01-01 00:00:00"),
        (JAN_1_2024 + 3_723_456, None, "2024-01-01 01:02:03"),
        (JAN_1_2024, COMPACT, "20240101000000"),
        (FULL_BUILD_END, COMPACT, "99991231235959"),  # the end of a full build
        (FULL_BUILD_END, None, "9999-12-31 23:59:59"),
        (JAN_1_2024, "%Y-%m-%d", "2024-01-01"),
    ],
)
def test_format_utc(epoch_ms: int, fmt: str | None, text: str) -> None:
    assert (format_utc(epoch_ms) if fmt is None else format_utc(epoch_ms, fmt)) == text


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        ("2024-01-01T00:00:00.000Z", JAN_1_2024),
        ("2024-01-01T01:02:03.456Z", JAN_1_2024 + 3_723_456),
    ],
)
def test_iso_round_trip(text: str, epoch_ms: int) -> None:
    assert format_iso(epoch_ms) == text
    assert parse_iso(text) == epoch_ms


def test_parse_iso_takes_a_value_without_zone_as_utc() -> None:
    assert parse_iso("2024-01-01T00:00:00") == JAN_1_2024
    assert parse_iso("2024-01-01T01:00:00+01:00") == JAN_1_2024
