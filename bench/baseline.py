"""The machine's limit for durable per-step state: a minimal aiosqlite group-commit loop.

The same idea as ``baseline-group`` of ``../shared/bench-peers``, written here so that it runs
in the same process and run as kjobs' own figures: N jobs of S sequential steps, C jobs at once;
per step a RUNNING row and a SUCCEED row are written, and neither the step nor the next step
starts before its row is committed. One writer task takes everything queued and commits it as
ONE transaction (group commit). There is no engine at all: no decisions, no JSON, no job
records, just the rows and the commits, so this is what kjobs' durable throughput is compared
with (``ratio_to_baseline``). The durability is kjobs' default: WAL with ``synchronous=NORMAL``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

import aiosqlite

from engine.clock import monotonic

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS transitions (
    id    INTEGER PRIMARY KEY,
    job   INTEGER NOT NULL,
    step  INTEGER NOT NULL,
    state TEXT    NOT NULL,
    ts    REAL    NOT NULL
)"""
INSERT: Final = "INSERT INTO transitions (job, step, state, ts) VALUES (?, ?, ?, ?)"

_Row = tuple[int, int, str, float]


class GroupCommitWriter:
    """One writer task; every batch of queued rows is one transaction."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._queue: asyncio.Queue[tuple[_Row, asyncio.Future[None]] | None] = asyncio.Queue()
        self.commits = 0
        self._task = asyncio.create_task(self._run())

    async def record(self, job: int, step: int, state: str) -> None:
        """Queue the row; return once it is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(((job, step, state, monotonic()), future))
        await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            await self._db.executemany(INSERT, [row for row, _ in batch])
            await self._db.commit()
            self.commits += 1
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            if stop:
                return

    async def close(self) -> None:
        """Commit what is queued and stop."""
        self._queue.put_nowait(None)
        await self._task


async def group_commit_loop(
    path: Path, jobs: int = 2000, steps: int = 10, concurrency: int = 100, sync: str = "NORMAL"
) -> dict[str, Any]:
    """Run the loop on a fresh SQLite file at ``path``: steps per second and commits."""
    db = await aiosqlite.connect(path)
    try:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(f"PRAGMA synchronous={sync}")
        await db.execute(SCHEMA)
        await db.commit()
        writer = GroupCommitWriter(db)
        gate = asyncio.Semaphore(concurrency)

        async def run_job(job: int) -> None:
            async with gate:
                for step in range(steps):
                    await writer.record(job, step, "RUNNING")
                    await asyncio.sleep(0)  # the step: a zero-duration noop that yields once
                    await writer.record(job, step, "SUCCEED")

        started = monotonic()
        await asyncio.gather(*(run_job(j) for j in range(jobs)))
        wall = monotonic() - started
        await writer.close()
        async with db.execute("SELECT count(*) FROM transitions WHERE state = 'SUCCEED'") as cur:
            row = await cur.fetchone()
        done = int(row[0]) if row else 0
    finally:
        await db.close()
    return {
        "steps_per_s": jobs * steps / wall,
        "wall_s": wall,
        "jobs": jobs,
        "steps": steps,
        "concurrency": concurrency,
        "succeeded_rows": done,
        "commits": writer.commits,
        "durability": f"WAL synchronous={sync}",
    }
