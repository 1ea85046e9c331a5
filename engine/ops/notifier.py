"""The sender of job-end notifications: outbox -> HTTP POST, at least once (SPEC §11).

The writer puts a notification into the outbox in the transaction that ends the job, so the job
never waits for the receiver. This task claims due entries (a claim pushes an entry's next
attempt to the end of a lease: a second engine on the store leaves it alone, and an engine that
dies mid-POST hands it back when the lease runs out), POSTs each one with a timeout, and then
deletes it (2xx), schedules its retry (backoff doubling from ``notifier-retry-interval``, capped
at 60 s, with jitter), or gives it up after ``notifier-max-retries`` retries. Entries left by an
earlier run of the engine (waiting for a retry, or claimed by an engine that died) are due at
once when it starts again: claims look a whole backoff cap ahead until they bring nothing new
(an entry this sender is still POSTing may come back in such a claim: it is not sent twice).
"""

from __future__ import annotations

import math
import random

import anyio
import httpx
from anyio.abc import TaskStatus

from engine.clock import Clock
from engine.config.settings import OpsSettings
from engine.core.notifications import MAX_BACKOFF_MS, retry_delay_ms
from engine.logging import get_logger
from engine.ops.stats import OpsStats
from engine.store.ports import JobStore, OutboxEntry

log = get_logger()

CONCURRENCY = 16  #: POSTs in flight at once
LEASE_SLACK_MS = 5_000  #: a claim lasts one timeout plus this
POLL_S = 30.0  #: look for entries other engines' expired leases handed back this often
STORE_PAUSE_S = 1.0  #: wait after the store failed before trying again


class Notifier:
    """Delivers the outbox to ``settings.notifier_url``; ``run`` is the long-lived task."""

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        settings: OpsSettings,
        stats: OpsStats,
        *,
        seed: int = 0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._stats = stats
        self._rng = random.Random(seed)  # jitter only; seeded so that runs repeat
        self._transport = transport
        self._wake = anyio.Event()
        self._next_retry = math.inf  #: epoch ms of the earliest retry this sender set
        self._free = CONCURRENCY
        self._inflight: set[str] = set()  #: event ids being POSTed now
        lease = settings.notifier_timeout_s * 1000 + LEASE_SLACK_MS
        self._lease_ms = round(lease)

    def wake(self) -> None:
        """Something new is in the outbox (or a POST ended): look again."""
        self._wake.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Claim and deliver until cancelled."""
        timeout = httpx.Timeout(self._settings.notifier_timeout_s)
        async with (
            httpx.AsyncClient(timeout=timeout, transport=self._transport) as client,
            anyio.create_task_group() as tg,
        ):
            task_status.started()
            ahead = MAX_BACKOFF_MS  # at start: what an earlier run left waits no longer
            while True:
                self._wake = anyio.Event()
                free = self._free
                try:
                    claimed = await self._claim(free, ahead)
                except Exception as exc:  # the store is closing or failing: try later
                    log.warning("kjobs.notifier.store_failed", error=repr(exc))
                    await self._clock.sleep(STORE_PAUSE_S)
                    continue
                fresh = [e for e in claimed if e.event_id not in self._inflight]
                if ahead and free and (len(claimed) < free or not fresh):
                    ahead = 0  # what the earlier run left is taken
                for entry in fresh:
                    self._free -= 1
                    self._inflight.add(entry.event_id)
                    tg.start_soon(self._deliver, client, entry, name="kjobs.notifier.post")
                if fresh and len(claimed) == free:
                    continue  # took as many as it could: there may be more due
                await self._idle()

    async def _claim(self, free: int, ahead: int) -> list[OutboxEntry]:
        if not free:
            return []
        now = self._clock.now_ms()
        if self._next_retry <= now:
            self._next_retry = math.inf
        return await self._store.claim_notifications(now + ahead, now + self._lease_ms, free)

    async def _idle(self) -> None:
        """Wait for a wake-up, the earliest retry, or the poll period."""
        delay = min(POLL_S, max(0.0, (self._next_retry - self._clock.now_ms()) / 1000))
        async with anyio.create_task_group() as tg:

            async def woken() -> None:
                await self._wake.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(woken)
            await self._clock.sleep(delay)
            tg.cancel_scope.cancel()

    async def _deliver(self, client: httpx.AsyncClient, entry: OutboxEntry) -> None:
        attempt = entry.attempts + 1
        try:
            error = await self._post(client, entry)
            await self._settle(entry, attempt, error)
        except Exception as exc:  # the store failed: the lease hands the entry back later
            log.warning("kjobs.notifier.settle_failed", event_id=entry.event_id, error=repr(exc))
        finally:
            self._free += 1
            self._inflight.discard(entry.event_id)
            self.wake()

    async def _post(self, client: httpx.AsyncClient, entry: OutboxEntry) -> str | None:
        """One attempt; the error text, or None when the receiver accepted it."""
        try:
            response = await client.post(
                self._settings.notifier_url,
                content=entry.payload,
                headers={"Content-Type": "application/json", "X-Kjobs-Event-Id": entry.event_id},
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    async def _settle(self, entry: OutboxEntry, attempt: int, error: str | None) -> None:
        event, job = entry.event_id, entry.job_id
        if error is None:
            await self._store.settle_notification(entry.event_id, attempt, None, None)
            self._stats.notifications_sent += 1
            log.info("kjobs.notifier.sent", event_id=event, job_id=job, attempt=attempt)
            return
        retry = attempt  # the retry that comes next is number `attempt` (1-based)
        if retry > self._settings.notifier_max_retries:
            await self._store.settle_notification(entry.event_id, attempt, None, error)
            self._stats.notifications_given_up += 1
            log.error("kjobs.notifier.gave_up", event_id=event, job_id=job, attempts=attempt,
                      error=error)  # fmt: skip
            return
        delay = retry_delay_ms(retry, self._settings.notifier_retry_interval_ms, self._rng)
        when = self._clock.now_ms() + delay
        await self._store.settle_notification(entry.event_id, attempt, when, error)
        self._next_retry = min(self._next_retry, when)
        self._stats.notification_failures += 1
        log.warning("kjobs.notifier.failed", event_id=event, job_id=job, attempt=attempt,
                    retry_in_ms=delay, error=error)  # fmt: skip
