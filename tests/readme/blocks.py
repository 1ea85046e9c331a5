"""README.md as data: its fenced code blocks, their markers, and how outputs are compared.

The convention (CONTRIBUTING.md, "README examples are tests"):

- Every fenced block whose language is ``python``, ``sh``, ``bash``, ``shell`` or ``console``
  RUNS, top to bottom, as a newcomer would follow the README (``tests/readme/test_readme.py``).
- A marker comment on the line right above the fence changes that:
  ``<!-- readme: skip REASON -->`` (not run; the reason is required),
  ``<!-- readme: pytest -->`` (a python block run as a test file by plain ``pytest``),
  ``<!-- readme: output -->`` (a ``json`` or ``text`` block: the expected stdout of the block
  above it; checked, and rewritten by ``make readme``; a JSON string may abbreviate with
  ``...``, a JSON list may show only its first items),
  ``<!-- readme: exact -->`` (a console block whose numbers and hashes are checked exactly:
  a deterministic simulation's summary; only the wall time may differ).
- In ``console`` blocks, ``$ `` lines are commands and the lines below each one are its
  expected output (stdout; stdout + stderr when it fails), checked after masking what changes
  run to run (ids, times, durations, counts) and rewritten by ``make readme``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

RUNNABLE = frozenset({"python", "sh", "bash", "shell", "console"})
MARKER = re.compile(r"^<!--\s*readme:\s*(?P<kind>[\w-]+)\s*(?P<arg>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>```+)(?P<lang>[\w-]*)\s*$")
KINDS = frozenset({"skip", "pytest", "output", "exact"})


@dataclass(frozen=True)
class Block:
    """One fenced block: ``lines[open]`` is the opening fence, ``lines[close]`` the closing one."""

    lang: str
    open: int
    close: int
    body: tuple[str, ...]
    marker: str | None  #: the marker's kind (``skip``, ``pytest``, ``output``) or None
    reason: str  #: the marker's argument
    heading: str  #: the section it sits in

    @property
    def where(self) -> str:
        """``README.md:LINE (section)`` for failure messages."""
        return f"README.md:{self.open + 1} ({self.heading})"

    @property
    def runs(self) -> bool:
        """Whether the walk runs it."""
        return self.lang in RUNNABLE and self.marker != "skip"


def parse(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, in order."""
    lines = text.split("\n")
    blocks: list[Block] = []
    heading = "top"
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        match = FENCE.match(line)
        if not match:
            i += 1
            continue
        close = i + 1
        while close < len(lines) and lines[close].rstrip() != match["fence"]:
            close += 1
        marker = MARKER.match(lines[i - 1]) if i else None
        blocks.append(
            Block(
                lang=match["lang"],
                open=i,
                close=close,
                body=tuple(lines[i + 1 : close]),
                marker=marker["kind"] if marker else None,
                reason=marker["arg"] if marker else "",
                heading=heading,
            )
        )
        i = close + 1
    return blocks


@dataclass(frozen=True)
class Command:
    """A ``$ `` command of a console block and the output lines printed under it."""

    line: int  #: index (in the README) of its first line
    code: str
    expected: tuple[str, ...]
    first_output: int  #: README index of the first expected line
    end: int  #: README index just past the last expected line


def commands(block: Block) -> list[Command]:
    """The commands of a console block (``\\`` continues a command on the next line)."""
    found: list[Command] = []
    i = 0
    body = block.body
    while i < len(body):
        if not body[i].startswith("$ "):
            raise ValueError(f"{block.where}: output before the first '$ ' command: {body[i]!r}")
        start = i
        code = [body[i][2:]]
        while code[-1].endswith("\\") and i + 1 < len(body):
            i += 1
            code.append(body[i])
        i += 1
        out_start = i
        while i < len(body) and not body[i].startswith("$ "):
            i += 1
        found.append(
            Command(
                line=block.open + 1 + start,
                code="\n".join(code),
                expected=body[out_start:i],
                first_output=block.open + 1 + out_start,
                end=block.open + 1 + i,
            )
        )
    return found


# -- what may differ between the README and a run -----------------------------------------

_MASKS = (
    (re.compile(r"in \d+(\.\d+)? s of wall time"), "in <wall> s of wall time"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?Z?\b"), "<time>"),
    (re.compile(r"\b[0-9a-f]{8}(?=\s|$|…|-\d\d\b)"), "<id>"),  # job-id prefixes
    (re.compile(r"\bapplication_\d+_\d+\b"), "<app>"),
    (re.compile(r"\b\d+@[\w.-]+"), "<node>"),
    (re.compile(r"[▁▂▃▄▅▆▇█]+"), "▇"),
    (re.compile(r"#+\.*|\.+(?=\])"), "#"),  # progress bars
    # a duration's unit follows its size ("989 ms" one run, "2.3 s" the next)
    (re.compile(r"(?<![\w.])\d[\d,]*(\.\d+)? ?(ms|s|min|h)\b"), "<duration>"),
    (re.compile(r"(?<![\w.])-?\d[\d,]*(\.\d+)?(?![\w])"), "N"),
    (re.compile(r"\s+"), " "),
)


def mask(text: str, *, numbers: bool = True) -> str:
    """``text`` with what changes run to run replaced by placeholders.

    Without ``numbers``, counts and hashes stay exact (a deterministic simulation's summary);
    the wall time is masked either way.
    """
    masks = _MASKS if numbers else (_MASKS[0], _MASKS[-1])
    for pattern, placeholder in masks:
        text = pattern.sub(placeholder, text)
    return text.strip()


def shape(value: Any) -> Any:
    """A JSON value with masked strings and every number (or null in a number's place) as N."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return "N"
    return mask(str(value))


def json_matches(expected: Any, actual: Any) -> bool:
    """Same keys in the same order and the same masked values; a list in the README may show
    only the first items of the actual one ("one step shown"); null may stand for a number."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and list(expected) == list(actual)
            and all(json_matches(expected[k], actual[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) >= len(expected)
            and (len(expected) > 0 or not actual)
            and all(json_matches(e, a) for e, a in zip(expected, actual, strict=False))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return bool(expected == actual)
    numberish = (int, float, type(None))
    if isinstance(expected, numberish) and isinstance(actual, numberish):
        return True
    if isinstance(expected, str) and "..." in expected and isinstance(actual, str):
        return _elided(expected, actual)
    return bool(shape(expected) == shape(actual))


def _elided(expected: str, actual: str) -> bool:
    """``hive ... -e 'USE default; ...'``: the README abbreviates; the shown parts must appear."""
    parts = [re.escape(mask(part)) for part in expected.split("...")]
    return re.fullmatch(".*".join(parts), mask(actual), re.S) is not None


def trimmed_like(expected: Any, actual: Any) -> Any:
    """``actual`` with its lists cut to the length the README shows (for ``make readme``)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: trimmed_like(expected.get(k), v) for k, v in actual.items()}
    if isinstance(expected, list) and isinstance(actual, list) and expected:
        return [trimmed_like(e, a) for e, a in zip(expected, actual, strict=False)]
    if isinstance(expected, str) and "..." in expected and json_matches(expected, actual):
        return expected  # an abbreviation that still holds stays
    return actual


def render_json(value: Any, compact: bool) -> list[str]:
    """The README's rendering of a JSON answer: one line when the sample was one line."""
    if compact:
        return [json.dumps(value, ensure_ascii=False, separators=(",", ":"))]
    return json.dumps(value, ensure_ascii=False, indent=2).split("\n")
