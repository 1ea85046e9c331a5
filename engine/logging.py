"""How kjobs logs, and the one call that changes it.

kjobs logs under stable dotted event names (``kjobs.job.submitted``, ``kjobs.step.failed``, …)
with key/value context. It never configures logging for you; where its records go depends on
what the application chose:

- nothing (the default): WARNING and above, one line each on stderr; debug and info (step
  start/finish, submissions) stay out of the console;
- ``structlog.configure(...)`` by the application: kjobs' records go through that configuration;
- ``engine.logging.quiet(level)``: only records at ``level`` and above, one line on stderr
  (``quiet("CRITICAL")`` or ``silence()``: nothing at all in practice);
- ``engine.logging.to_stdlib()``: every record to the standard ``logging`` logger ``"kjobs"``,
  so the application's handlers, levels and formats decide (message: the event name and the
  key/values; ``record.kjobs``: the key/values as a dict).

``reset()`` goes back to the default. The ``kjobs`` command configures structlog itself
(console on a terminal, JSON otherwise).
"""

from __future__ import annotations

import logging as stdlib_logging
import sys
from typing import Any, Final, Literal

import structlog

Mode = Literal["auto", "quiet", "stdlib", "structlog"]
LEVELS: Final = {
    "debug": stdlib_logging.DEBUG,
    "info": stdlib_logging.INFO,
    "warning": stdlib_logging.WARNING,
    "error": stdlib_logging.ERROR,
    "exception": stdlib_logging.ERROR,
}
_settings: dict[str, Any] = {"mode": "auto", "level": stdlib_logging.WARNING}
_structlog = structlog.get_logger("kjobs")


def quiet(level: int | str = stdlib_logging.WARNING) -> None:
    """Print only kjobs records at ``level`` or above (one line each, stderr)."""
    _settings.update(mode="quiet", level=_level_of(level))


def silence() -> None:
    """No kjobs records at all."""
    _settings.update(mode="quiet", level=stdlib_logging.CRITICAL + 1)


def to_stdlib(level: int | str = stdlib_logging.DEBUG) -> None:
    """Send kjobs records at ``level`` or above to ``logging.getLogger("kjobs")``."""
    _settings.update(mode="stdlib", level=_level_of(level))


def use_structlog() -> None:
    """Send every kjobs record through structlog's configuration, configured or not."""
    _settings.update(mode="structlog", level=stdlib_logging.NOTSET)


def reset() -> None:
    """Back to the default: structlog's configuration if the application made one, else quiet."""
    _settings.update(mode="auto", level=stdlib_logging.WARNING)


def _level_of(level: int | str) -> int:
    return level if isinstance(level, int) else stdlib_logging.getLevelName(level.upper())


class KjobsLogger:
    """The logger of every kjobs module (``get_logger()``); same methods as structlog's."""

    __slots__ = ()

    def debug(self, event: str, **kw: Any) -> None:
        """Log at DEBUG."""
        _emit("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        """Log at INFO."""
        _emit("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        """Log at WARNING."""
        _emit("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        """Log at ERROR."""
        _emit("error", event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        """Log at ERROR with the current exception."""
        _emit("exception", event, kw)


def get_logger() -> KjobsLogger:
    """The logger kjobs' modules log with."""
    return _LOGGER


_LOGGER: Final = KjobsLogger()


def _emit(method: str, event: str, kw: dict[str, Any]) -> None:
    mode = _settings["mode"]
    if mode == "auto":
        mode = "structlog" if structlog.is_configured() else "quiet"
    if mode == "structlog":
        getattr(_structlog, method)(event, **kw)
        return
    level = LEVELS[method]
    if level < _settings["level"]:
        return
    context = " ".join(f"{key}={value}" for key, value in kw.items())
    if mode == "stdlib":
        stdlib_logging.getLogger("kjobs").log(
            level,
            "%s %s",
            event,
            context,
            exc_info=method == "exception",
            extra={"kjobs": dict(kw)},
        )
        return
    print(f"kjobs {method.upper()} {event} {context}".rstrip(), file=sys.stderr)
