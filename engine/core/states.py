"""The rules of Kylin's job states, as data: SPEC §1 (batch) and §5 (streaming).

This is the one place that says which state may follow which and which operation is allowed
from where. Everything else (operations, scheduler, API, tests) asks these tables; nothing
re-encodes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final


class State(StrEnum):
    """Persisted state of a batch job or step (Kylin's ``ExecutableState``)."""

    READY = "READY"  #: waiting for a slot, or reset by resume/rollback/recovery
    RUNNING = "RUNNING"
    ERROR = "ERROR"
    STOPPED = "STOPPED"  #: paused
    DISCARDED = "DISCARDED"  #: final
    SUCCEED = "SUCCEED"  #: final

    @property
    def is_final(self) -> bool:
        """True for SUCCEED and DISCARDED, which nothing but rollback leaves."""
        return self in FINAL_STATES

    @property
    def rest_name(self) -> JobStatus:
        """The name the REST API shows (``job_status`` / ``step_status``)."""
        return REST_NAMES[self]


FINAL_STATES: Final = frozenset({State.SUCCEED, State.DISCARDED})

# ---------------------------------------------------------------------------------------------
# SPEC §1: the transition table, shared by jobs and steps.
#
#   from \ to   READY  RUNNING  ERROR  STOPPED  DISCARDED  SUCCEED
#   READY         -       Y       Y       Y         Y         -
#   RUNNING       Y       -       Y       Y         Y         Y
#   ERROR         Y       -       -       -         Y         -
#   STOPPED       Y       -       -       -         Y         -
#   DISCARDED     -       -       -       -         -         -
#   SUCCEED       Y       -       -       -         -         -      (rollback only)
# ---------------------------------------------------------------------------------------------
TRANSITIONS: Final[Mapping[State, frozenset[State]]] = {
    State.READY: frozenset({State.RUNNING, State.ERROR, State.STOPPED, State.DISCARDED}),
    State.RUNNING: frozenset(
        {State.READY, State.ERROR, State.STOPPED, State.DISCARDED, State.SUCCEED}
    ),
    State.ERROR: frozenset({State.READY, State.DISCARDED}),
    State.STOPPED: frozenset({State.READY, State.DISCARDED}),
    State.DISCARDED: frozenset(),
    State.SUCCEED: frozenset({State.READY}),
}


def can_transition(old: State, new: State) -> bool:
    """Whether ``old -> new`` is a transition of SPEC §1 (staying put is not one)."""
    return new in TRANSITIONS[old]


class JobStatus(StrEnum):
    """The status names the REST API and the CLI show for batch jobs and steps."""

    NEW = "NEW"  #: a code of the list filter only; no job is ever shown NEW
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    ERROR = "ERROR"
    DISCARDED = "DISCARDED"
    STOPPED = "STOPPED"


REST_NAMES: Final[Mapping[State, JobStatus]] = {
    State.READY: JobStatus.PENDING,
    State.RUNNING: JobStatus.RUNNING,
    State.ERROR: JobStatus.ERROR,
    State.STOPPED: JobStatus.STOPPED,
    State.DISCARDED: JobStatus.DISCARDED,
    State.SUCCEED: JobStatus.FINISHED,
}

#: Kylin's integer status codes, used by the ``status`` filter of ``GET /jobs``.
STATUS_CODES: Final[Mapping[JobStatus, int]] = {
    JobStatus.NEW: 0,
    JobStatus.PENDING: 1,
    JobStatus.RUNNING: 2,
    JobStatus.FINISHED: 4,
    JobStatus.ERROR: 8,
    JobStatus.DISCARDED: 16,
    JobStatus.STOPPED: 32,
}

STATE_BY_CODE: Final[Mapping[int, State]] = {
    STATUS_CODES[rest]: state for state, rest in REST_NAMES.items()
}

#: The REST names a job or step can show, in the order of ``State``.
SHOWN_STATUSES: Final = tuple(REST_NAMES[s] for s in State)

#: A job in one of these states has stopped moving until a user acts (or for good).
ENDED_STATES: Final = frozenset({State.SUCCEED, State.ERROR, State.STOPPED, State.DISCARDED})
ENDED_STATUSES: Final = frozenset(REST_NAMES[s] for s in ENDED_STATES)
#: The REST names of a job or step still on its way (waiting for a slot, or running).
MOVING_STATUSES: Final = frozenset(REST_NAMES[s] for s in State if s not in ENDED_STATES)


class BuildType(StrEnum):
    """What a batch job does to its cube's segments (Kylin's ``CubeBuildTypeEnum``)."""

    BUILD = "BUILD"
    MERGE = "MERGE"
    REFRESH = "REFRESH"


class SegmentStatus(StrEnum):
    """A cube segment's status: a BUILD creates it NEW, its "Update Cube Info" step lands it."""

    NEW = "NEW"
    READY = "READY"


class CubeStatus(StrEnum):
    """A cube is READY once it has a READY segment, else DISABLED."""

    READY = "READY"
    DISABLED = "DISABLED"


def cube_status(segment_statuses: Iterable[str]) -> CubeStatus:
    """READY when any segment is READY, else DISABLED."""
    ready = any(s == SegmentStatus.READY for s in segment_statuses)
    return CubeStatus.READY if ready else CubeStatus.DISABLED


def status_code(value: str) -> int | None:
    """A ``status`` filter value: Kylin's code (``"4"``) or a REST name (``"finished"``, any
    case) as its code; None for anything else."""
    if value.isdigit():
        return int(value) if int(value) in STATUS_CODES.values() else None
    name = value.upper()
    return STATUS_CODES[JobStatus(name)] if name in JobStatus.__members__ else None


class Operation(StrEnum):
    """What a user may ask of a batch job (SPEC §2.1)."""

    RESUME = "RESUME"
    DISCARD = "DISCARD"
    PAUSE = "PAUSE"
    ROLLBACK = "ROLLBACK"
    DROP = "DROP"
    RESTART = "RESTART"  #: Kylin 5 bulk action only


#: The operations of the Kylin 5 bulk endpoint ``PUT /jobs/status`` (and of simulations).
BULK_OPERATIONS: Final = (Operation.RESUME, Operation.DISCARD, Operation.PAUSE, Operation.RESTART)

# SPEC §2.1: the job states each operation is allowed from. Submit has no "from".
OPERATION_ALLOWED_FROM: Final[Mapping[Operation, frozenset[State]]] = {
    Operation.RESUME: frozenset({State.ERROR, State.STOPPED}),
    Operation.DISCARD: frozenset({State.READY, State.RUNNING, State.ERROR, State.STOPPED}),
    Operation.PAUSE: frozenset({State.READY, State.RUNNING}),
    Operation.ROLLBACK: frozenset({State.SUCCEED, State.ERROR, State.STOPPED}),
    Operation.DROP: frozenset({State.SUCCEED, State.DISCARDED}),
    Operation.RESTART: frozenset({State.RUNNING, State.ERROR, State.STOPPED}),
}


# =============================================================================================
# Streaming jobs (SPEC §5)
# =============================================================================================


class StreamingStatus(StrEnum):
    """Persisted status of a Kylin 5 streaming job."""

    STOPPED = "STOPPED"  #: initial
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    ERROR = "ERROR"
    LAUNCHING_ERROR = "LAUNCHING_ERROR"  #: listed as ERROR with ``launching_error: true``

    @property
    def listed_as(self) -> str:
        """The ``job_status`` the list endpoint shows."""
        if self is StreamingStatus.LAUNCHING_ERROR:
            return StreamingStatus.ERROR.value
        return self.value


#: The statuses the streaming list shows and filters on, each with the statuses it covers
#: (``ERROR`` covers LAUNCHING_ERROR, which is shown as ERROR with ``launching_error: true``).
STREAMING_LISTED: Final[Mapping[str, frozenset[StreamingStatus]]] = {
    StreamingStatus.STARTING.value: frozenset({StreamingStatus.STARTING}),
    StreamingStatus.RUNNING.value: frozenset({StreamingStatus.RUNNING}),
    StreamingStatus.STOPPING.value: frozenset({StreamingStatus.STOPPING}),
    StreamingStatus.ERROR.value: frozenset(
        {StreamingStatus.ERROR, StreamingStatus.LAUNCHING_ERROR}
    ),
    StreamingStatus.STOPPED.value: frozenset({StreamingStatus.STOPPED}),
}


class StreamingAction(StrEnum):
    """Actions of ``PUT /streaming_jobs/status``."""

    START = "START"
    STOP = "STOP"
    FORCE_STOP = "FORCE_STOP"
    RESTART = "RESTART"


class RecordAction(StrEnum):
    """What a streaming job record says happened."""

    START = "START"
    STOP = "STOP"
    ERROR = "ERROR"


class StreamingJobType(StrEnum):
    """The two jobs every streaming model has."""

    STREAMING_BUILD = "STREAMING_BUILD"
    STREAMING_MERGE = "STREAMING_MERGE"


STREAMING_IDLE: Final = frozenset(
    {StreamingStatus.STOPPED, StreamingStatus.ERROR, StreamingStatus.LAUNCHING_ERROR}
)
STREAMING_ACTIVE: Final = frozenset(
    {StreamingStatus.STARTING, StreamingStatus.RUNNING, StreamingStatus.STOPPING}
)

# ---------------------------------------------------------------------------------------------
# SPEC §5: what each action does from each status. A value is the chain of statuses written,
# in order, or None = the action is refused ("job already started"). Writing the status the job
# already has is no write at all (no timestamp, no record, no mvcc bump), so STOP from STOPPING
# is a no-op and FORCE_STOP's STOPPING step is skipped from STOPPING.
#
#   from                 START      STOP       FORCE_STOP          RESTART
#   STOPPED              STARTING   no-op      STOPPING, STOPPED   STOPPING, STOPPED, STARTING
#   ERROR                STARTING   no-op      STOPPING, STOPPED   STOPPING, STOPPED, STARTING
#   LAUNCHING_ERROR      STARTING   ERROR      STOPPING, STOPPED   STOPPING, STOPPED, STARTING
#   STARTING / RUNNING   refused    STOPPING   STOPPED             STOPPED, STARTING
#   STOPPING             refused    no-op      STOPPED             STOPPED, STARTING
#
# STARTING is followed by RUNNING or LAUNCHING_ERROR once the (asynchronous) launch ends, and a
# graceful STOPPING by STOPPED when the current micro-batch or merge pass ends: those are
# events, in STREAMING_EVENTS below. RESTART is FORCE_STOP then START, from any status (Kylin's
# ``updateStreamingJobStatus``): from an idle status it passes through STOPPING and STOPPED too.
# ---------------------------------------------------------------------------------------------
_FORCE_STOP_CHAINS: Final[Mapping[StreamingStatus, tuple[StreamingStatus, ...]]] = {
    StreamingStatus.STOPPED: (StreamingStatus.STOPPING, StreamingStatus.STOPPED),
    StreamingStatus.ERROR: (StreamingStatus.STOPPING, StreamingStatus.STOPPED),
    StreamingStatus.LAUNCHING_ERROR: (StreamingStatus.STOPPING, StreamingStatus.STOPPED),
    StreamingStatus.STARTING: (StreamingStatus.STOPPED,),
    StreamingStatus.RUNNING: (StreamingStatus.STOPPED,),
    StreamingStatus.STOPPING: (StreamingStatus.STOPPED,),
}

STREAMING_ACTIONS: Final[
    Mapping[StreamingAction, Mapping[StreamingStatus, tuple[StreamingStatus, ...] | None]]
] = {
    StreamingAction.START: {
        StreamingStatus.STOPPED: (StreamingStatus.STARTING,),
        StreamingStatus.ERROR: (StreamingStatus.STARTING,),
        StreamingStatus.LAUNCHING_ERROR: (StreamingStatus.STARTING,),
        StreamingStatus.STARTING: None,
        StreamingStatus.RUNNING: None,
        StreamingStatus.STOPPING: None,
    },
    StreamingAction.STOP: {
        StreamingStatus.STOPPED: (),
        StreamingStatus.ERROR: (),
        StreamingStatus.LAUNCHING_ERROR: (StreamingStatus.ERROR,),
        StreamingStatus.STARTING: (StreamingStatus.STOPPING,),
        StreamingStatus.RUNNING: (StreamingStatus.STOPPING,),
        StreamingStatus.STOPPING: (),
    },
    StreamingAction.FORCE_STOP: _FORCE_STOP_CHAINS,
    StreamingAction.RESTART: {
        status: (*chain, StreamingStatus.STARTING) for status, chain in _FORCE_STOP_CHAINS.items()
    },
}


class StreamingEvent(StrEnum):
    """What happens to a streaming job without a user action: launch results, loop outcomes."""

    LAUNCHED = "LAUNCHED"  #: the launch step succeeded
    LAUNCH_FAILED = "LAUNCH_FAILED"  #: the launch step failed
    LOOP_STOPPED = "LOOP_STOPPED"  #: a graceful stop completed (between batches or after one)
    LOOP_FAILED = "LOOP_FAILED"  #: the build or merge loop raised
    BATCH_DONE = "BATCH_DONE"  #: a micro-batch or a merge pass wrote its results (no status change)
    RECOVER = "RECOVER"  #: the engine (re)started and found the job in this status


# ---------------------------------------------------------------------------------------------
# SPEC §5: what each event does from each status, as chains like STREAMING_ACTIONS. A status
# missing from an event's row means the event cannot happen there (IllegalTransition).
#
#   event           from                        writes
#   LAUNCHED        STARTING                    RUNNING (START record, last_start_time)
#   LAUNCH_FAILED   STARTING                    LAUNCHING_ERROR (no record, no last_end_time)
#   LOOP_STOPPED    STOPPING                    STOPPED (STOP record, last_end_time)
#   LOOP_FAILED     RUNNING, STOPPING           ERROR (ERROR record, last_end_time)
#   BATCH_DONE      RUNNING, STOPPING           no status change (last_batch_count, ...)
#   RECOVER         RUNNING, STARTING           STOPPED, STARTING, then relaunch (as RESTART)
#                   STOPPING, ERROR             ERROR (a no-op from ERROR)
#                   STOPPED, LAUNCHING_ERROR    nothing
# ---------------------------------------------------------------------------------------------
STREAMING_EVENTS: Final[
    Mapping[StreamingEvent, Mapping[StreamingStatus, tuple[StreamingStatus, ...]]]
] = {
    StreamingEvent.LAUNCHED: {StreamingStatus.STARTING: (StreamingStatus.RUNNING,)},
    StreamingEvent.LAUNCH_FAILED: {StreamingStatus.STARTING: (StreamingStatus.LAUNCHING_ERROR,)},
    StreamingEvent.LOOP_STOPPED: {StreamingStatus.STOPPING: (StreamingStatus.STOPPED,)},
    StreamingEvent.LOOP_FAILED: {
        StreamingStatus.RUNNING: (StreamingStatus.ERROR,),
        StreamingStatus.STOPPING: (StreamingStatus.ERROR,),
    },
    StreamingEvent.BATCH_DONE: {StreamingStatus.RUNNING: (), StreamingStatus.STOPPING: ()},
    StreamingEvent.RECOVER: {
        StreamingStatus.RUNNING: (StreamingStatus.STOPPED, StreamingStatus.STARTING),
        StreamingStatus.STARTING: (StreamingStatus.STOPPED, StreamingStatus.STARTING),
        StreamingStatus.STOPPING: (StreamingStatus.ERROR,),
        StreamingStatus.ERROR: (StreamingStatus.ERROR,),
        StreamingStatus.STOPPED: (),
        StreamingStatus.LAUNCHING_ERROR: (),
    },
}


def _streaming_transitions() -> frozenset[tuple[StreamingStatus, StreamingStatus]]:
    pairs: set[tuple[StreamingStatus, StreamingStatus]] = set()
    rows = [*STREAMING_ACTIONS.values(), *STREAMING_EVENTS.values()]
    for row in rows:
        for start, chain in row.items():
            current = start
            for status in chain or ():
                if status is not current:
                    pairs.add((current, status))
                current = status
    return frozenset(pairs)


#: Every (from, to) status change the two tables above can make; nothing else may happen.
STREAMING_TRANSITIONS: Final = _streaming_transitions()


def can_stream_transition(old: StreamingStatus, new: StreamingStatus) -> bool:
    """Whether ``old -> new`` is a status change of SPEC §5 (staying put is not one)."""
    return (old, new) in STREAMING_TRANSITIONS


# =============================================================================================
# Operations (SPEC §11): job-end notifications and scheduled builds
# =============================================================================================

#: A job that moves into one of these states is notified (SPEC §11): FINISHED, ERROR and
#: DISCARDED, including a discard of an ERROR or STOPPED job.
JOB_END_STATES: Final = frozenset({State.SUCCEED, State.ERROR, State.DISCARDED})

#: Ended jobs the retention sweep deletes; ERROR and STOPPED may still be resumed: they stay.
SWEPT_STATES: Final = frozenset({State.SUCCEED, State.DISCARDED})

#: A schedule's job that has not ended yet (``overlap = skip`` waits for it).
ACTIVE_STATES: Final = frozenset({State.READY, State.RUNNING})


class Overlap(StrEnum):
    """What a schedule does at a slot while its last job has not ended."""

    SKIP = "skip"  #: no run for that slot
    QUEUE = "queue"  #: the slot waits and fires once the last job has ended


class CatchUp(StrEnum):
    """What a schedule does with the slots it missed while no engine ran."""

    NONE = "none"  #: nothing: the next run is the next slot to come
    LAST = "last"  #: one run over the whole missed range
    ALL = "all"  #: one run per missed slot, in order
