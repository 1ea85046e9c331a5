"""Every runnable example of README.md runs as printed, in order; its outputs are checked.

The convention is in ``tests/readme/blocks.py`` and CONTRIBUTING.md. When an output changed on
purpose, ``make readme`` writes the new one into the README.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.readme.blocks import KINDS, RUNNABLE, commands, parse
from tests.readme.walk import README, session

BLOCKS = parse(README.read_text())


def test_every_marker_is_known_and_well_placed() -> None:
    """A typo in a marker would silently skip a check: refuse it."""
    previous = None
    for block in BLOCKS:
        if block.marker is not None:
            assert block.marker in KINDS, f"{block.where}: unknown marker {block.marker!r}"
        if block.marker == "skip":
            assert block.reason, f"{block.where}: a skipped block says why"
        if block.marker == "output":
            assert block.lang in ("json", "text"), f"{block.where}: output is json or text"
            assert previous is not None and previous.runs, f"{block.where}: output of what?"
        if block.marker == "pytest":
            assert block.lang == "python", block.where
        if block.lang == "console" and block.runs:
            assert commands(block), f"{block.where}: a console block without '$ ' commands"
        previous = block


def test_most_runnable_blocks_run() -> None:
    """Skipping is for what cannot run in a test (a server that runs forever, the benchmark)."""
    runnable = [b for b in BLOCKS if b.lang in RUNNABLE]
    skipped = [b for b in runnable if not b.runs]
    assert len(skipped) <= len(runnable) // 4, [b.where for b in skipped]


@pytest.mark.slow
def test_the_readme_runs_top_to_bottom(tmp_path: Path) -> None:
    """One newcomer, one server, every example in the README's order."""
    with session(tmp_path) as walk:
        walk.run(BLOCKS)
    hint = "\n(outputs changed on purpose? `make readme` rewrites them; review the diff)"
    assert not walk.problems, "\n\n".join(walk.problems) + hint
