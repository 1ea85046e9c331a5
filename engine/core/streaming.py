"""The streaming state machine of SPEC §5 as pure functions of (job, action or event, now).

The records live in ``streaming_jobs`` (re-exported here). A decision returns the new job, the
statuses written (in order), the records to add and the effects the async runtime performs
after the write is durable. Every status change goes through ``_write_chain``, which follows
the chains of ``states.STREAMING_ACTIONS`` / ``states.STREAMING_EVENTS`` and nothing else:

- writing the status the job already has is no write (no timestamp, no record, no mvcc bump);
- each effective write bumps ``mvcc`` and sets ``last_update_time`` and ``last_modified``;
- → RUNNING sets ``last_start_time`` and adds a START record; → STOPPED sets ``last_end_time``
  and adds STOP; → ERROR sets ``last_end_time`` and adds ERROR; → LAUNCHING_ERROR adds nothing.

Times are epoch milliseconds on the engine's clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from engine.core.errors import (
    IllegalTransition,
    ModelBroken,
    StreamingActionNotAllowed,
)
from engine.core.jobs import _evolve
from engine.core.states import (
    STREAMING_ACTIONS,
    STREAMING_EVENTS,
    RecordAction,
    StreamingAction,
    StreamingEvent,
    StreamingStatus,
    can_stream_transition,
)
from engine.core.streaming_jobs import JOB_SUFFIX as JOB_SUFFIX
from engine.core.streaming_jobs import BatchStats as BatchStats
from engine.core.streaming_jobs import StreamingJob as StreamingJob
from engine.core.streaming_jobs import StreamingRecord as StreamingRecord
from engine.core.streaming_jobs import StreamingSegment as StreamingSegment
from engine.core.streaming_jobs import new_job as new_job
from engine.core.streaming_jobs import parse_job_id as parse_job_id
from engine.core.streaming_jobs import streaming_job_id as streaming_job_id

#: Kylin's text for START of a job that is already started (``getJobStartFailure``)
ALREADY_STARTED: Final = (
    'Can\'t start the streaming job of model "{alias}", as it has an ongoing one at the moment. '
    "Please check and try again."
)


#: the record an effective write to a status adds, and whether it sets the start or end time
_ON_ENTER: Final[Mapping[StreamingStatus, tuple[RecordAction, str]]] = {
    StreamingStatus.RUNNING: (RecordAction.START, "last_start_time"),
    StreamingStatus.STOPPED: (RecordAction.STOP, "last_end_time"),
    StreamingStatus.ERROR: (RecordAction.ERROR, "last_end_time"),
}


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


def launch_ended(
    job: StreamingJob,
    now: int,
    *,
    failed: bool,
    node_info: str | None = None,
    yarn_app_id: str = "",
) -> StreamingDecision:
    """The launch step ended: a STOP that came meanwhile wins (STOPPING → STOPPED); else a
    failed launch is LAUNCHING_ERROR and a good one RUNNING."""
    if job.status is StreamingStatus.STOPPING:
        return loop_stopped(job, now)
    if failed:
        return launch_failed(job, now)
    return launched(job, now, node_info=node_info, yarn_app_id=yarn_app_id)


def run_failed(job: StreamingJob, now: int) -> StreamingDecision:
    """What ran for the job raised: while still STARTING the launch failed (LAUNCHING_ERROR,
    never retried); later the loop failed (ERROR, which may be retried: ``may_retry``)."""
    if job.status is StreamingStatus.STARTING:
        return launch_failed(job, now)
    return loop_failed(job, now)


def batch_done(job: StreamingJob, stats: BatchStats, now: int) -> StreamingDecision:
    """A micro-batch ended (empty or not): ``last_batch_count``, ``last_update_time``."""
    decision = _apply_event(job, StreamingEvent.BATCH_DONE, now)
    latency = max(0, stats.min_data_latency)
    new = _touch(decision.job, now, last_batch_count=stats.batch_row_num, data_latency=latency)
    return _evolve(decision, {"job": new})


def merge_done(job: StreamingJob, now: int) -> StreamingDecision:
    """A merge pass merged something (a pass that merged nothing writes nothing)."""
    decision = _apply_event(job, StreamingEvent.BATCH_DONE, now)
    return _evolve(decision, {"job": _touch(decision.job, now)})


#: statuses in which a node runs something for the job: on a shared store a job in one of them
#: whose lease nobody holds (its node died) is recovered by another node, as at a start
OWNED: Final = frozenset(
    {StreamingStatus.STARTING, StreamingStatus.RUNNING, StreamingStatus.STOPPING}
)


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
