"""Operations figures (SPEC §11): the notifier's throughput and the retention sweep's time.

- ``notifier_throughput``: ``n`` job-end notifications already in a SQLite outbox (written with
  their jobs' final state, as the writer does), delivered by the real ``Notifier`` (httpx, 16
  POSTs in flight, claim and settle writes in the store) to a minimal keep-alive HTTP receiver
  on loopback in the same process; notifications per second from start to the last settle.
- ``sweep_time``: ``n`` FINISHED jobs (10 steps, one stored output each) that ended 60 days
  ago in a SQLite store; the seconds one ``RetentionSweep.sweep()`` takes to delete them all
  (batches of 1,000, each its own transaction).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Final

import anyio

from bench.common import noop_steps
from engine.clock import SystemClock, monotonic
from engine.config.settings import OpsSettings
from engine.core import operations as ops
from engine.core.jobs import Job, Segment
from engine.core.notifications import job_end
from engine.core.states import State
from engine.ops.notifier import Notifier
from engine.ops.retention import DAY_MS, RetentionSweep
from engine.ops.stats import OpsStats
from engine.store.ports import JobStore, JobWrite, OutputWrite
from engine.store.sqlite.jobs import SqliteJobStore

FILL_AT_ONCE: Final = 500  #: concurrent writes while filling (group commit batches them)
_OK: Final = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def _ended_job(index: int, when: int) -> tuple[Job, Job]:
    """A submitted job and the same job FINISHED at ``when``."""
    segment = Segment(f"seg-{index}", "bench_cube", "s", index, index + 1, "READY")
    job = ops.submit(f"job-{index:07d}", "bench", "bench_cube", "BUILD", segment,
                     noop_steps(10), "ADMIN", when - 1000).job  # fmt: skip
    done = job.evolve(state=State.SUCCEED, start_time=when - 900, end_time=when,
                      last_modified=when)  # fmt: skip
    return job, done


async def _fill(store: JobStore, n: int, when: int, *, outbox: bool, output: bool) -> None:
    async def one(index: int) -> None:
        job, done = _ended_job(index, when)
        stored = await store.save_job(JobWrite(job, None))
        outputs = [OutputWrite(job.steps[0].id, 1, "x" * 200)] if output else []
        await store.save_job(
            JobWrite(done, stored.version, outputs=outputs,
                     notification=job_end(stored, done) if outbox else None)
        )  # fmt: skip

    for start in range(0, n, FILL_AT_ONCE):
        async with anyio.create_task_group() as tg:
            for index in range(start, min(n, start + FILL_AT_ONCE)):
                tg.start_soon(one, index)


async def _receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer 200 to every POST of a keep-alive connection."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(_OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def notifier_throughput(workdir: Path, n: int = 2_000) -> dict[str, Any]:
    """Notifications per second from a SQLite outbox to a loopback receiver."""
    store = SqliteJobStore(workdir / "outbox.sqlite")
    await store.open()
    server = await asyncio.start_server(_receive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        clock = SystemClock()
        await _fill(store, n, clock.now_ms() - 1000, outbox=True, output=False)
        settings = OpsSettings(notifier_url=f"http://127.0.0.1:{port}/hook")
        stats = OpsStats()
        notifier = Notifier(store, clock, settings, stats)
        started, cpu = monotonic(), time.process_time()
        async with anyio.create_task_group() as tg:
            await tg.start(notifier.run)
            while stats.notifications_sent + stats.notification_failures < n:  # noqa: ASYNC110
                await anyio.sleep(0.005)
            wall, cpu = monotonic() - started, time.process_time() - cpu
            tg.cancel_scope.cancel()
    finally:
        server.close()
        await store.close()
    return {
        "notifications": n,
        "sent": stats.notifications_sent,
        "failed_attempts": stats.notification_failures,
        "wall_s": round(wall, 3),
        "per_s": n / wall,
        # CPU of this process (sender, store thread and receiver) per notification: what a
        # machine with a free core would reach is about 1 / cpu_ms_each * 1000 per second
        "cpu_ms_each": cpu / n * 1000,
        "per_cpu_s": n / cpu if cpu else None,
        "in_flight": 16,
    }


async def sweep_time(workdir: Path, n: int = 100_000) -> dict[str, Any]:
    """Seconds one sweep takes to delete ``n`` old FINISHED jobs and their outputs."""
    store = SqliteJobStore(workdir / "sweep.sqlite")
    await store.open()
    try:
        clock = SystemClock()
        await _fill(store, n, clock.now_ms() - 60 * DAY_MS, outbox=False, output=True)
        stats = OpsStats()
        sweep = RetentionSweep(store, clock, OpsSettings(retention_days=30), stats, lambda _: None)
        started, cpu = monotonic(), time.process_time()
        deleted = await sweep.sweep()
        wall, cpu = monotonic() - started, time.process_time() - cpu
        left = await store.count_by_state()
    finally:
        await store.close()
    return {"jobs": n, "deleted": deleted, "left": sum(left.values()), "wall_s": wall,
            "cpu_s": cpu, "batch": 1000}  # fmt: skip
