"""Epoch milliseconds as UTC text, in the few shapes Kylin and kjobs show (one converter).

Every instant the engine stores is epoch ms on the engine's clock; these functions only render
(or parse) them, always in UTC. Instants past year 9999 (the end of a full build, ``2^63 - 1``)
show as the last second of 9999.
"""

from __future__ import annotations

import datetime as _dt
from typing import Final

DATETIME: Final = "%Y-%m-%d %H:%M:%S"  #: job names, segment times, the streaming list
COMPACT: Final = "%Y%m%d%H%M%S"  #: segment names
_LAST: Final = _dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_dt.UTC)


def utc(epoch_ms: int) -> _dt.datetime:
    """The aware UTC datetime of ``epoch_ms`` (the last second of 9999 past the range)."""
    try:
        return _dt.datetime.fromtimestamp(epoch_ms / 1000, tz=_dt.UTC)
    except (OverflowError, OSError, ValueError):
        return _LAST


def format_utc(epoch_ms: int, fmt: str = DATETIME) -> str:
    """``epoch_ms`` in UTC with a strftime format (default ``yyyy-MM-dd HH:mm:ss``)."""
    return utc(epoch_ms).strftime(fmt)


def format_iso(epoch_ms: int) -> str:
    """``2024-01-01T00:00:00.000Z`` for an epoch-ms instant."""
    return utc(epoch_ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_iso(text: str) -> int:
    """Epoch ms of an ISO 8601 instant; a value without a zone is taken as UTC."""
    moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return round(moment.timestamp() * 1000)
