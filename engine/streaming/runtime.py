"""The runtime under ``StreamingService``: the job cache, per-job writes, and the runs.

Every write of a job goes through ``store``, under that job's lock: take the cached job (only
this process writes the store), decide, store with compare-and-set on ``mvcc`` inside a
shielded scope (a lost race re-reads and decides again: ``engine.store.commit``), then perform
the effects. So a user action and a loop's event never interleave on one job, and a
FORCE_STOP never cancels a store call half way.

A *run* is one task per job: the launch step, then the build or merge loop, then (after a
failure, when ``kylin.streaming.job-retry-enabled``) a wait and a new start. Cancelling its
scope is FORCE_STOP; a graceful stop sets ``stop_requested`` and interrupts only a wait.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from engine.clock import Clock
from engine.config.settings import StreamingSettings
from engine.core import streaming as core
from engine.core.errors import JobNotFound, KjobsError, LeaseLost
from engine.core.states import StreamingAction, StreamingJobType, StreamingStatus
from engine.core.streaming import BatchStats, StreamingDecision, StreamingJob, StreamingSegment
from engine.core.streaming_params import may_retry, retry_delay
from engine.logging import get_logger
from engine.store.commit import JobLocks, WriteRetry, retry_lost_races, shielded
from engine.store.ports import Lease, StreamingStore, StreamingWrite
from engine.streaming.leasing import StreamingLeasing
from engine.streaming.loops import Decide, RunContext, build_loop, merge_loop
from engine.streaming.runs import Run, RunHandle
from engine.streaming.source import StreamingModelSpec

log = get_logger()


@dataclass(frozen=True, slots=True)
class StreamingChange:
    """One status change of a streaming job, for the engine's event stream."""

    job_id: str
    old: StreamingStatus
    new: StreamingStatus
    time: int
    cause: str  #: the action (START, ...) or event (LAUNCHED, ...) that made it
    mvcc: int  #: the job's mvcc once the whole decision is stored


class StreamingRuntime:
    """Cached jobs, their locked writes, and the task of each running job."""

    def __init__(
        self,
        store: StreamingStore,
        clock: Clock,
        settings: StreamingSettings,
        models: Mapping[str, StreamingModelSpec],
        *,
        seed: int,
        time_scale: float,
        node_info: str,
        on_change: Callable[[StreamingChange], None] | None,
        write_retry: WriteRetry | None = None,
        leasing: StreamingLeasing | None = None,
    ) -> None:
        self.store = store
        #: on a shared store: the runs' leases (None: this node is alone with its store)
        self.leasing = leasing
        #: a run's own writes ride out a store that refuses them (``engine.store.commit``)
        self.write_retry = write_retry or WriteRetry()
        self.clock = clock
        self.settings = settings
        self.models = models
        #: the store's jobs (alone with the store, only this process writes them; on a shared
        #: store the keeper reads them back)
        self.jobs: dict[str, StreamingJob] = {}
        self.counts: Counter[str] = Counter()
        self.runs: dict[str, Run] = {}
        self.task_group: TaskGroup | None = None
        self.app_epoch = 0  #: the simulated YARN cluster's start, in application ids
        self._seed = seed
        self._time_scale = time_scale
        self._node_info = node_info
        self._on_change = on_change
        self._locks = JobLocks()
        self._rngs: dict[str, random.Random] = {}
        self._launches: Counter[str] = Counter()
        self._context = RunContext(clock, settings, time_scale, store, seed)

    # -- writes -------------------------------------------------------------------------------

    async def commit(
        self,
        job_id: str,
        decide: Decide,
        *,
        run: Run | None = None,
        perform: bool = False,
        stats: Sequence[BatchStats] = (),
        add_segments: Sequence[StreamingSegment] = (),
        remove_segments: Sequence[str] = (),
    ) -> StreamingDecision | None:
        """Decide on the job and store the decision (``engine.store.commit``'s policy).

        Under the job's lock; a lost race re-reads the job and decides again. ``run``: only
        while that run is still the job's (else None, nothing decided). ``perform``: carry out
        the decision's effects before the lock is released.
        """

        async def attempt(job: StreamingJob) -> StreamingDecision:
            decision = decide(job, self.clock.now_ms())
            if run is None and decision.changed and self.leasing is not None:
                # a user action that changes a job running elsewhere fences that run first;
                # one refused (it raised) or without effect leaves the run alone
                cancels = any(isinstance(e, core.CancelLoop) for e in decision.effects)
                await self.leasing.fence(job, self.runs, cancels=cancels)
            lease = None if run is None else run.lease
            extras = (stats, add_segments, remove_segments, lease)
            await self._commit(
                decision,
                StreamingWrite(decision.job, decision.expected_mvcc, decision.records, *extras),
            )
            return decision

        async with self._locks.hold(job_id):
            if run is not None and self.runs.get(job_id) is not run:
                return None
            try:
                decision = await retry_lost_races(job_id, self.jobs[job_id], attempt, self._reread)
                if perform:
                    self.perform(decision.effects)
                return decision
            finally:
                if self.leasing is not None:
                    await self.leasing.unfence(job_id)

    async def _reread(self, job_id: str) -> StreamingJob:
        job = self.jobs[job_id] = await self.store.get_job(job_id)
        return job

    async def _commit(self, decision: StreamingDecision, write: StreamingWrite) -> None:
        if not decision.changed:
            return  # a no-op writes nothing
        job = decision.job
        self.jobs[job.uuid] = await shielded(lambda: self.store.save(write))
        if self._on_change is not None:
            for old, new in decision.transitions:
                self._notify(
                    StreamingChange(job.uuid, old, new, job.last_modified, decision.cause, job.mvcc)
                )

    def _notify(self, change: StreamingChange) -> None:
        assert self._on_change is not None
        try:
            self._on_change(change)
        except Exception as exc:  # a listener's bug must not break the loops
            log.warning("kjobs.streaming.listener_failed", error=repr(exc))

    async def event(
        self,
        run: Run,
        decide: Decide,
        *,
        stats: Sequence[BatchStats] = (),
        add_segments: Sequence[StreamingSegment] = (),
        remove_segments: Sequence[str] = (),
    ) -> bool:
        """Decide and store an event of ``run``'s job; False if the run was replaced.

        A write the store refuses is tried again until it is accepted (``WriteRetry``): a
        full disk pauses the loop, it does not fail the job."""
        decision = await self.write_retry.until_accepted(
            "streaming",
            lambda: self.commit(
                run.job_id,
                decide,
                run=run,
                stats=stats,
                add_segments=add_segments,
                remove_segments=remove_segments,
            ),
            job_id=run.job_id,
        )
        return decision is not None

    def perform(self, effects: Sequence[core.StreamingEffect]) -> None:
        """Carry out a stored decision's effects (on a shared store, a loop launched for a job
        that another node may hold takes its lease over: ``leasing``)."""
        for effect in effects:
            remote = self.leasing is not None and effect.job_id not in self.runs
            if isinstance(effect, core.CancelLoop):
                self.cancel(effect.job_id)  # a run elsewhere was fenced by the decision
            elif isinstance(effect, core.LaunchLoop):
                self.spawn(effect.job_id, take_over=remote)
            else:
                self._stop_gracefully(effect.job_id)

    def lease_lost(self, run: Run, lease: Lease) -> None:
        """``run``'s lease is gone (another node took the job): end it, without a write."""
        if self.runs.get(run.job_id) is not run or run.lease is not lease:
            return
        run.lost = True
        log.warning("kjobs.streaming.lease_lost", job_id=run.job_id, token=lease.token)
        self.cancel(run.job_id)

    def _stop_gracefully(self, job_id: str) -> None:
        run = self.runs.get(job_id)
        if run is None:  # nothing runs for it here: the stop completes now
            self.spawn(job_id, stop_only=True, take_over=self.leasing is not None)
            return
        run.stop_requested = True
        if run.waiting and run.wait_scope is not None:
            run.wait_scope.cancel()

    def cancel(self, job_id: str) -> None:
        """Cancel what runs for the job (FORCE_STOP): a batch in progress is lost."""
        run = self.runs.pop(job_id, None)
        if run is not None:
            run.scope.cancel()

    def cancel_all(self) -> None:
        """Cancel every run (shutdown: the jobs keep their status for recovery)."""
        for job_id in list(self.runs):
            self.cancel(job_id)

    def spawn(
        self,
        job_id: str,
        *,
        retry_first: bool = False,
        stop_only: bool = False,
        take_over: bool = False,
    ) -> None:
        """Start a new run of the job (replacing any) in the service's task group;
        ``take_over``: revoke another node's lease on the job first."""
        self.cancel(job_id)
        if self.task_group is None:
            raise RuntimeError("the streaming service is not started")
        run = self.runs[job_id] = Run(job_id)
        run.lease = self.leasing.handed(job_id) if self.leasing is not None else None
        self.task_group.start_soon(
            self._run_job, run, retry_first, stop_only, take_over, name=f"kjobs.streaming.{job_id}"
        )

    # -- runs ---------------------------------------------------------------------------------

    async def _run_job(self, run: Run, retry_first: bool, stop_only: bool, take_over: bool) -> None:
        with run.scope:
            try:
                leasing = self.leasing
                if leasing and not run.lease and not await leasing.take(run, take_over=take_over):
                    return  # another node runs it
                if stop_only:
                    await self.event(run, core.loop_stopped)
                    return
                go = await self._retry(run) if retry_first else True
                while go and await self._attempt(run):
                    go = await self._retry(run)
            except LeaseLost:  # another node took the job: this run writes nothing more
                run.lost = True
                log.warning("kjobs.streaming.lease_lost", job_id=run.job_id)
            except Exception as exc:  # a write failed while handling a failure: give up
                log.error("kjobs.streaming.run_broken", job_id=run.job_id, error=repr(exc))
            finally:
                if self.runs.get(run.job_id) is run:
                    del self.runs[run.job_id]
                if self.leasing is not None:
                    await self.leasing.let_go(run)

    async def _attempt(self, run: Run) -> bool:
        """Launch and run the loop once; True when the loop failed (a retry may follow)."""
        try:
            if not await self._launch(run):
                return False
            job = self.jobs[run.job_id]
            loop = build_loop if job.job_type is StreamingJobType.STREAMING_BUILD else merge_loop
            # a graceful stop that interrupts a wait between batches cancels this scope: the
            # loop would return at once anyway (see ``loop_wait``)
            with anyio.CancelScope() as scope:
                run.wait_scope = scope
                try:
                    await loop(self._context, RunHandle(self, run), job, self._spec(job))
                finally:
                    run.wait_scope = None
            await self.event(run, core.loop_stopped)
            return False
        except LeaseLost:
            raise  # not a failure of the loop: the job is another node's now
        except Exception as exc:
            self.counts["loop_failures"] += 1
            log.warning("kjobs.streaming.loop_failed", job_id=run.job_id, error=repr(exc))
            await self.event(run, core.run_failed)
            return True  # a retry may follow (``_retry`` asks ``may_retry``)

    async def _launch(self, run: Run) -> bool:
        """The launch step: RUNNING (True), LAUNCHING_ERROR, or STOPPED when stopped meanwhile."""
        spec = self._spec(self.jobs[run.job_id])
        if await self.wait(run, spec.launch_s):
            await self.event(run, core.loop_stopped)
            return False
        self._launches[run.job_id] += 1
        fails = self._launches[run.job_id] <= spec.fail_first_launches
        app_id = f"application_{self.app_epoch}_{sum(self._launches.values()):04d}"
        node = self._node_info or None

        def decide(job: StreamingJob, now: int) -> StreamingDecision:
            return core.launch_ended(job, now, failed=fails, node_info=node, yarn_app_id=app_id)

        await self.event(run, decide)
        status = self.jobs[run.job_id].status
        if status is StreamingStatus.LAUNCHING_ERROR:
            self.counts["launch_failures"] += 1
            log.info("kjobs.streaming.launch_failed", job_id=run.job_id)
        elif status is StreamingStatus.RUNNING:
            self.counts["launches"] += 1
            log.info("kjobs.streaming.launched", job_id=run.job_id, yarn_app_id=app_id)
        return status is StreamingStatus.RUNNING and self.runs.get(run.job_id) is run

    async def _retry(self, run: Run) -> bool:
        """Wait the retry delay, then START the ERROR job again; False when no retry applies."""
        job = self.jobs[run.job_id]
        if not may_retry(job, self.settings):
            return False
        delay = retry_delay(run.retries, self.settings)
        run.retries += 1
        log.info("kjobs.streaming.retry_scheduled", job_id=run.job_id, seconds=delay)
        await self.clock.sleep(delay / self._time_scale)
        spec = self.models.get(job.model_id)
        broken = spec is None or spec.broken

        def decide(job: StreamingJob, now: int) -> StreamingDecision:
            return core.apply_action(job, StreamingAction.START, now, model_broken=broken)

        try:
            started = await self.event(run, decide)
        except LeaseLost:
            raise
        except KjobsError as exc:
            log.warning("kjobs.streaming.retry_refused", job_id=run.job_id, error=str(exc))
            return False
        self.counts["retries"] += 1
        run.stop_requested = False
        return started

    async def wait(self, run: Run, simulated_s: float) -> bool:
        """Wait ``simulated_s`` unless a graceful stop comes first; True when one was asked."""
        if run.stop_requested:
            return True
        with anyio.CancelScope() as scope:
            run.wait_scope = scope
            try:
                await self._sleep_waiting(run, simulated_s)
            finally:
                run.wait_scope = None
        return run.stop_requested

    async def loop_wait(self, run: Run, simulated_s: float) -> bool:
        """``wait`` inside a loop: a graceful stop meanwhile cancels the attempt's scope, which
        ends the loop as a True from ``wait`` would (the loop returns at once on it)."""
        if run.stop_requested:
            return True
        await self._sleep_waiting(run, simulated_s)
        return run.stop_requested

    async def _sleep_waiting(self, run: Run, simulated_s: float) -> None:
        run.waiting = True
        try:
            await self.clock.sleep(max(0.0, simulated_s) / self._time_scale)
        finally:
            run.waiting = False

    def _spec(self, job: StreamingJob) -> StreamingModelSpec:
        spec = self.models.get(job.model_id)
        if spec is None:
            raise JobNotFound(job.uuid)
        return spec

    def rng(self, job_id: str) -> random.Random:
        """The job's seeded random source (ids, jitter): the same seed, the same run.

        The service's start time is part of the seed: a restarted engine must not draw the
        segment ids its previous life already stored (simulations start at a fixed time).
        """
        rng = self._rngs.get(job_id)
        if rng is None:
            seed = f"{self._seed}:{job_id}:{self.app_epoch}"
            rng = self._rngs[job_id] = random.Random(seed)
        return rng
