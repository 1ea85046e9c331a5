"""The shared PostgreSQL layer: a connection pool, numbered migrations, and LISTEN/NOTIFY.

Every PostgreSQL store (batch jobs ``jobs.py``, streaming jobs ``streaming.py``, leases
``leases.py``) goes through one ``PostgresDatabase``. Writes are short transactions on pooled
connections; a compare-and-set is ``UPDATE ... WHERE version = $n`` and its status tells who won.
Reads that need several statements run in one ``REPEATABLE READ`` snapshot.

Migrations. ``open()`` applies the numbered files of ``schema/`` (``NNNN_name.sql``) not yet in
``schema_migrations``, each in its own transaction, under an advisory lock (nodes that start
together migrate once). A database with a migration this kjobs does not know is refused.

Wake-ups. ``NOTIFY_WORK`` (run inside a write's transaction, delivered on commit) tells every
node listening on the database that a job may be waiting, ``NOTIFY_LEASE`` that a lease was
revoked; ``listen(channel, callback)`` subscribes. A listening connection that is lost is made
again by the database itself (every ``RELISTEN_S``, until the server answers); every callback is
then called once, since NOTIFYs sent meanwhile are gone.

Faults. Every call goes through ``faults.GuardedPool``: a lost connection or a server that
shuts down is ``StoreUnavailable`` (recorded in ``health``: ``/health`` says ``degraded``, the
engine retries its writes); a committed write makes ``health`` ``ok`` again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from importlib import resources
from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from engine.core.errors import ConfigError
from engine.logging import get_logger
from engine.store.health import StoreHealth
from engine.store.postgres.faults import GuardedPool

log = get_logger()

#: a connection, pooled or not
Conn = asyncpg.Connection | PoolConnectionProxy
WORK_CHANNEL: Final = "kjobs_work"  #: NOTIFY channel: a job became READY somewhere
LEASE_CHANNEL: Final = "kjobs_lease"  #: NOTIFY channel: a lease was revoked (payload: job id)
RELISTEN_S: Final = 0.5  #: how often a lost listening connection is tried again
_MIGRATION_LOCK: Final = 7_070_001  #: advisory lock key held while migrating
_MIGRATION_FILE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_MIGRATIONS_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED: Final = "SELECT version FROM schema_migrations ORDER BY version"
INSERT_MIGRATION: Final = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
NOTIFY_WORK: Final = f"SELECT pg_notify('{WORK_CHANNEL}', $1)"
NOTIFY_LEASE: Final = f"SELECT pg_notify('{LEASE_CHANNEL}', $1)"


def load_migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of the migrations in ``engine/store/postgres/schema/``, by version."""
    folder = resources.files("engine.store.postgres").joinpath("schema")
    found = {}
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match is not None:
            version = int(match.group(1))
            found[version] = (version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


class PostgresDatabase:
    """One PostgreSQL database: a pool of ``pool_size`` connections and a listener."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1: {pool_size}")
        self.url = url
        self.pool_size = pool_size
        #: whether the server accepts writes, as the latest calls found (``GET /health``)
        self.health = StoreHealth(redact(url))
        self._pool: GuardedPool | None = None
        self._listener: asyncpg.Connection | None = None
        self._callbacks: dict[str, list[Callable[[], None]]] = {}
        #: makes a lost listening connection again (running only while it is lost)
        self._relisten: asyncio.Task[None] | None = None
        self._users = 0  #: stores that opened it (the last close releases it)

    @property
    def pool(self) -> GuardedPool:
        """The connection pool (its errors mapped by ``faults.classify``)."""
        if self._pool is None:
            raise RuntimeError("the database is not open")
        return self._pool

    async def open(self) -> None:
        """Connect and migrate (the first opener); every opener must ``close``."""
        self._users += 1
        if self._pool is not None:
            return
        # min_size=0: no floor for asyncpg to restore by itself while the server is away (it
        # would log a traceback a second); a connection is made when one is needed
        pool = await asyncpg.create_pool(
            self.url, min_size=0, max_size=self.pool_size, reset=_keep_session
        )
        try:
            try:
                conn = await pool.acquire()
            except (OSError, asyncpg.PostgresError) as exc:
                where = self.health.name  # the URL without its password
                raise ConfigError(where, "kjobs.store", f"cannot connect: {exc}") from exc
            try:
                await _migrate(conn, self.health.name)
            finally:
                await pool.release(conn)
        except BaseException:
            await pool.close()
            self._users -= 1
            raise
        self._pool = GuardedPool(pool, self.health)

    async def close(self) -> None:
        """Release the pool and the listener once the last opener closes."""
        self._users = max(0, self._users - 1)
        if self._users or self._pool is None:
            return
        pool, listener = self._pool, self._listener
        self._pool = self._listener = None
        if self._relisten is not None:
            self._relisten.cancel()
        if listener is not None:
            listener.remove_termination_listener(self._listener_lost)
            await listener.close()
        await pool.raw.close()

    async def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` on every NOTIFY on ``channel`` (one listening connection)."""
        if channel not in self._callbacks:
            self._callbacks[channel] = []
            if self._listener is not None:
                await self._listener.add_listener(channel, self._notified)
        self._callbacks[channel].append(callback)
        if self._listener is None:
            await self._connect_listener()

    async def _listen_again(self) -> None:
        """After the listening connection was lost (a restart, a network cut): listen again
        once the server answers, then call every callback once (NOTIFYs sent meanwhile are
        gone)."""
        try:
            while self._pool is not None:
                try:
                    await self._connect_listener()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(RELISTEN_S)  # still away
                    continue
                log.warning("kjobs.store.listening_again", store=self.health.name)
                for callbacks in list(self._callbacks.values()):
                    for callback in callbacks:
                        callback()
                return
        finally:
            self._relisten = None

    async def _connect_listener(self) -> None:
        listener = await asyncpg.connect(self.url)
        try:
            for channel in self._callbacks:
                await listener.add_listener(channel, self._notified)
        except BaseException:
            listener.terminate()  # half set up: not a listener
            raise
        listener.add_termination_listener(self._listener_lost)
        self._listener = listener

    def _listener_lost(self, conn: Conn) -> None:
        if conn is self._listener:
            self._listener = None
            if self._pool is not None and self._relisten is None:
                self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    def _notified(self, _conn: Conn, _pid: int, channel: str, _payload: object) -> None:
        for callback in self._callbacks.get(channel, ()):
            callback()


async def _keep_session(conn: Conn) -> None:
    """No reset on release: the stores set no session state (saves a round trip per use)."""


async def _migrate(conn: Conn, where: str) -> None:
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(CREATE_MIGRATIONS_TABLE)
        applied = {row[0] for row in await conn.fetch(SELECT_APPLIED)}
        migrations = load_migrations()
        unknown = applied - {m[0] for m in migrations}
        if unknown:
            raise ConfigError(
                where,
                "schema_migrations",
                f"the database has migrations {sorted(unknown)} that this kjobs does not know "
                "(written by a newer version?)",
            )
        for version, name, sql in migrations:
            if version in applied:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(INSERT_MIGRATION, version, name)
            log.info("kjobs.store.migrated", store=where, version=version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
