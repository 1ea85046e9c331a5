"""Reading parsed TOML with typed getters that fail with ONE clear ``ConfigError``.

A ``Reader`` wraps one table of one file and knows its dotted position; every getter names the
file and the full dotted key in its error, and ``done()`` rejects the keys nobody asked for.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from engine.core.errors import ConfigError

T = TypeVar("T")
#: a check returns the reason a value is impossible, or None when it is fine
Check = Callable[[Any], str | None]


class _Missing:
    pass


MISSING: Any = _Missing()


def read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path``; a missing file or bad syntax is a ``ConfigError`` naming the file."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), ConfigError.WHOLE_FILE, "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), ConfigError.WHOLE_FILE, f"invalid TOML: {exc}") from exc


def type_name(value: object) -> str:
    """How TOML would call the type of ``value``."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def positive(value: float) -> str | None:
    """Check: > 0."""
    return None if value > 0 else f"must be greater than 0, got {value}"


def non_negative(value: float) -> str | None:
    """Check: >= 0."""
    return None if value >= 0 else f"must not be negative, got {value}"


def non_empty(value: str) -> str | None:
    """Check: a non-blank string."""
    return None if value.strip() else "must not be empty"


def one_of(choices: Iterable[str], what: str = "value") -> Check:
    """Check: one of ``choices``."""
    allowed = sorted(str(c) for c in choices)

    def check(value: str) -> str | None:
        if value in allowed:
            return None
        return f"unknown {what} {value!r}; one of {', '.join(allowed)}"

    return check


class Reader:
    """One TOML table of ``file`` at dotted ``prefix``."""

    def __init__(self, file: str, prefix: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.prefix = prefix
        self.data = data
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        """The full dotted key of ``name`` in this table."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, reason: str) -> ConfigError:
        """A ``ConfigError`` about key ``name`` of this table."""
        return ConfigError(self.file, self.key(name), reason)

    def has(self, name: str) -> bool:
        """Whether the table sets ``name``."""
        return name in self.data

    def _get(self, name: str, default: Any, kinds: tuple[type, ...], kind_name: str) -> Any:
        self._seen.add(name)
        if name not in self.data:
            if default is MISSING:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        # bool is an int in Python; TOML keeps them apart, and so do we
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(name, f"must be {kind_name}, got boolean {value!r}")
        if not isinstance(value, kinds):
            raise self.error(name, f"must be {kind_name}, got {type_name(value)} {value!r}")
        return value

    def _checked(self, name: str, value: T, check: Check | None) -> T:
        if check is not None and (reason := check(value)) is not None:
            raise self.error(name, reason)
        return value

    def string(self, name: str, default: Any = MISSING, check: Check | None = None) -> str:
        """A string value."""
        value = self._get(name, default, (str,), "a string")
        return self._checked(name, cast(str, value), check) if self.has(name) else value

    def optional_string(self, name: str, check: Check | None = None) -> str | None:
        """A string value, or None when absent."""
        if not self.has(name):
            self._seen.add(name)
            return None
        return self.string(name, check=check)

    def integer(self, name: str, default: Any = MISSING, check: Check | None = None) -> int:
        """An integer value."""
        value = self._get(name, default, (int,), "an integer")
        return self._checked(name, cast(int, value), check) if self.has(name) else value

    def number(self, name: str, default: Any = MISSING, check: Check | None = None) -> float:
        """A float (integers accepted)."""
        value = self._get(name, default, (int, float), "a number")
        return self._checked(name, float(value), check) if self.has(name) else value

    def boolean(self, name: str, default: Any = MISSING) -> bool:
        """A boolean value."""
        return cast(bool, self._get(name, default, (bool,), "a boolean"))

    def strings(self, name: str, default: Any = MISSING) -> tuple[str, ...]:
        """An array of strings."""
        value = self._get(name, default, (list,), "an array of strings")
        if not self.has(name):
            return cast(tuple[str, ...], value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{name}[{i}]", f"must be a string, got {type_name(item)}")
        return tuple(value)

    def string_map(self, name: str, *, scalars: bool = False) -> dict[str, str]:
        """A table of strings (``scalars``: numbers and booleans too, as Kylin writes them)."""
        table = self._get(name, {}, (dict,), "a table")
        out: dict[str, str] = {}
        for key, value in table.items():
            if isinstance(value, str):
                out[key] = value
            elif scalars and isinstance(value, bool):
                out[key] = "true" if value else "false"
            elif scalars and isinstance(value, int | float):
                out[key] = str(value)
            else:
                want = "a string, number or boolean" if scalars else "a string"
                raise self.error(f"{name}.{key}", f"must be {want}, got {type_name(value)}")
        return out

    def table(self, name: str) -> Reader:
        """A sub-table (empty when absent)."""
        value = self._get(name, {}, (dict,), "a table")
        return Reader(self.file, self.key(name), value)

    def tables(self, name: str) -> list[Reader]:
        """An array of tables (``[[name]]``), empty when absent."""
        value = self._get(name, [], (list,), "an array of tables")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{name}[{i}]", f"must be a table, got {type_name(item)}")
            out.append(Reader(self.file, f"{self.key(name)}[{i}]", item))
        return out

    def done(self) -> None:
        """Reject the first key of this table that no getter asked for."""
        for name in self.data:
            if name not in self._seen:
                close = difflib.get_close_matches(name, sorted(self._seen), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.error(name, f"unknown key{hint}")
