"""Bad stores at start-up: the real ``kjobs serve`` says why in one line, exits 2, and leaves the
file byte-identical (nothing is opened for writing, no ``optimize`` runs)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.migrations import Migration, load_migrations
from tests.faults.conftest import fill

NOBODY = 65534
RUN_AS_NOBODY = textwrap.dedent(
    """
    import encodings.idna, importlib, os, sys
    import engine.cli, engine.api.app, engine.facade, engine.config, uvicorn
    import engine.store.sqlite.migrations
    for name in engine.cli.COMMAND_MODULES:
        importlib.import_module(name)
    engine.config.load_config()  # the same lazy imports the real start-up makes
    engine.store.sqlite.migrations.load_migrations()
    os.setgroups([]); os.setgid({uid}); os.setuid({uid})
    sys.exit(engine.cli.main(sys.argv[1:]))
    """
)


def digest(path: Path) -> str | None:
    """The file's SHA-256 (None for a directory or a missing file)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def serve(store: Path, *, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    """``kjobs serve --store STORE`` to its end (it must not get as far as serving)."""
    args = ["serve", "--port", "0", "--store", str(store)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}
    if as_nobody and os.geteuid() == 0:
        # root passes every permission check: drop to nobody once the modules are loaded
        command = [sys.executable, "-c", RUN_AS_NOBODY.format(uid=NOBODY), *args]
    else:
        command = [sys.executable, "-m", "engine.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


async def real_store(path: Path, extra: tuple[Migration, ...] = ()) -> None:
    """A real store file, written by this kjobs (plus ``extra`` migrations) and closed."""
    db = SqliteDatabase(path, migrations=(*load_migrations(), *extra))
    await db.open()
    await db.close()


def assert_refused(result: subprocess.CompletedProcess[str], store: Path, reason: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"kjobs: store {store}: "), lines[0]
    assert reason in lines[0]
    assert "serving on" not in result.stdout
    assert "optimize" not in result.stderr


async def test_a_store_of_a_newer_kjobs(tmp_path: Path) -> None:
    store = tmp_path / "k.sqlite"
    await real_store(store, (Migration(9001, "from_the_future", "CREATE TABLE later (x);"),))
    before = digest(store)
    assert_refused(serve(store), store, "schema version 9001 was written by a newer kjobs")
    assert digest(store) == before


def test_garbage_is_not_a_sqlite_file(tmp_path: Path) -> None:
    store = tmp_path / "k.sqlite"
    store.write_bytes(os.urandom(8192))
    before = digest(store)
    assert_refused(serve(store), store, "is not a SQLite database")
    assert digest(store) == before


async def test_a_truncated_store(tmp_path: Path) -> None:
    store = tmp_path / "k.sqlite"
    await real_store(store)
    data = store.read_bytes()
    store.write_bytes(data[: len(data) // 2 + 100])
    before = digest(store)
    assert_refused(serve(store), store, "is truncated or damaged")
    assert digest(store) == before


def test_a_directory(tmp_path: Path) -> None:
    store = tmp_path / "k.sqlite"
    store.mkdir()
    assert_refused(serve(store), store, "is a directory")
    assert list(store.iterdir()) == []


def test_a_parent_that_is_a_file(tmp_path: Path) -> None:
    parent = tmp_path / "data"
    parent.write_text("not a folder\n")
    store = parent / "k.sqlite"
    assert_refused(serve(store), store, f"its parent {parent} is a file")
    assert parent.read_text() == "not a folder\n"


def shared_folder(tmp_path: Path) -> Path:
    """A folder ``nobody`` can reach (pytest's base folder is private to root)."""
    folder = Path(f"/tmp/kjobs-faults-{os.getpid()}-{tmp_path.name}")
    folder.mkdir(mode=0o755)
    return folder


@pytest.fixture
def open_folder(tmp_path: Path) -> Callable[[], Path]:
    made: list[Path] = []

    def make() -> Path:
        made.append(shared_folder(tmp_path))
        return made[-1]

    yield make  # type: ignore[misc]
    for folder in made:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


async def test_permission_denied_on_the_directory(open_folder: Callable[[], Path]) -> None:
    folder = open_folder() / "ro"
    folder.mkdir()
    store = folder / "k.sqlite"
    await real_store(store)
    for file in folder.iterdir():
        file.chmod(0o666)
    folder.chmod(0o555)
    before = digest(store)
    assert_refused(
        serve(store, as_nobody=True), store, f"permission denied on the directory {folder}"
    )
    assert digest(store) == before


async def test_permission_denied_on_the_file(open_folder: Callable[[], Path]) -> None:
    folder = open_folder()
    store = folder / "k.sqlite"
    await real_store(store)
    folder.chmod(0o777)
    store.chmod(0o444)
    before = digest(store)
    assert_refused(serve(store, as_nobody=True), store, f"permission denied on the file {store}")
    assert digest(store) == before


def test_a_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    store = tmp_path / "k.sqlite"
    os.mkfifo(store)
    assert_refused(serve(store), store, "is not a regular file")
    assert stat.S_ISFIFO(store.stat().st_mode)


def test_permission_denied_on_the_wal_file(open_folder: Callable[[], Path]) -> None:
    folder = open_folder()
    store = folder / "k.sqlite"
    anyio.run(real_store, store)
    wal = Path(f"{store}-wal")
    wal.write_bytes(b"")  # an empty -wal is no harm to SQLite, but kjobs must write it
    folder.chmod(0o777)
    store.chmod(0o666)
    wal.chmod(0o444)
    before = digest(store)
    assert_refused(serve(store, as_nobody=True), store, f"permission denied on the file {wal}")
    assert digest(store) == before and wal.read_bytes() == b""


def test_a_new_store_on_a_full_disk(tmpfs: Callable[[str], Path]) -> None:
    disk = tmpfs("1m")
    filler = fill(disk)
    store = disk / "kjobs" / "k.sqlite"
    assert_refused(serve(store), store, f"no space left on the device of {disk}")
    assert sorted(disk.iterdir()) == [filler]  # no half-made store, not even its folder


async def test_an_existing_store_on_a_full_disk(tmpfs: Callable[[str], Path]) -> None:
    disk = tmpfs("2m")
    store = disk / "k.sqlite"
    await real_store(store)
    fill(disk)
    before = digest(store)
    assert_refused(serve(store), store, "refuses writes (")
    assert digest(store) == before
