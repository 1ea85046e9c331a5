"""The retention sweep (SPEC §11): FINISHED and DISCARDED jobs that ended more than
``kylin.job.retention-days`` ago are deleted with their outputs; segments stay.

The sweep deletes in batches of ``BATCH`` jobs, each its own short transaction, so other
writes (the running jobs' step transitions) interleave with it instead of waiting behind one
long write lock. It runs when the engine starts and then every ``kjobs.retention.sweep-interval``
seconds on the engine's clock (the virtual clock in simulations).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from engine.clock import Clock, monotonic
from engine.config.settings import OpsSettings
from engine.logging import get_logger
from engine.ops.stats import OpsStats
from engine.store.ports import JobStore

log = get_logger()

BATCH = 1000  #: jobs deleted per transaction
DAY_MS = 86_400_000


class RetentionSweep:
    """Deletes old ended jobs; ``run`` is the long-lived task, ``sweep`` one pass."""

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        settings: OpsSettings,
        stats: OpsStats,
        forget: Callable[[str], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._stats = stats
        self._forget = forget  #: drops a deleted job from the engine's caches

    @property
    def enabled(self) -> bool:
        """Whether jobs are ever swept (``retention-days`` 0 keeps them forever)."""
        return self._settings.retention_days > 0

    async def sweep(self) -> int:
        """One pass now; how many jobs it deleted."""
        if not self.enabled:
            return 0
        cutoff = self._clock.now_ms() - self._settings.retention_days * DAY_MS
        started = monotonic()
        total = 0
        while True:
            gone = await self._store.sweep_jobs(cutoff, BATCH)
            for job_id in gone:
                self._forget(job_id)
            total += len(gone)
            if len(gone) < BATCH:
                break
        self._stats.sweeps += 1
        self._stats.jobs_swept += total
        seconds = round(monotonic() - started, 3)
        report = log.info if total else log.debug
        report("kjobs.retention.swept", jobs=total, ended_before=cutoff, seconds=seconds)
        return total

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sweep now and then every sweep interval, until cancelled."""
        task_status.started()
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # a failing store must not end the engine: next time
                log.warning("kjobs.retention.failed", error=repr(exc))
            await self._clock.sleep(self._settings.sweep_interval_s)
