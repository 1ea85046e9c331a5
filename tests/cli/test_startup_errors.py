"""A user mistake at start-up is one line ``kjobs: …`` naming what to do, and exit status 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def kjobs(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real ``kjobs`` command (bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused start (and nothing on stdout)."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kjobs: ")
    return lines[0]


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = one_line(kjobs("serve", "--port", str(port), "--store", ":memory:", cwd=tmp_path))
    assert f"127.0.0.1:{port} is already in use" in line
    assert "--port" in line


def test_an_unknown_cube_in_run(tmp_path: Path) -> None:
    line = one_line(kjobs("run", "--cube", "kylin_sale_cube", cwd=tmp_path))
    assert "Cannot find cube 'kylin_sale_cube'" in line
    assert "kylin_sales_cube" in line  # the cubes there are


def test_an_unknown_scenario_file(tmp_path: Path) -> None:
    line = one_line(kjobs("simulate", "no-such-day.toml", cwd=tmp_path))
    assert "no-such-day.toml: scenario file not found" in line
    assert "failures.toml" in line  # the shipped scenarios, and where they are
    assert "-:" not in line


def test_an_unknown_config_folder(tmp_path: Path) -> None:
    line = one_line(kjobs("serve", "--config", str(tmp_path / "nope"), cwd=tmp_path))
    assert f"{tmp_path / 'nope'}: config folder not found (the shipped one is " in line


def test_a_store_serve_cannot_use(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()  # a folder where the SQLite file should be
    line = one_line(kjobs("serve", "--port", "0", "--store", str(folder), cwd=tmp_path))
    # the store preflight (engine/store/sqlite/preflight.py) names the store and the reason
    assert f"store {folder}: is a directory" in line
