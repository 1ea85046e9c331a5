"""Start-up checks of a SQLite store path, before anything opens (or writes to) the file.

``preflight(path, known)`` raises ``StoreRefused`` naming the path and the one reason the file
cannot be a kjobs store: it is a directory, its parent is a file, permission is denied on the
directory or on the file, it is not a SQLite database, it is truncated, or it was written by a
newer kjobs (a schema version above ``known``), or it is a new store on a device without room
for it. It only reads an existing store: a refused store stays byte-identical, and no
connection is opened on a file that will be refused. For a new store it writes (and removes)
one probe file of ``NEW_STORE_BYTES`` beside it: a full disk is one line, not a half-made store.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Final

from engine.core.errors import StoreRefused

SQLITE_MAGIC: Final = b"SQLite format 3\x00"
HEADER_BYTES: Final = 100
#: room a new store takes while its migrations run (file, -wal and -shm: about 430 KB)
NEW_STORE_BYTES: Final = 512 * 1024
_NO_ROOM: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


def preflight(path: Path, known: int) -> None:
    """Refuse ``path`` with one clear reason unless kjobs can open it as its store."""
    where = str(path)
    if path.is_dir():
        raise StoreRefused(where, "is a directory, not a file")
    folder = _check_folder(path, where)
    if not path.exists():
        _check_room(folder, where)
        return  # a new store: SQLite creates it
    if not path.is_file():
        raise StoreRefused(where, "is not a regular file")
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            raise StoreRefused(
                where, f"permission denied on the file {file} (needs read and write)"
            )
    version = _header_version(path, where)
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        version = max(version, _wal_version(path, where))  # the header may lag behind the WAL
    if version > known:
        raise StoreRefused(
            where,
            f"schema version {version} was written by a newer kjobs "
            f"(this one knows up to {known}); nothing was changed",
        )


def _check_folder(path: Path, where: str) -> Path:
    """The folder must be (or become) a writable directory: SQLite adds -wal and -shm files.
    Returns the nearest folder that exists."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise StoreRefused(where, f"its parent {folder} is a file, not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        verb = "hold" if folder == path.parent else "create the folder of"
        raise StoreRefused(
            where,
            f"permission denied on the directory {folder} (kjobs must be able to {verb} "
            "the store and its -wal and -shm files)",
        )
    return folder


def _check_room(folder: Path, where: str) -> None:
    """A new store must fit: write ``NEW_STORE_BYTES`` to a probe file in ``folder``, remove it."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".kjobs-probe-") as probe:
            probe.write(bytes(NEW_STORE_BYTES))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise StoreRefused(where, f"cannot write in {folder}: {exc.strerror or exc}") from exc
        raise StoreRefused(
            where,
            f"no space left on the device of {folder} for a new store "
            f"(it needs about {NEW_STORE_BYTES // 1024} KiB)",
        ) from exc


def _header_version(path: Path, where: str) -> int:
    """The schema version in the file's header; refuses a file that is not a whole database."""
    size = path.stat().st_size
    if size == 0:
        return 0  # an empty file is an empty database to SQLite
    with path.open("rb") as file:
        header = file.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES or not header.startswith(SQLITE_MAGIC):
        raise StoreRefused(where, f"is not a SQLite database ({size} bytes, no SQLite header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96] and pages > 0  # SQLite's rule for the in-header size
    if page_size < 512 or size % page_size or (valid and size < pages * page_size):
        expected = f", the header says {pages * page_size}" if valid else ""
        raise StoreRefused(where, f"is truncated or damaged ({size} bytes{expected})")
    return int.from_bytes(header[60:64], "big", signed=True)


def _wal_version(path: Path, where: str) -> int:
    """The schema version as the WAL has it (read-only: nothing is checkpointed)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreRefused(where, f"cannot be read as a SQLite database ({exc})") from exc
