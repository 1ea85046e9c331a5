"""The streaming state machine of SPEC §5 as pure functions of (job, action or event, now).

Records here are frozen; a decision returns the new job, the statuses written (in order), the
records to add and the effects the async runtime performs after the write is durable. Every
status change goes through ``_write_chain``, which follows the chains of
``states.STREAMING_ACTIONS`` / ``states.STREAMING_EVENTS`` and nothing else:

- writing the status the job already has is no write (no timestamp, no record, no mvcc bump);
- each effective write bumps ``mvcc`` and sets ``last_update_time`` and ``last_modified``;
- → RUNNING sets ``last_start_time`` and adds a START record; → STOPPED sets ``last_end_time``
  and adds STOP; → ERROR sets ``last_end_time`` and adds ERROR; → LAUNCHING_ERROR adds nothing.

Times are epoch milliseconds on the engine's clock.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Self

from engine.core.errors import (
    IllegalTransition,
    InvalidRequest,
    ModelBroken,
    StreamingActionNotAllowed,
)
from engine.core.states import (
    STREAMING_ACTIONS,
    STREAMING_EVENTS,
    RecordAction,
    StreamingAction,
    StreamingEvent,
    StreamingJobType,
    StreamingStatus,
    can_stream_transition,
)

#: the suffix of a streaming job id: ``{model_id}_build`` / ``{model_id}_merge``
JOB_SUFFIX: Final[Mapping[StreamingJobType, str]] = {
    StreamingJobType.STREAMING_BUILD: "build",
    StreamingJobType.STREAMING_MERGE: "merge",
}

#: Kylin's text for START of a job that is already started (``getJobStartFailure``)
ALREADY_STARTED: Final = (
    'Can\'t start the streaming job of model "{alias}", as it has an ongoing one at the moment. '
    "Please check and try again."
)


def streaming_job_id(model_id: str, job_type: StreamingJobType) -> str:
    """The id of a model's build or merge job."""
    return f"{model_id}_{JOB_SUFFIX[job_type]}"


def parse_job_id(job_id: str) -> tuple[str, StreamingJobType]:
    """Split ``{model_id}_{build|merge}``; ``InvalidRequest`` when it is not one."""
    model_id, _, suffix = job_id.rpartition("_")
    for job_type, known in JOB_SUFFIX.items():
        if suffix == known and model_id:
            return model_id, job_type
    raise InvalidRequest(f'"{job_id}" is not a streaming job id ({{model_id}}_build or _merge)')


#: the record an effective write to a status adds, and whether it sets the start or end time
_ON_ENTER: Final[Mapping[StreamingStatus, tuple[RecordAction, str]]] = {
    StreamingStatus.RUNNING: (RecordAction.START, "last_start_time"),
    StreamingStatus.STOPPED: (RecordAction.STOP, "last_end_time"),
    StreamingStatus.ERROR: (RecordAction.ERROR, "last_end_time"),
}


@dataclass(frozen=True, slots=True)
class StreamingJob:
    """One streaming job (Kylin's ``StreamingJobMeta``): the persisted state of SPEC §5."""

    uuid: str  #: ``{model_id}_build`` or ``{model_id}_merge``
    model_id: str
    model_alias: str
    project: str
    owner: str
    job_type: StreamingJobType
    create_time: int
    last_modified: int  #: time of the latest write of any kind
    status: StreamingStatus = StreamingStatus.STOPPED
    mvcc: int = 0  #: +1 on every write; the store's compare-and-set key
    params: Mapping[str, str] = field(default_factory=dict)
    fact_table: str | None = None
    subscribe: str | None = None  #: the source topic
    last_update_time: int | None = None  #: latest effective write (status change or batch)
    last_start_time: int | None = None  #: latest → RUNNING
    last_end_time: int | None = None  #: latest → STOPPED or → ERROR
    last_batch_count: int | None = None  #: rows of the latest micro-batch
    yarn_app_id: str = ""
    yarn_app_url: str = ""
    process_id: str | None = None
    node_info: str | None = None
    job_execution_id: int | None = None  #: +1 per successful launch
    action: str | None = None  #: the latest action that changed the job
    skip_listener: bool = False
    #: derived, written with the job in the same transaction so that listing 10,000 jobs needs
    #: no join: the time of the newest record, and the build's latest ``min_data_latency`` (≥ 0)
    last_record_time: int | None = None
    data_latency: int | None = None

    def evolve(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (``dataclasses.replace``, without its per-field checks:
        every write of a job comes here, so it is on the hot path of the loops)."""
        if type(self) is not StreamingJob or not changes.keys() <= _JOB_INDEX.keys():
            return dataclasses.replace(self, **changes)  # its errors for unknown names
        values = list(_JOB_VALUES(self))
        for name, value in changes.items():
            values[_JOB_INDEX[name]] = value
        return type(self)(*values)

    @property
    def launching_error(self) -> bool:
        """Whether the job is in LAUNCHING_ERROR (listed as ERROR)."""
        return self.status is StreamingStatus.LAUNCHING_ERROR


#: ``StreamingJob``'s fields in ``__init__`` order, to copy a job without ``dataclasses.replace``
_JOB_FIELDS: Final = tuple(f.name for f in dataclasses.fields(StreamingJob))
_JOB_INDEX: Final[Mapping[str, int]] = {name: i for i, name in enumerate(_JOB_FIELDS)}
_JOB_VALUES: Final = operator.attrgetter(*_JOB_FIELDS)


@dataclass(frozen=True, slots=True)
class StreamingRecord:
    """One START / STOP / ERROR event of a job (Kylin's ``StreamingJobRecord``)."""

    job_id: str
    project: str
    action: RecordAction
    create_time: int
    id: int | None = None  #: assigned by the store, increasing


@dataclass(frozen=True, slots=True)
class BatchStats:
    """One micro-batch's statistics (Kylin's ``StreamingJobStats``)."""

    job_id: str
    project: str
    batch_row_num: int
    rows_per_second: int
    processing_time: int  #: ms
    min_data_latency: int  #: ms
    max_data_latency: int  #: ms
    create_time: int
    id: int | None = None  #: assigned by the store, increasing


@dataclass(frozen=True, slots=True)
class StreamingSegment:
    """A READY segment of a streaming model: source offsets ``[start_offset, end_offset)``."""

    id: str
    model_id: str
    project: str
    start_offset: int
    end_offset: int
    min_event_time: int  #: epoch ms of the earliest message
    max_event_time: int
    row_count: int
    size_bytes: int
    create_time: int
    layer: int = 0  #: 0 = made by a micro-batch; a merge of layer-n segments has layer n + 1
    status: str = "READY"


# -- effects: what the runtime does once the decision is durable -------------------------------


@dataclass(frozen=True, slots=True)
class LaunchLoop:
    """Start the job's launch step and, once launched, its build or merge loop."""

    job_id: str


@dataclass(frozen=True, slots=True)
class CancelLoop:
    """Cancel whatever runs for the job at once (loop, launch or retry wait); a batch is lost."""

    job_id: str


@dataclass(frozen=True, slots=True)
class GracefulStop:
    """Ask the loop to stop: at once between batches, else when the current one ends."""

    job_id: str


StreamingEffect = LaunchLoop | CancelLoop | GracefulStop


@dataclass(frozen=True, slots=True)
class StreamingDecision:
    """The job to store (compare-and-set on ``expected_mvcc``), what was written, what to do."""

    job: StreamingJob
    expected_mvcc: int  #: the mvcc the stored job must still have
    previous: StreamingStatus  #: the status before the decision
    writes: tuple[StreamingStatus, ...] = ()  #: statuses written, in order
    records: tuple[StreamingRecord, ...] = ()
    effects: tuple[StreamingEffect, ...] = ()
    cause: str = ""  #: the action or event decided (START, LAUNCHED, ...), for event logs

    @property
    def changed(self) -> bool:
        """Whether there is anything to write (a no-op writes nothing)."""
        return self.job.mvcc != self.expected_mvcc

    @property
    def transitions(self) -> tuple[tuple[StreamingStatus, StreamingStatus], ...]:
        """The ``(old, new)`` status pairs written, in order."""
        pairs: list[tuple[StreamingStatus, StreamingStatus]] = []
        current = self.previous
        for status in self.writes:
            pairs.append((current, status))
            current = status
        return tuple(pairs)


# -- the machine -------------------------------------------------------------------------------


def _touch(job: StreamingJob, now: int, **changes: Any) -> StreamingJob:
    """One effective write: bump mvcc, stamp the times."""
    return job.evolve(mvcc=job.mvcc + 1, last_modified=now, last_update_time=now, **changes)


def _write_chain(
    job: StreamingJob,
    chain: tuple[StreamingStatus, ...],
    now: int,
    **changes: Any,
) -> tuple[StreamingJob, tuple[StreamingStatus, ...], tuple[StreamingRecord, ...]]:
    """Write each status of ``chain`` in turn; staying put is skipped (no write)."""
    writes: list[StreamingStatus] = []
    records: list[StreamingRecord] = []
    for status in chain:
        if status is job.status:
            continue
        if not can_stream_transition(job.status, status):
            raise IllegalTransition(f"streaming job {job.uuid}", job.status, status)
        extra: dict[str, Any] = dict(changes)
        entered = _ON_ENTER.get(status)
        if entered is not None:
            action, time_field = entered
            extra[time_field] = now
            extra["last_record_time"] = now
            records.append(StreamingRecord(job.uuid, job.project, action, now))
        job = _touch(job, now, status=status, **extra)
        writes.append(status)
    return job, tuple(writes), tuple(records)


def apply_action(
    job: StreamingJob, action: StreamingAction, now: int, *, model_broken: bool
) -> StreamingDecision:
    """Decide a user action (SPEC §5); refused actions raise and change nothing."""
    if model_broken and action in (StreamingAction.START, StreamingAction.RESTART):
        raise ModelBroken(job.model_alias)
    chain = STREAMING_ACTIONS[action][job.status]
    if chain is None:
        raise StreamingActionNotAllowed(
            job.uuid, action.value, job.status.value, ALREADY_STARTED.format(alias=job.model_alias)
        )
    new, writes, records = _write_chain(job, chain, now, action=action.value)
    effects = _action_effects(job, action)
    return StreamingDecision(new, job.mvcc, job.status, writes, records, effects, action.value)


def _action_effects(job: StreamingJob, action: StreamingAction) -> tuple[StreamingEffect, ...]:
    active = job.status in (
        StreamingStatus.STARTING,
        StreamingStatus.RUNNING,
        StreamingStatus.STOPPING,
    )
    if action is StreamingAction.START:
        return (LaunchLoop(job.uuid),)
    if action is StreamingAction.STOP:
        return (GracefulStop(job.uuid),) if active else ()
    if action is StreamingAction.FORCE_STOP:
        # also from idle statuses: a pending automatic retry is cancelled with the job
        return (CancelLoop(job.uuid),)
    return (CancelLoop(job.uuid), LaunchLoop(job.uuid))


def _apply_event(
    job: StreamingJob, event: StreamingEvent, now: int, **changes: Any
) -> StreamingDecision:
    row = STREAMING_EVENTS[event]
    chain = row.get(job.status)
    if chain is None:
        raise IllegalTransition(f"streaming job {job.uuid} ({event.value})", job.status, "?")
    new, writes, records = _write_chain(job, chain, now, **changes)
    return StreamingDecision(new, job.mvcc, job.status, writes, records, (), event.value)


def launched(
    job: StreamingJob,
    now: int,
    *,
    node_info: str | None = None,
    process_id: str | None = None,
    yarn_app_id: str = "",
    yarn_app_url: str = "",
) -> StreamingDecision:
    """The launch step succeeded: STARTING → RUNNING (START record, ``last_start_time``)."""
    return _apply_event(
        job,
        StreamingEvent.LAUNCHED,
        now,
        node_info=node_info,
        process_id=process_id,
        yarn_app_id=yarn_app_id,
        yarn_app_url=yarn_app_url,
        job_execution_id=(job.job_execution_id or 0) + 1,
    )


def launch_failed(job: StreamingJob, now: int) -> StreamingDecision:
    """The launch step failed: STARTING → LAUNCHING_ERROR (no record, no ``last_end_time``)."""
    return _apply_event(job, StreamingEvent.LAUNCH_FAILED, now)


def loop_stopped(job: StreamingJob, now: int) -> StreamingDecision:
    """A graceful stop completed: STOPPING → STOPPED (STOP record, ``last_end_time``)."""
    return _apply_event(job, StreamingEvent.LOOP_STOPPED, now)


def loop_failed(job: StreamingJob, now: int) -> StreamingDecision:
    """The loop raised: RUNNING/STOPPING → ERROR (ERROR record, ``last_end_time``)."""
    return _apply_event(job, StreamingEvent.LOOP_FAILED, now)


def batch_done(job: StreamingJob, stats: BatchStats, now: int) -> StreamingDecision:
    """A micro-batch ended (empty or not): ``last_batch_count``, ``last_update_time``."""
    decision = _apply_event(job, StreamingEvent.BATCH_DONE, now)
    latency = max(0, stats.min_data_latency)
    new = _touch(decision.job, now, last_batch_count=stats.batch_row_num, data_latency=latency)
    return dataclasses.replace(decision, job=new)


def merge_done(job: StreamingJob, now: int) -> StreamingDecision:
    """A merge pass merged something (a pass that merged nothing writes nothing)."""
    decision = _apply_event(job, StreamingEvent.BATCH_DONE, now)
    return dataclasses.replace(decision, job=_touch(decision.job, now))


def recover_on_start(job: StreamingJob, now: int) -> StreamingDecision:
    """Engine start: RUNNING/STARTING are relaunched (as RESTART); STOPPING/ERROR → ERROR."""
    relaunch = job.status in (StreamingStatus.RUNNING, StreamingStatus.STARTING)
    decision = _apply_event(job, StreamingEvent.RECOVER, now)
    if relaunch:
        return dataclasses.replace(decision, effects=(LaunchLoop(job.uuid),))
    return decision


def with_params(job: StreamingJob, params: Mapping[str, str], now: int) -> StreamingDecision:
    """Replace the job's params; only while STOPPED or ERROR (LAUNCHING_ERROR included)."""
    if job.status not in (
        StreamingStatus.STOPPED,
        StreamingStatus.ERROR,
        StreamingStatus.LAUNCHING_ERROR,
    ):
        raise StreamingActionNotAllowed(
            job.uuid,
            "UPDATE_PARAMS",
            job.status.value,
            f'Can\'t update the params of streaming job "{job.uuid}" while it is '
            f"{job.status.listed_as}. Please stop it and try again.",
        )
    new = dict(params)
    if new == dict(job.params):
        return StreamingDecision(job, job.mvcc, job.status, cause="UPDATE_PARAMS")
    changed = job.evolve(params=new, mvcc=job.mvcc + 1, last_modified=now)
    return StreamingDecision(changed, job.mvcc, job.status, cause="UPDATE_PARAMS")


def new_job(
    model_id: str,
    job_type: StreamingJobType,
    now: int,
    *,
    model_alias: str,
    project: str,
    owner: str,
    params: Mapping[str, str],
    fact_table: str | None = None,
    subscribe: str | None = None,
) -> StreamingJob:
    """A model's build or merge job as first created: STOPPED, mvcc 0, no records."""
    return StreamingJob(
        uuid=streaming_job_id(model_id, job_type),
        model_id=model_id,
        model_alias=model_alias,
        project=project,
        owner=owner,
        job_type=job_type,
        create_time=now,
        last_modified=now,
        params=dict(params),
        fact_table=fact_table,
        subscribe=subscribe,
    )
