"""A store kjobs may not write, at start-up: ``kjobs serve --store`` and ``kjobs simulate --store``
say so in one line naming the store and what is wrong, exit 2, and leave the file as it was.

The commands run as an unprivileged user (``tests.unprivileged``): root would pass every
permission check.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unprivileged import shared_folder, unprivileged, writable_by_the_runner

pytestmark = pytest.mark.slow

#: each command's arguments after ``--store STORE``: they must fail before doing anything
COMMANDS = {
    "serve": ("serve", "--port", "0"),
    "simulate": ("simulate", "--hours", "1", "--out", "out"),
}


def kjobs(argv: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real ``kjobs`` as an unprivileged user (bounded)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}
    env["KJOBS_WORKDIR"] = str(cwd / "work")
    return subprocess.run(
        unprivileged([sys.executable, "-m", "engine.cli", *argv]),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a refused start (exit 2, no traceback, nothing served)."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kjobs: "), lines[0]
    assert "serving on" not in done.stdout
    return lines[0]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder the unprivileged user can reach."""
    with shared_folder() as folder:
        yield folder


@pytest.fixture
def workplace(shared_tmp: Path) -> Path:
    """The commands' working folder: theirs to write (``--out``, the workdir)."""
    place = shared_tmp / "cwd"
    place.mkdir()
    writable_by_the_runner(place)
    return place


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_read_only_directory(command: str, shared_tmp: Path, workplace: Path) -> None:
    folder = shared_tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    store = folder / "kjobs.sqlite"
    line = refusal(kjobs(("--verbose", *COMMANDS[command], "--store", str(store)), workplace))
    assert f"store {store}: permission denied on the directory {folder}" in line
    assert list(folder.iterdir()) == []


def test_serve_on_a_read_only_file(shared_tmp: Path, workplace: Path) -> None:
    """A store made by an earlier run, now read-only (the folder is writable: only the file)."""
    store = workplace / "kjobs.sqlite"
    made = kjobs(("simulate", "--hours", "1", "--out", "out", "--store", str(store)), workplace)
    assert made.returncode == 0, made.stderr
    store.chmod(0o444)
    before = sha(store)
    line = refusal(kjobs((*COMMANDS["serve"], "--store", str(store)), workplace))
    assert f"store {store}: permission denied on the file {store}" in line
    assert sha(store) == before


def test_simulate_onto_an_existing_file(shared_tmp: Path, workplace: Path) -> None:
    """simulate writes a fresh store: a file already there (read-only or not) is refused."""
    store = workplace / "kjobs.sqlite"
    store.write_bytes(b"kept\n")
    store.chmod(0o444)
    line = refusal(kjobs((*COMMANDS["simulate"], "--store", str(store)), workplace))
    assert f"{store}: --store: exists already" in line
    assert "another path" in line  # what to do
    assert store.read_bytes() == b"kept\n"


def test_simulate_into_a_read_only_out_folder(shared_tmp: Path, workplace: Path) -> None:
    out = shared_tmp / "read-only-out"
    out.mkdir()
    out.chmod(0o555)
    line = refusal(kjobs(("simulate", "--hours", "1", "--out", str(out / "day")), workplace))
    assert f"{out / 'day'}: --out: " in line
    assert "permission denied" in line.lower()
    assert list(out.iterdir()) == []
