"""``SqliteDatabase``: migrations, group commit, failures inside a batch, one winner per race."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import anyio
import pytest

from engine.core.errors import ConcurrentModification, ConfigError, StoreUnavailable
from engine.core.jobs import Family, Job, StepSpec
from engine.core.operations import submit
from engine.core.segments import plan_segment
from engine.store.ports import JobWrite
from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.jobs import SqliteJobStore
from engine.store.sqlite.migrations import Migration, load_migrations, split_statements

SPECS = (StepSpec("Build Base Cuboid", "JAVA_CMD_HADOOP_BASECUBOID", Family.MAPREDUCE),)

EXTRA = Migration(
    9001, "test_notes", "CREATE TABLE test_notes (id INTEGER PRIMARY KEY, note TEXT);"
)


def make_job(job_id: str) -> Job:
    segment = plan_segment(f"seg-{job_id}", "cube", "BUILD", 0, 0, ())
    return submit(job_id, "project", "cube", "BUILD", segment, SPECS, "ADMIN", 1_000).job


def schema(path: Path) -> list[tuple[str, str, str, str]]:
    """Every table, index and trigger of the file, as SQLite itself reports them."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    conn.close()
    return [(t, n, tbl, sql or "") for t, n, tbl, sql in rows]


def recorded(path: Path) -> tuple[list[int], int]:
    """The migrations recorded in the file, and its ``user_version``."""
    conn = sqlite3.connect(path)
    try:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        (user_version,) = conn.execute("PRAGMA user_version").fetchone()
    finally:
        conn.close()
    return versions, user_version


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "db.sqlite")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


# -- migrations -------------------------------------------------------------------------------


def test_shipped_migrations_are_numbered_and_parse() -> None:
    migrations = load_migrations()
    assert migrations[0].version == 1
    assert migrations[0].name == "batch"
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    for migration in migrations:
        assert split_statements(migration.sql)


async def test_a_fresh_database_equals_one_migrated_step_by_step(tmp_path: Path) -> None:
    migrations = (*load_migrations(), EXTRA)
    fresh = tmp_path / "fresh.sqlite"
    database = SqliteDatabase(fresh, migrations=migrations)
    await database.open()
    await database.close()

    stepwise = tmp_path / "stepwise.sqlite"
    for count in range(1, len(migrations) + 1):
        database = SqliteDatabase(stepwise, migrations=migrations[:count])
        await database.open()
        await database.close()

    assert schema(fresh) == schema(stepwise)
    assert recorded(fresh) == recorded(stepwise) == ([m.version for m in migrations], 9001)
    assert {"jobs", "step_outputs", "segments"} <= {name for _, name, _, _ in schema(fresh)}


async def test_open_is_idempotent_and_a_reopen_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    database = SqliteDatabase(path)
    await database.open()
    await database.open()
    await database.close()
    await database.close()
    before = schema(path)
    again = SqliteDatabase(path)
    await again.open()
    await again.close()
    assert schema(path) == before
    assert recorded(path)[0] == [m.version for m in load_migrations()]


async def test_a_database_from_a_newer_kjobs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    newer = SqliteDatabase(path, migrations=(*load_migrations(), EXTRA))
    await newer.open()
    await newer.close()
    older = SqliteDatabase(path)
    with pytest.raises(ConfigError, match="9001"):
        await older.open()
    assert not older.is_open


async def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    broken = Migration(9002, "broken", "CREATE TABLE half (id INTEGER);\nSELECT * FROM missing;")
    database = SqliteDatabase(path, migrations=(*load_migrations(), broken))
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        await database.open()
    assert "half" not in {name for _, name, _, _ in schema(path)}
    assert 9002 not in recorded(path)[0]


def test_statements_are_split_where_sqlite_says_they_end() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
        UPDATE t SET x = 'c;d';
    END;
    -- trailing comment
    """
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE t (x TEXT")


def test_only_files_with_wal_are_accepted() -> None:
    with pytest.raises(ValueError, match="file path"):
        SqliteDatabase(":memory:")
    with pytest.raises(ValueError, match="synchronous"):
        SqliteDatabase("x.sqlite", synchronous="OFF")


async def test_connections_are_configured(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "db.sqlite", synchronous="full")
    await database.open()
    try:

        def pragmas(conn: sqlite3.Connection) -> tuple[object, ...]:
            names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            return tuple(conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names)

        assert await database.write_sync(pragmas) == ("wal", 2, 1, 5000)

        async def read_only(conn: aiosqlite.Connection) -> int:
            rows = await conn.execute_fetchall("PRAGMA query_only")
            return int(next(iter(rows))[0])

        assert await database.read(read_only) == 1
    finally:
        await database.close()


# -- group commit -----------------------------------------------------------------------------


async def test_concurrent_saves_all_land_in_fewer_transactions(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store = SqliteJobStore(path)
    await store.open()
    try:
        created = [await store.save_job(JobWrite(make_job(f"j{n:03d}"), None)) for n in range(200)]
        before = store.db.committed_batches
        with anyio.fail_after(20):
            saved = await asyncio.gather(
                *(store.save_job(JobWrite(job.evolve(priority=99), job.version)) for job in created)
            )
        batches = store.db.committed_batches - before
        assert [job.version for job in saved] == [2] * 200
        assert 1 <= batches < 200
        # committed: a connection of its own sees every write
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT count(*) FROM jobs WHERE version = 2 AND priority = 99")
            assert rows.fetchone()[0] == 200
        conn.close()
    finally:
        await store.close()


async def insert_note(conn: aiosqlite.Connection, note: str) -> int:
    cursor = await conn.execute("INSERT INTO test_notes (note) VALUES (?)", (note,))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def notes(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        found = [row[0] for row in conn.execute("SELECT note FROM test_notes ORDER BY note")]
    conn.close()
    return found


@pytest.fixture
async def notes_db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "notes.sqlite", migrations=(EXTRA,))
    await database.open()
    try:
        yield database
    finally:
        await database.close()


class Boom(Exception):
    """An op's own failure."""


async def test_a_failing_op_does_not_lose_the_rest_of_its_batch(
    notes_db: SqliteDatabase,
) -> None:
    async def good(n: int) -> int:
        return await notes_db.write(lambda conn: insert_note(conn, f"good-{n:02d}"))

    async def bad_op(conn: aiosqlite.Connection) -> None:
        await insert_note(conn, "bad, half written")
        raise Boom("mid-way")

    def lost_race_after_writing(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO test_notes (note) VALUES ('race, half written')")
        raise ConcurrentModification("x", 1)

    def good_sync(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO test_notes (note) VALUES ('good-sync')")
        return "sync ok"

    before = notes_db.committed_batches
    with anyio.fail_after(10):
        results = await asyncio.gather(
            good(1),
            notes_db.write(bad_op),
            good(2),
            notes_db.write_sync(good_sync),
            notes_db.write_sync(lost_race_after_writing),
            good(3),
            return_exceptions=True,
        )
    assert isinstance(results[1], Boom)
    assert isinstance(results[4], ConcurrentModification)
    assert results[3] == "sync ok"
    assert all(isinstance(results[i], int) for i in (0, 2, 5))
    assert notes(Path(notes_db.path)) == ["good-01", "good-02", "good-03", "good-sync"]
    assert notes_db.committed_batches > before


async def test_a_clean_lost_race_leaves_the_batch_whole(notes_db: SqliteDatabase) -> None:
    def lost(conn: sqlite3.Connection) -> None:
        raise ConcurrentModification("x", 1)

    before = notes_db.committed_batches
    with anyio.fail_after(10):
        results = await asyncio.gather(
            notes_db.write(lambda conn: insert_note(conn, "a")),
            notes_db.write_sync(lost),
            notes_db.write(lambda conn: insert_note(conn, "b")),
            return_exceptions=True,
        )
    assert isinstance(results[1], ConcurrentModification)
    assert notes(Path(notes_db.path)) == ["a", "b"]
    assert notes_db.committed_batches == before + 1  # one transaction, nothing re-run


async def test_twenty_writers_on_one_job_have_one_winner(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite")
    await store.open()
    try:
        v1 = await store.save_job(JobWrite(make_job("one"), None))

        async def attempt(n: int) -> Job | None:
            try:
                return await store.save_job(JobWrite(v1.evolve(priority=n), v1.version))
            except ConcurrentModification:
                return None

        with anyio.fail_after(10):
            results = await asyncio.gather(*(attempt(n) for n in range(20)))
        winners = [job for job in results if job is not None]
        assert len(winners) == 1
        assert await store.get_job("one") == winners[0]
        assert winners[0].version == 2
    finally:
        await store.close()


async def test_close_commits_what_was_queued_and_then_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    database = SqliteDatabase(path, migrations=(EXTRA,))
    await database.open()
    writes = [database.write(lambda conn, n=n: insert_note(conn, f"n{n:02d}")) for n in range(10)]
    with anyio.fail_after(10):
        # gather starts its tasks in order: the writes are queued before close begins
        results = await asyncio.gather(*writes, database.close())
    assert len(results) == 11
    assert notes(path) == [f"n{n:02d}" for n in range(10)]
    with pytest.raises(StoreUnavailable, match="not open"):  # a 503 over HTTP, not a 500
        await database.write(lambda conn: insert_note(conn, "late"))


async def test_reads_see_every_returned_write(db: SqliteDatabase) -> None:
    store = SqliteJobStore(db)
    await store.open()  # a shared database: opening again is a no-op
    for n in range(20):
        job = await store.save_job(JobWrite(make_job(f"j{n}"), None))
        assert await store.get_job(job.id) == job
    await store.close()  # not the owner: the database stays open
    assert db.is_open


async def test_a_long_op_commits_on_the_writers_thread_never_the_loops(
    notes_db: SqliteDatabase,
) -> None:
    loop_thread = threading.get_ident()

    def where(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO test_notes (note) VALUES ('x')")
        return threading.get_ident()

    assert await notes_db.write_sync(where) == loop_thread  # NORMAL: a short op commits inline
    assert await notes_db.write_sync(where, inline=False) != loop_thread
    # a short op queued beside a long one commits with it, on the writer's thread
    beside = await asyncio.gather(
        notes_db.write_sync(where, inline=False), notes_db.write_sync(where)
    )
    assert loop_thread not in beside
    assert notes(notes_db.path) == ["x"] * 4


async def test_a_write_tells_whether_another_process_committed_since_the_last_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.sqlite"
    mine, theirs = SqliteDatabase(path), SqliteDatabase(path)
    await mine.open()
    await theirs.open()
    told: list[str] = []
    mine.others.listeners.append(lambda: told.append("other commits"))

    def note(text: str) -> object:
        return lambda conn: conn.execute("INSERT INTO leases (job_id, owner, token, expires) "
                                         "VALUES (?, 'n', 1, 0)", (text,))  # fmt: skip

    try:
        for n in range(3):  # this process's own writes, inline or from its thread
            await mine.write_sync(note(f"mine-{n}"), inline=n % 2 == 0)
        assert told == []
        await theirs.write_sync(note("theirs"))
        assert told == []  # seen at this process's next transaction, not before
        await mine.write_sync(note("mine-after"))
        assert told == ["other commits"]
        await mine.write_sync(note("mine-again"), inline=False)
        assert told == ["other commits"]  # once per change of the file's data version
        await theirs.write_sync(note("theirs-again"))

        async def async_note(conn: aiosqlite.Connection) -> None:
            await conn.execute("UPDATE leases SET token = token + 1 WHERE job_id = 'mine-0'")

        await mine.write(async_note)  # an async op's transaction reads it too
        assert told == ["other commits"] * 2
    finally:
        await theirs.close()
        await mine.close()
