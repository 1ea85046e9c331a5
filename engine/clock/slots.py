"""Where a schedule's slots are on the clock (SPEC §11): cron expressions in UTC (croniter) and
epoch-aligned intervals, behind the ``Timing`` of ``engine.core.schedules``.

``timing(cron, interval_s)`` checks its input like the API must (exactly one of the two, an
interval of at least 1 s, a cron expression croniter accepts and that ever fires) and raises
``InvalidRequest`` with a message for the user.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Final

from croniter import croniter

from engine.core.errors import InvalidRequest
from engine.core.schedules import IntervalTiming, Schedule, Timing, check_choice

_PROBE: Final = 1_704_067_200_000  #: where "ever fires" is tried from (2024-01-01T00:00Z)


@dataclass(frozen=True, slots=True)
class CronTiming:
    """The matches of a cron expression, in UTC."""

    cron: str

    def next_slot(self, after: int) -> int:
        """The first match strictly after ``after``."""
        return round(croniter(self.cron, _moment(after)).get_next(float) * 1000)

    def previous_slot(self, slot: int) -> int:
        """The last match strictly before ``slot``."""
        return round(croniter(self.cron, _moment(slot)).get_prev(float) * 1000)


def _moment(epoch_ms: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(epoch_ms / 1000, tz=_dt.UTC)


def timing(cron: str | None, interval_s: int | None) -> Timing:
    """The timing of a cron expression or an interval; ``InvalidRequest`` when it cannot be."""
    check_choice(cron, interval_s)
    if interval_s is not None:
        return IntervalTiming(interval_s)
    assert cron is not None
    if not croniter.is_valid(cron):
        raise InvalidRequest(f"Invalid cron expression: {cron!r}")
    found = CronTiming(cron)
    try:
        found.next_slot(_PROBE)
    except Exception as exc:  # croniter gives up on an expression that never matches
        raise InvalidRequest(f"Cron expression {cron!r} never fires: {exc}") from None
    return found


def timing_of(schedule: Schedule) -> Timing:
    """The timing of a stored schedule (checked when it was created)."""
    return timing(schedule.cron, schedule.interval_s)
