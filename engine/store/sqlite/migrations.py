"""Numbered schema migrations: the only way the SQLite schema is made or changed.

The schema is made only by the numbered files in ``engine/store/sqlite/schema/``, named
``NNNN_name.sql`` (``0001_batch.sql``; streaming tables come as ``0002_streaming.sql``, ...).
``open()`` applies the ones not yet recorded in the ``schema_migrations`` table, in order, each in
its own transaction, and records them (``PRAGMA user_version`` follows the latest). To change the
schema, add a file with the next number; never edit one that has shipped. A file may hold several
statements (triggers too) but no ``BEGIN``/``COMMIT``: the runner wraps it. A database that has a
migration this kjobs does not know (written by a newer version) is refused.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final

from engine.core.errors import ConfigError

_MIGRATION_FILE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_MIGRATIONS_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""
SELECT_APPLIED_MIGRATIONS: Final = "SELECT version FROM schema_migrations ORDER BY version"
INSERT_MIGRATION: Final = "INSERT INTO schema_migrations (version, name) VALUES (?, ?)"


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change: the SQL of ``schema/NNNN_name.sql``."""

    version: int
    name: str
    sql: str


def load_migrations() -> tuple[Migration, ...]:
    """The migrations shipped in ``engine/store/sqlite/schema/``, by version."""
    folder = resources.files("engine.store.sqlite").joinpath("schema")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise ConfigError(entry.name, "version", f"migration {version} is defined twice")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return tuple(found[v] for v in sorted(found))


def split_statements(sql: str) -> list[str]:
    """The complete statements of a script, in order (``sqlite3.complete_statement`` decides)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _has_code(buffer):
        raise ValueError(f"incomplete SQL statement at the end of the script: {buffer.strip()!r}")
    return statements


def _has_code(text: str) -> bool:
    """Whether ``text`` holds more than blanks, ``--`` comments and semicolons."""
    return any(line.split("--", 1)[0].strip(" \t\r\n;") for line in text.splitlines())


def migrate(conn: sqlite3.Connection, path: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply the ``migrations`` not yet recorded, each in a transaction; the versions applied."""
    conn.execute(CREATE_MIGRATIONS_TABLE)
    unknown = _applied(conn) - {m.version for m in migrations}
    if unknown:
        raise ConfigError(
            path,
            "schema_migrations",
            f"the database has migrations {sorted(unknown)} that this kjobs does not know "
            "(written by a newer version?)",
        )
    done: list[int] = []
    for migration in migrations:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # asked again under the write lock: another process may have just applied it
            if migration.version not in _applied(conn):
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(INSERT_MIGRATION, (migration.version, migration.name))
                conn.execute(f"PRAGMA user_version = {migration.version}")
                done.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    return done


def _applied(conn: sqlite3.Connection) -> set[int]:
    return {row[0] for row in conn.execute(SELECT_APPLIED_MIGRATIONS)}


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # SQLite ends some transactions on its own after errors
        conn.execute("ROLLBACK")
