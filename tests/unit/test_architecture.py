"""The house rules that code review alone would let slip, checked by reading the source.

- No Kylin status, state, build-type or action name is written as a string literal outside
  ``engine/core/``: everything else uses the enums of ``engine/core/states.py``. A line that
  spells such a word for another reason (a table header "START") says so with the comment
  ``# not-a-kylin-name``.
- ``engine/core/`` is pure: it imports only the standard library and ``engine.core``.
- Modules of ``engine/``, ``steps/`` and ``bench/`` are at most 400 lines, their functions and
  methods at most 60 (``end_lineno - lineno + 1`` of the ``def``): split, don't grow.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from engine.core import states

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "engine" / "core"
KYLIN_ENUMS: tuple[type[StrEnum], ...] = (
    states.State,
    states.JobStatus,
    states.BuildType,
    states.SegmentStatus,
    states.CubeStatus,
    states.Operation,
    states.StreamingStatus,
    states.StreamingAction,
    states.StreamingJobType,
    states.RecordAction,
)
KYLIN_NAMES = frozenset(member.value for enum in KYLIN_ENUMS for member in enum)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
SIZED = ("engine", "steps", "bench")


def sources(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(node, kinds) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _sql(tree: ast.AST) -> set[int]:
    """String arguments of ``.execute(...)``: SQL such as ``ROLLBACK``, not a Kylin name."""
    found: set[int] = set()
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Attribute) and func.attr in ("execute", "executescript"):
            assert isinstance(node, ast.Call)
            found.update(id(arg) for arg in node.args)
    return found


def kylin_literals(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: 'NAME'`` for each Kylin name written as a string literal in ``path``."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    skip = _docstrings(tree) | _sql(tree)
    marked = {i for i, line in enumerate(text.splitlines(), 1) if "# not-a-kylin-name" in line}
    return [
        f"{path.relative_to(root)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in KYLIN_NAMES
        and id(node) not in skip
        and node.lineno not in marked
    ]


def test_no_kylin_name_is_written_outside_core() -> None:
    found = [
        hit
        for path in sources("engine", "steps")
        if CORE not in path.parents
        for hit in kylin_literals(path)
    ]
    assert found == [], "use the enums of engine/core/states.py:\n" + "\n".join(found)


def test_the_scan_sees_a_literal_when_there_is_one(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""READY"""\nx = "RUNNING"\nconn.execute("ROLLBACK")\nh = ["START"]  # not-a-kylin-name\n'
    )
    assert kylin_literals(sample, tmp_path) == ["sample.py:2: 'RUNNING'"]


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_core_imports_only_the_standard_library_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    bad = [
        f"{path.relative_to(ROOT)}:{line}: import {name}"
        for path in sources("engine/core")
        for line, name in _imports(path)
        if name.split(".")[0] not in allowed
        and name != "engine.core"
        and not name.startswith("engine.core.")
    ]
    assert bad == [], "engine/core must stay pure:\n" + "\n".join(bad)


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    """``file: N lines`` when the module is too long, ``file:line name(): N lines`` per function."""
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(root)
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{where}:{node.lineno} {node.name}(): {length} lines "
                    f"(at most {MAX_FUNCTION_LINES})"
                )
    return found


def test_modules_and_functions_stay_small() -> None:
    found = [hit for path in sources(*SIZED) for hit in oversized(path)]
    assert found == [], "split, don't grow:\n" + "\n".join(found)


def test_the_size_check_sees_a_long_module_and_a_long_function(tmp_path: Path) -> None:
    def function(head: str, lines: int) -> list[str]:
        return [head, *(f"    x{i} = {i}" for i in range(lines - 1)), ""]

    too_long = function("def long():", MAX_FUNCTION_LINES + 1)
    fits = function("async def fits():", MAX_FUNCTION_LINES)
    padding = [""] * (MAX_MODULE_LINES + 1 - len(too_long) - len(fits))
    sample = tmp_path / "sample.py"
    sample.write_text("\n".join([*too_long, *fits, *padding]) + "\n")
    assert oversized(sample, tmp_path) == [
        f"sample.py: {MAX_MODULE_LINES + 1} lines (at most {MAX_MODULE_LINES})",
        f"sample.py:1 long(): {MAX_FUNCTION_LINES + 1} lines (at most {MAX_FUNCTION_LINES})",
    ]
