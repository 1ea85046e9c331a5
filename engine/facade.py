"""``Engine``: the library's one entry point (re-exported by ``engine``).

::

    async with Engine() as engine:                       # shipped config, SQLite store
        job = await engine.submit_build("kylin_sales_cube")
        job = await engine.wait_for(job.id, {State.SUCCEED, State.ERROR})

Every operation loads the job, asks the pure core for a decision, stores it with
compare-and-set, then acts. Two racing operations on one job: one wins, the other gets the
state error the core raises for the winner's state.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup

from engine.batch.cluster import NodeAgent, engine_node_id
from engine.batch.cubes import CubeSegments
from engine.batch.output import NO_OUTPUT, StepOutput
from engine.batch.scheduler import Scheduler
from engine.batch.writer import Decide, JobWriter
from engine.clock import Clock, SystemClock
from engine.collector import collector_threshold
from engine.config import Config, load_config
from engine.core import operations as ops
from engine.core.errors import JobNotFound
from engine.core.jobs import Job, Segment, StepSpec, step_sequence
from engine.core.states import STATUS_CODES, BuildType, SegmentStatus, State
from engine.events import Event, EventBus, JobChanged, StreamingChanged
from engine.logging import get_logger
from engine.metrics import EngineMetrics
from engine.ops import JobEndHook, OpsService
from engine.store import leases_of, resolve_store, streaming_store_beside
from engine.store.health import StoreHealth, health_of, watch_store
from engine.store.ports import JobFilter, JobStore, NodeInfo, StreamingStore
from engine.streaming.leasing import StreamingLeasing
from engine.streaming.service import StreamingChange, StreamingService

log = get_logger()


class Engine:
    """The embeddable kjobs engine: an async context manager."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        store: JobStore | str | None = None,
        clock: Clock | None = None,
        new_id: Callable[[], str] | None = None,
        streaming_store: StreamingStore | None = None,
        with_streaming: bool = True,
    ) -> None:
        self.config = config if config is not None else load_config()
        settings = self.config.engine
        self.settings = settings
        self.catalog = self.config.catalog
        self.clock: Clock = clock or SystemClock()
        self.store: JobStore = resolve_store(
            store, settings.store, settings.max_output_bytes, settings.pool_size
        )
        self.events = EventBus()
        self.instance = settings.node_id or f"{os.getpid()}@{socket.gethostname()}"
        self.node_id = settings.node_id or engine_node_id(self.instance)  #: owns its leases
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self.leases, verify = leases_of(self.store)
        self._writer = JobWriter(self.store, self.clock, self.events, verify)
        self._workroot = Path(settings.workdir or Path(tempfile.gettempdir()) / "kjobs-work")
        self.scheduler = Scheduler(
            self._writer, self.store, self.clock, settings, self.events, self.catalog.profile,
            self.instance, self._workroot, self.leases, node_id=self.node_id,
        )  # fmt: skip
        self._writer.handler = self.scheduler
        #: notifications, job-end hooks, retention (SPEC §11); ``ops.stats`` counts them
        self.ops = OpsService(
            self.store, self.clock, settings.ops, self._writer, self._forget,
            catalog=self.catalog, submit=self.submit_build, seed=settings.seed,
        )  # fmt: skip
        #: this engine as a node of a cluster: registry, leases, work from other nodes
        self.node = NodeAgent(self.scheduler, self.store, self.clock, settings.poll_seconds)
        self._streaming_store: StreamingStore | None = None
        #: Kylin 5 streaming jobs of the catalog's streaming models (None when turned off)
        self.streaming: StreamingService | None = None
        if with_streaming:
            self._streaming_store = streaming_store or streaming_store_beside(self.store)
            self.streaming = StreamingService(
                self._streaming_store, self.clock, settings.streaming,
                self.catalog.streaming_models, seed=settings.seed, time_scale=settings.time_scale,
                node_info=self.instance, version=settings.version, leasing=self._stream_leases(),
                on_change=self._streaming_changed, write_retry=self._writer.retry,
            )  # fmt: skip
        #: Prometheus metrics (SPEC §10); ``self.metrics.registry`` for embedding services
        self.metrics = self._new_metrics()
        self._writer.retry.on_retry = self.metrics.store_retries.inc
        #: whether the store accepts writes (``GET /health``); None: it cannot fail (memory)
        self.store_health: StoreHealth | None = health_of(self.store)
        #: segment planning, deletion and purge (one node at a time per cube on a shared store)
        self._segments = CubeSegments(
            self.store, self.leases, self.node_id, self.clock, self._new_id
        )
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self.ended: anyio.Event | None = None  #: set when the running engine's task group ends

    def _new_metrics(self) -> EngineMetrics:
        """Metrics fed by the job events, the writer's timings and the scheduler's slots."""
        metrics = EngineMetrics()
        self.events.add_job_hook(metrics.job_written)
        self._writer.on_write = metrics.store_write.observe
        limit = self.settings.max_concurrent_jobs
        scheduler = self.scheduler
        metrics.watch(
            lambda: (scheduler.running_jobs, limit),
            self.streaming,
            lambda: (scheduler.leases_lost, scheduler.jobs_rescued),
        )
        return metrics

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            stack.enter_context(collector_threshold(self.settings.gc_threshold))
            await self.store.open()
            stack.push_async_callback(self.store.close)
            if self._streaming_store is not None:
                await self._streaming_store.open()
                stack.push_async_callback(self._streaming_store.close)
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            stack.push_async_callback(self._stop)
            self.ended = anyio.Event()
            self._tg.start_soon(watch_store, self.store_health, self.ended, name="kjobs.watch")
            await self._tg.start(self.scheduler.run, name="kjobs.scheduler")
            self._segments.attach(self._tg)
            await self.node.start()  # SPEC §2.3 recovery: jobs left RUNNING, READY ones
            await self._tg.start(self.node.run, name="kjobs.cluster")
            await self.ops.start(self._tg)
            await self.refresh_metrics()
            if self.streaming is not None:
                await self.streaming.start(self._tg)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        log.info("kjobs.engine.started", instance=self.instance)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
        log.info("kjobs.engine.stopped", instance=self.instance)

    async def _stop(self) -> None:
        if self.streaming is not None:
            await self.streaming.shutdown()
        await self.scheduler.shutdown()
        await self.node.stop()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    def _stream_leases(self) -> StreamingLeasing | None:
        """The leases of streaming runs on a store other nodes may share (else None)."""
        if not self.leases.shared:
            return None
        lease_ms = self.scheduler.lease_ms
        return StreamingLeasing(self.leases, self.node_id, self.clock, lease_ms)

    # -- submission -----------------------------------------------------------------------

    async def submit_build(
        self,
        cube: str,
        build_type: str = BuildType.BUILD,
        start: int = 0,
        end: int = 0,
        *,
        submitter: str = "ADMIN",
        priority_offset: int = 0,
        job_id: str | None = None,
    ) -> Job:
        """Submit a BUILD, MERGE or REFRESH of ``cube`` over ``[start, end)`` (epoch ms).

        ``job_id``: the id to use (schedules derive it from the slot); taken already, the
        store's ``ConcurrentModification``."""
        cube_def = self.catalog.cube(cube)
        job_id = job_id or self._new_id()
        planning = self._segments.planning(cube_def.name, build_type, start, end)
        async with planning as segment:  # no other build is planned meanwhile
            workdir = str(self._workdir(job_id))
            params = self.catalog.params(
                cube_def.name, build_type, job_id=job_id, segment=segment, workdir=workdir
            )
            specs = self.catalog.expand(cube_def.name, build_type, job_id=job_id, segment=segment,
                                        workdir=workdir, params=params)  # fmt: skip
            decision = ops.submit(
                job_id,
                cube_def.project,
                cube_def.name,
                build_type,
                segment,
                specs,
                submitter,
                self.clock.now_ms(),
                priority_offset,
                params,
            )
            job = await self._writer.create(decision)
        log.info("kjobs.job.submitted", job_id=job.id, cube=cube, build_type=build_type)
        return job

    async def submit_job(
        self,
        steps: Collection[StepSpec],
        *,
        project: str = "default",
        name: str = "adhoc",
        build_type: str = BuildType.BUILD,
        submitter: str = "ADMIN",
        priority_offset: int = 0,
    ) -> Job:
        """Submit an explicit chain of steps (no cube, no segment bookkeeping)."""
        job_id = self._new_id()
        now = self.clock.now_ms()
        segment = Segment(self._new_id(), name, "adhoc", 0, 0, SegmentStatus.NEW)
        decision = ops.submit(
            job_id, project, name, build_type, segment, list(steps), submitter, now, priority_offset
        )
        return await self._writer.create(decision)

    def _workdir(self, job_id: str) -> Path:
        return self._workroot / job_id

    # -- reads ----------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job:
        """The job; ``JobNotFound`` when there is none."""
        if self.leases.shared:  # another node may have written it since
            return await self.store.get_job(job_id)
        return self._writer.cached(job_id) or await self.store.get_job(job_id)

    async def cluster_nodes(self) -> list[NodeInfo]:
        """The live nodes on this store (this one included), by id (SPEC §9)."""
        return await self.node.live_nodes()

    async def segments(self, cube: str) -> list[Segment]:
        """The cube's NEW and READY segments, by range start."""
        return await self.store.segments(self.catalog.cube(cube).name)

    async def delete_segment(self, cube: str, name: str) -> list[Segment]:
        """Delete the first or last segment of ``cube`` unless a job uses it; what is left."""
        return await self._segments.delete(self.catalog.cube(cube).name, name)

    async def purge(self, cube: str) -> list[Segment]:
        """Delete every segment of ``cube`` unless one of its jobs is unfinished."""
        return await self._segments.purge(self.catalog.cube(cube).name)

    async def list(self, query: JobFilter | None = None) -> list[Job]:
        """Jobs matching ``query``, newest change first."""
        return await self.store.list_jobs(query or JobFilter())

    async def overview(self) -> dict[str, int]:
        """Kylin's ``/jobs/overview``: the number of jobs per REST status (NEW is always 0)."""
        counts = await self.store.count_by_state()
        result: dict[str, int] = {status: 0 for status in STATUS_CODES}
        for state, n in counts.items():
            result[state.rest_name] += n
        return result

    async def step_output(
        self, job_id: str, step_id: str, attempt: int | None = None
    ) -> StepOutput:
        """The step's latest output (or one attempt's); ``null`` before it first runs."""
        job = await self.get(job_id)
        step = job.step(step_sequence(job, step_id))
        if attempt is None:
            live = self.scheduler.live_output(job.id, step.sequence)
            if live is not None:
                return StepOutput(job.id, step.id, live.text())
            if step.attempts == 0:
                return StepOutput(job.id, step.id, None)
            if step.state is State.READY:
                return StepOutput(job.id, step.id, NO_OUTPUT)
            attempt = step.attempts
        text = await self.store.read_output(step.id, attempt)
        return StepOutput(job.id, step.id, text if text is not None else "")

    async def wait_for(
        self,
        job_id: str,
        states: Collection[State],
        timeout: float | None = None,  # noqa: ASYNC109 - a convenience, as asyncio.wait_for
    ) -> Job:
        """Wait until the job is in one of ``states``; ``TimeoutError`` after ``timeout`` s."""
        wanted = frozenset(states)
        with anyio.fail_after(timeout):
            async with self.events.subscribe(buffer=0) as events:
                job = await self.get(job_id)
                if job.state in wanted:
                    return job
                async for event in events:
                    if (
                        isinstance(event, JobChanged)
                        and event.job_id == job_id
                        and (event.state in wanted)
                    ):
                        return await self.get(job_id)
        raise JobNotFound(job_id)  # pragma: no cover - the stream never ends on its own

    def on_job_end(self, hook: JobEndHook) -> Callable[[], None]:
        """Call ``async hook(end)`` for every job that reaches FINISHED, ERROR or DISCARDED
        (SPEC §11, the payload as ``end.payload()``); returns the function that unsubscribes."""
        return self.ops.on_job_end(hook)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Event]]:
        """An async iterator of every event from now on, while the context is open."""
        async with self.events.subscribe() as events:
            yield events

    # -- operations (SPEC §2.1) -----------------------------------------------------------

    async def resume(self, job_id: str) -> Job:
        """ERROR/STOPPED job: its first ERROR/STOPPED step and the job -> READY."""
        return await self._operate(job_id, lambda j: ops.resume(j, self.clock.now_ms()))

    async def discard(self, job_id: str) -> Job:
        """Discard (REST ``cancel``): non-final steps -> DISCARDED, a running step killed."""
        return await self._operate(job_id, lambda j: ops.discard(j, self.clock.now_ms()))

    async def pause(self, job_id: str) -> Job:
        """Pause: the current step -> STOPPED (interrupted if running); job -> STOPPED."""
        return await self._operate(job_id, lambda j: ops.pause(j, self.clock.now_ms()))

    async def restart(self, job_id: str) -> Job:
        """Kylin 5 restart: every step READY; the job runs again from step 00."""
        return await self._operate(job_id, lambda j: ops.restart(j, self.clock.now_ms()))

    async def rollback(self, job_id: str, step_id: str) -> Job:
        """Steps from ``step_id`` on -> READY with info and output cleared."""
        job = await self.get(job_id)
        sequence = step_sequence(job, step_id)
        return await self._operate(job_id, lambda j: ops.rollback(j, sequence, self.clock.now_ms()))

    async def drop(self, job_id: str) -> Job:
        """Delete a finished or discarded job; returns it as it was."""
        dropped, _ = await self._writer.apply(await self.get(job_id), ops.drop)
        self.metrics.job_dropped(dropped)
        return dropped

    def _forget(self, job_id: str) -> None:
        """The job was deleted (dropped or swept): out of the caches and the queue."""
        self._writer.forget(job_id)
        self.scheduler.forget(job_id)

    async def _operate(self, job_id: str, decide: Decide) -> Job:
        job = await self.get(job_id)
        stored, _ = await self._writer.apply(job, decide)
        log.info("kjobs.job.changed", job_id=job_id, state=stored.state.value)
        return stored

    async def refresh_metrics(self) -> None:
        """Re-count the stored jobs per status for ``kjobs_jobs`` and the live nodes for
        ``kjobs_nodes`` (the server does, per scrape)."""
        self.metrics.set_counts(await self.overview())
        self.metrics.nodes.set(len(await self.cluster_nodes()))

    def now_ms(self) -> int:
        """The engine clock's time."""
        return self.clock.now_ms()

    def _streaming_changed(self, change: StreamingChange) -> None:
        self.events.publish(
            StreamingChanged(
                change.job_id, change.time, change.new, change.old, change.cause, change.mvcc
            )
        )
