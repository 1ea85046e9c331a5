"""Real faults for the fault tests: a small tmpfs that can be filled up (``tmpfs``, ``fill``).

Mounting needs root: a test is skipped only when ``mount`` is refused, and fails instead when
``CI=true`` (CI runs as root, so the fault must be provoked there).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``tmpfs("3m")``: a folder with a tmpfs of that size mounted on it (unmounted after)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            reason = f"cannot mount a tmpfs: {done.stderr.strip()}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason + " (CI runs as root: the fault must be provoked here)")
            pytest.skip(reason)
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a filler file in ``folder`` until its device is full; the filler's path."""
    filler = folder / "filler"
    for chunk in (b"\0" * 65536, b"\0" * 512):  # big writes, then the last few bytes too
        with filler.open("ab", buffering=0) as out:
            while True:
                try:
                    out.write(chunk)
                except OSError as exc:
                    full = exc
                    break
        assert full.errno == errno.ENOSPC, full
    return filler
