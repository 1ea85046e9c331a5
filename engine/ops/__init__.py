"""Operations around the job engine (SPEC §11): job-end notifications (an outbox and its HTTP
sender, plus the library's ``on_job_end`` hook), scheduled builds, and the retention sweep.

``OpsService`` is what the ``Engine`` owns: it wires the writer's job-end signal to the hooks,
the sender and the schedules, and starts the long-lived tasks in the engine's task group.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine.batch.writer import JobWriter
from engine.catalog import Catalog
from engine.clock import Clock
from engine.config.settings import OpsSettings
from engine.core.notifications import JobEnd
from engine.logging import get_logger
from engine.ops.notifier import Notifier
from engine.ops.retention import RetentionSweep
from engine.ops.schedules import ScheduleService, Submit
from engine.ops.stats import OpsStats
from engine.store.ports import JobStore

__all__ = [
    "JobEnd",
    "JobEndHook",
    "Notifier",
    "OpsService",
    "OpsStats",
    "RetentionSweep",
    "ScheduleService",
]

log = get_logger()

#: ``async def hook(end: JobEnd) -> None``: told of every job end, after its write is durable
JobEndHook = Callable[[JobEnd], Awaitable[None]]


class OpsService:
    """Notifications, hooks and the retention sweep of one engine."""

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        settings: OpsSettings,
        writer: JobWriter,
        forget: Callable[[str], None],
        *,
        catalog: Catalog,
        submit: Submit,
        seed: int = 0,
    ) -> None:
        self.settings = settings
        self.stats = OpsStats()
        self._hooks: list[JobEndHook] = []
        self._send: MemoryObjectSendStream[JobEnd] | None = None
        self._receive: MemoryObjectReceiveStream[JobEnd] | None = None
        self.notifier: Notifier | None = None
        if settings.notifier_url:
            self.notifier = Notifier(store, clock, settings, self.stats, seed=seed)
            writer.outbox = True
        self.retention = RetentionSweep(store, clock, settings, self.stats, forget)
        #: scheduled builds: create / list / pause / resume / delete
        self.schedules = ScheduleService(store, clock, catalog, self.stats, submit)
        self._catalog = catalog
        writer.on_job_end = self._job_ended

    def on_job_end(self, hook: JobEndHook) -> Callable[[], None]:
        """Call ``hook`` for every job end from now on (in its own task: it never delays a
        job; what it raises is logged and counted). Returns the function that unsubscribes."""
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook) if hook in self._hooks else None

    async def start(self, tg: TaskGroup) -> None:
        """Start the sender, the hooks, the sweep and the schedules in the engine's task group."""
        self._send, self._receive = anyio.create_memory_object_stream[JobEnd](math.inf)
        await tg.start(self._run_hooks, name="kjobs.ops.hooks")
        await self.schedules.declare(self._catalog.schedules)
        await tg.start(self.schedules.run, name="kjobs.ops.schedules")
        if self.notifier is not None:
            await tg.start(self.notifier.run, name="kjobs.ops.notifier")
        if self.retention.enabled:
            await tg.start(self.retention.run, name="kjobs.ops.retention")

    def _job_ended(self, end: JobEnd) -> None:
        self.schedules.job_ended()  # a schedule with overlap = queue may wait for this job
        if self.notifier is not None:
            self.notifier.wake()
        if self._hooks and self._send is not None:
            self._send.send_nowait(end)

    async def _run_hooks(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        assert self._receive is not None
        task_status.started()
        async with self._receive:
            async for end in self._receive:
                for hook in list(self._hooks):
                    try:
                        await hook(end)
                    except Exception as exc:
                        self.stats.hook_errors += 1
                        log.warning("kjobs.ops.hook_failed", job_id=end.job_id, error=repr(exc))
