"""The streaming service: Kylin 5 streaming jobs as async build and merge loops (SPEC §5).

Every model has two jobs, ``{model_id}_build`` and ``{model_id}_merge``. A user action takes
the job, asks ``core.streaming`` for a decision, stores it with compare-and-set on ``mvcc``
and performs the effects (launch a run, cancel it, ask it to stop gracefully); the runs live in
``runtime``, the loop bodies in ``loops``, listing in ``query``.

::

    service = StreamingService(store, SystemClock(), settings, catalog.streaming_models)
    async with anyio.create_task_group() as tg:
        await service.start(tg)                       # creates missing jobs, recovers
        await service.apply("START", ["m1_build"], project="p1")
        ...
        await service.shutdown()                      # jobs keep their status

Every wait is on the ``Clock``, divided by ``time_scale``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio.abc import TaskGroup, TaskStatus

from engine.clock import Clock
from engine.config.settings import StreamingSettings
from engine.core import streaming as core
from engine.core.errors import InvalidRequest, InvalidStreamingParameter, JobNotFound
from engine.core.states import StreamingAction, StreamingJobType
from engine.core.streaming import (
    BatchStats,
    StreamingDecision,
    StreamingJob,
    StreamingRecord,
    StreamingSegment,
)
from engine.core.streaming_params import default_params, effective_params, may_retry
from engine.logging import get_logger
from engine.store.commit import WriteRetry
from engine.store.ports import StreamingStore, StreamingWrite
from engine.streaming.leasing import StreamingLeasing
from engine.streaming.query import (
    ModelView,
    StreamingJobPage,
    StreamingJobQuery,
    listed_job,
    partition_desc,
    query_jobs,
)
from engine.streaming.runtime import StreamingChange, StreamingRuntime
from engine.streaming.source import StreamingModelSpec, spec_from_catalog

if TYPE_CHECKING:
    from engine.catalog import StreamingModel

__all__ = ["StreamingChange", "StreamingCounters", "StreamingModelSpec", "StreamingService"]

log = get_logger()

MAX_STATS_MINUTES: Final = 7 * 24 * 60


@dataclass(frozen=True, slots=True)
class StreamingCounters:
    """What the loops did so far (for simulation summaries)."""

    batches: int = 0  #: micro-batches written, empty ones included
    empty_batches: int = 0
    segments: int = 0  #: segments made by micro-batches
    merges: int = 0
    merged_segments: int = 0  #: segments replaced by merges
    launches: int = 0
    launch_failures: int = 0
    loop_failures: int = 0
    retries: int = 0


class StreamingService:
    """Streaming jobs of the given models: actions, queries, and the loops that run them."""

    def __init__(
        self,
        store: StreamingStore,
        clock: Clock,
        settings: StreamingSettings,
        models: Iterable[StreamingModelSpec | StreamingModel],
        *,
        seed: int = 0,
        time_scale: float = 1.0,
        node_info: str = "",
        version: str = "4.0.0.0",
        on_change: Callable[[StreamingChange], None] | None = None,
        write_retry: WriteRetry | None = None,
        leasing: StreamingLeasing | None = None,
    ) -> None:
        """``models``: specs or catalog ``StreamingModel``s; ``on_change`` hears every status
        change; ``node_info`` is shown by running jobs; ``version`` in listed jobs;
        ``write_retry``: how the runs ride out refused writes (the engine's, to count them);
        ``leasing``: on a store other nodes share, the runs' leases (``leasing.py``)."""
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive: {time_scale}")
        specs = [m if isinstance(m, StreamingModelSpec) else spec_from_catalog(m) for m in models]
        self._models: dict[str, StreamingModelSpec] = {m.model_id: m for m in specs}
        self._store = store
        self._clock = clock
        self._settings = settings
        self._version = version
        self._rt = StreamingRuntime(
            store,
            clock,
            settings,
            self._models,
            seed=seed,
            time_scale=time_scale,
            node_info=node_info,
            on_change=on_change,
            write_retry=write_retry,
            leasing=leasing,
        )
        self._closing = anyio.Event()
        self._closed = anyio.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, task_group: TaskGroup) -> None:
        """Load the jobs, create missing ones, start the runs' supervisor, then recover."""
        self._rt.jobs = {job.uuid: job for job in await self._store.list_jobs()}
        self._rt.app_epoch = self._clock.now_ms()
        await self.ensure_jobs()
        await task_group.start(self._supervise, name="kjobs.streaming")
        await self.recover()

    async def _supervise(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._rt.task_group = tg
                if self._rt.leasing is not None:
                    tg.start_soon(self._rt.leasing.keep, self._rt, self._recover_one)
                task_status.started()
                await self._closing.wait()
                tg.cancel_scope.cancel()
        finally:
            self._rt.task_group = None
            self._closed.set()

    async def shutdown(self) -> None:
        """Cancel every run (jobs keep their status: recovery relaunches them) and stop."""
        self._rt.cancel_all()
        self._closing.set()
        if self._rt.task_group is not None:
            await self._closed.wait()

    async def ensure_jobs(self) -> list[StreamingJob]:
        """Create each model's build and merge job (STOPPED) where missing; return the new."""
        created: list[StreamingJob] = []
        now = self._clock.now_ms()
        for spec in self._models.values():
            for job_type in StreamingJobType:
                if core.streaming_job_id(spec.model_id, job_type) in self._rt.jobs:
                    continue
                job = core.new_job(
                    spec.model_id,
                    job_type,
                    now,
                    model_alias=spec.alias,
                    project=spec.project,
                    owner=spec.owner,
                    params={**default_params(job_type, self._settings), **spec.params},
                    fact_table=spec.fact_table,
                    subscribe=spec.topic,
                )
                self._rt.jobs[job.uuid] = await self._store.save(StreamingWrite(job, None))
                created.append(job)
        return created

    async def recover(self) -> None:
        """Engine start: relaunch RUNNING/STARTING jobs; STOPPING/ERROR → ERROR (SPEC §5).

        ERROR jobs whose params enable retries get their retry scheduled again. On a shared
        store a job that another live node runs (it holds the lease) is left to it."""
        for job_id in sorted(self._rt.jobs):
            await self._recover_one(job_id)

    async def _recover_one(self, job_id: str) -> bool:
        """Recover one job as at a start; False when another node holds its lease (on a
        shared store a job a node owns is first adopted: its lease claimed here)."""
        leasing = self._rt.leasing
        owned = self._rt.jobs[job_id].status in core.OWNED
        if leasing is not None and owned and not await leasing.adopt(job_id):
            return False
        try:
            # performed under the job's lock: a relaunched run is handed the adopted lease
            decision = await self._rt.commit(job_id, core.recover_on_start, perform=True)
        finally:  # normally done by the commit already
            if leasing is not None:
                await leasing.unfence(job_id)
        assert decision is not None
        job = self._rt.jobs[job_id]
        if decision.effects:
            log.info("kjobs.streaming.relaunched", job_id=job_id)
        elif may_retry(job, self._settings):
            self._rt.spawn(job_id, retry_first=True)
        return True

    # -- actions ------------------------------------------------------------------------------

    async def apply(
        self,
        action: StreamingAction | str,
        job_ids: Sequence[str],
        project: str | None = None,
    ) -> None:
        """Apply ``action`` to each job in order; the first error stops the rest and is raised.

        Errors: ``InvalidRequest`` (unknown action), ``JobNotFound``, ``ModelBroken`` (START or
        RESTART of a broken model), ``StreamingActionNotAllowed`` (START of a started job)."""
        act = parse_action(action)
        for job_id in job_ids:
            self.get(job_id, project)

            def decide(job: StreamingJob, now: int) -> StreamingDecision:
                spec = self._models.get(job.model_id)
                broken = spec is None or spec.broken
                return core.apply_action(job, act, now, model_broken=broken)

            decision = await self._rt.commit(job_id, decide, perform=True)
            if decision is not None and decision.changed:
                log.info("kjobs.streaming.action", job_id=job_id, action=act.value)

    async def update_params(
        self, job_id: str, project: str | None, params: Mapping[str, str]
    ) -> StreamingJob:
        """Replace the job's params (only while STOPPED/ERROR: else StreamingActionNotAllowed)."""
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            raise InvalidRequest('The parameter "params" must map strings to strings')
        effective_params(params, self._settings)  # InvalidRequest names a bad value
        self.get(job_id, project)
        await self._rt.commit(job_id, lambda job, now: core.with_params(job, params, now))
        return self._rt.jobs[job_id]

    # -- queries ------------------------------------------------------------------------------

    def get(self, job_id: str, project: str | None = None) -> StreamingJob:
        """The job; ``JobNotFound`` if unknown (or not in ``project`` when one is given)."""
        job = self._rt.jobs.get(job_id)
        if job is None or (project and job.project != project):
            raise JobNotFound(job_id)
        return job

    def list_jobs(self, query: StreamingJobQuery) -> StreamingJobPage:
        """Filtered, sorted, paged jobs (``InvalidRequest`` for a bad parameter)."""
        return query_jobs(self._rt.jobs.values(), query, self._clock.now_ms())

    def all_jobs(self) -> list[StreamingJob]:
        """Every streaming job, in no particular order (read from memory)."""
        return list(self._rt.jobs.values())

    def list_view(self, query: StreamingJobQuery) -> dict[str, Any]:
        """``GET /streaming_jobs``'s ``data``: ``{value, offset, limit, total_size}``."""
        page = self.list_jobs(query)
        now = self._clock.now_ms()
        return {
            "value": [self._listed(job, now) for job in page.jobs],
            "offset": page.offset,
            "limit": page.limit,
            "total_size": page.total_size,
        }

    def view(self, job_id: str, project: str | None = None) -> dict[str, Any]:
        """One job as the list shows it."""
        return self._listed(self.get(job_id, project), self._clock.now_ms())

    def _listed(self, job: StreamingJob, now: int) -> dict[str, Any]:
        spec = self._models.get(job.model_id)
        model = None
        if spec is not None:
            desc = partition_desc(
                spec.fact_table, spec.partition_column, spec.partition_date_format
            )
            model = ModelView(spec.broken, spec.model_indexes, desc)
        return listed_job(job, now, version=self._version, model=model)

    async def records(self, job_id: str, project: str | None = None) -> list[StreamingRecord]:
        """The job's START/STOP/ERROR records, newest first."""
        self.get(job_id, project)
        return await self._store.records(job_id)

    async def stats(self, job_id: str, minutes: int = 30) -> list[BatchStats]:
        """The job's stats rows of the last ``minutes`` (1..10080), newest first."""
        if not 1 <= minutes <= MAX_STATS_MINUTES:
            raise InvalidRequest(
                f'The parameter "time_filter" must be between 1 and {MAX_STATS_MINUTES}: {minutes}'
            )
        self.get(job_id)
        return await self._store.stats(job_id, self._clock.now_ms() - minutes * 60_000)

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """The model's streaming segments, by start offset."""
        return await self._store.segments(model_id)

    def models(self) -> list[StreamingModelSpec]:
        """The models this service knows."""
        return list(self._models.values())

    def counters(self) -> StreamingCounters:
        """What the loops did so far."""
        return StreamingCounters(
            **{f.name: self._rt.counts[f.name] for f in fields(StreamingCounters)}
        )

    def is_running(self, job_id: str) -> bool:
        """Whether something runs for the job (launch, loop or retry wait)."""
        return job_id in self._rt.runs


def parse_action(action: StreamingAction | str) -> StreamingAction:
    """The action named ``action``; ``InvalidRequest`` with Kylin's message otherwise."""
    if isinstance(action, StreamingAction):
        return action
    try:
        return StreamingAction(action)
    except ValueError:
        raise InvalidStreamingParameter.invalid_action() from None
