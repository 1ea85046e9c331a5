"""When the engine cannot go on, ``kjobs serve`` ends with it: one line on stderr, exit 3.

The fault is real: the store's pages are overwritten with garbage under the running server (a
damaged disk, or someone writing over the file). The next read finds it no SQLite database any more
(``SQLITE_NOTADB``/``SQLITE_CORRUPT``: ``StoreBroken``); the engine's task group ends, and the
process exits instead of answering without an engine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.conftest import start_server

DEADLINE_S = 30.0
WAL_HEADER, FRAME_HEADER = 32, 24  #: https://sqlite.org/fileformat2.html#walformat


def damage(store: Path) -> None:
    """Overwrite every page of the store with garbage: the file's, and the -wal's frames (their
    headers kept, so SQLite still reads the pages and finds them damaged)."""
    store.write_bytes(os.urandom(store.stat().st_size))
    wal = Path(f"{store}-wal")
    if not wal.exists():
        return
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    with wal.open("r+b") as file:
        at = WAL_HEADER + FRAME_HEADER
        while at + page <= wal.stat().st_size:
            file.seek(at)
            file.write(os.urandom(page))
            at += FRAME_HEADER + page


def test_a_store_damaged_under_the_server_ends_it_with_one_line(tmp_path: Path) -> None:
    store = tmp_path / "kjobs.sqlite"
    server = start_server(tmp_path, store, 1000.0)
    with server.client() as client:
        assert client.get("/jobs").status_code == 200
        damage(store)
        deadline = time.monotonic() + DEADLINE_S
        while server.process.poll() is None:
            assert time.monotonic() < deadline, "the server kept running on a damaged store"
            try:
                answer = client.get("/jobs", params={"limit": 5})
                assert answer.status_code in (200, 503), answer.text  # never a 500
            except httpx.TransportError:
                pass  # the server is going away
            time.sleep(0.05)
    out, _ = server.process.communicate(timeout=DEADLINE_S)
    err = Path(str(server.stderr)).read_text()
    assert server.process.returncode == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kjobs: the engine stopped, so the server did: store "), lines[0]
    assert "not a database" in lines[0] or "malformed" in lines[0]
    assert "kjobs: stopped" not in out
