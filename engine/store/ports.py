"""The store ports: ``JobStore`` (batch jobs) and ``StreamingStore``. Adapters: ``memory.py``,
``sqlite/``.

Batch jobs (``JobStore``).

Rules every adapter keeps (the contract tests in ``tests/integration/test_store_contract.py``
run against each one):

- ``save_job`` is a compare-and-set on ``Job.version``: the stored version must equal the
  given job's version (``expected`` None = the job must not exist yet). The stored copy gets
  ``version + 1`` and is returned. A lost race raises ``ConcurrentModification`` and writes
  nothing of that call.
- Everything passed to one ``save_job`` call (job, segment changes, outputs, the job-end
  notification for the outbox) is written atomically: all of it or none.
- The outbox (``claim_notifications`` / ``settle_notification``), the retention sweep
  (``sweep_jobs``) and the schedules (``*_schedule``, compare-and-set on their version) serve
  ``engine.ops``; a sweep never touches segments.
- Outputs are stored per ``(step_id, attempt)``; text longer than ``max_output_bytes`` keeps
  its tail, prefixed with a line that says how much was cut.
- Reads see every write whose call has returned.
- A step is stored as its own row (SQLite, PostgreSQL): a write rewrites the job's summary and
  only the steps that are not the very objects of ``JobWrite.base``. The steps of a job are fixed
  at submit (count and specs); only their state changes.

Leases (``LeaseStore``, SPEC §9): one node at a time runs a job. Rules every adapter keeps:

- ``claim`` grants a lease when the job has none, when its lease expired (``expires <= now``),
  or when the claimer already owns it (its own restart). Every grant gets a fencing token
  greater than every earlier token of that job; two claimers never both get one.
- A ``JobWrite`` that carries a ``lease`` is refused with ``LeaseLost`` and changes nothing
  unless that lease (owner and token) is still the job's current one. Writes without a lease
  (user operations) are never refused for lease reasons: compare-and-set on the version
  serialises them with the runner.
- ``revoke`` takes a job's lease away from whoever holds it (an operation stopped the job):
  the owner finds it gone in ``held`` and stops the step. ``take_over`` revokes and grants the
  caller a new lease in one step; it waits for a fenced write in flight, where ``claim`` may
  give up (PostgreSQL's ``SKIP LOCKED``: a claim that returns None is tried again later).
- Step processes (``record_process`` ...): one row per ``(host, pgid)`` (a newer record of the
  same group replaces the older one: the pid was reused, so the old group is gone); a record is
  readable by every node of the store once its call returns; clearing one that is gone is a
  no-op.

Streaming jobs (``StreamingStore``).
Rules every adapter keeps (the
contract tests run against each one):

- ``save`` is a compare-and-set on ``StreamingJob.mvcc``: the stored job's mvcc must equal
  ``expected_mvcc`` (None = the job must not exist yet), and the new job's mvcc must be
  greater. A lost race raises ``ConcurrentModification`` and writes nothing of that call.
- Everything passed to one ``save`` (job, records, stats, segments added and removed) is
  written atomically. Removing a segment that is not there is a lost race too.
- Records and stats get increasing ids in the order they are written. Lists come newest first
  (``create_time`` then id, descending); segments by ``start_offset``.
- Filtering, sorting and paging of the job list happen in one pure function
  (``engine.streaming.query``) over ``list_jobs()``, so every adapter lists the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine.core.jobs import Job, Segment
from engine.core.notifications import JobEnd
from engine.core.schedules import Schedule
from engine.core.states import State
from engine.core.streaming import BatchStats, StreamingJob, StreamingRecord, StreamingSegment

DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024  #: ``kylin.job.execute-output.max-size``


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Filters of ``GET /jobs`` (SPEC §6); results are newest change first."""

    cube: str | None = None  #: case-insensitive substring of the cube name
    project: str | None = None  #: exact project name
    states: frozenset[State] | None = None
    modified_since: int | None = None  #: epoch ms; jobs changed at or after it
    offset: int = 0
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class OutputWrite:
    """The captured output of one attempt of one step (replaces what was stored for it)."""

    step_id: str
    attempt: int
    text: str


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """Segments to upsert and to delete, written with the job in one transaction."""

    upsert: Sequence[Segment] = ()
    delete: Sequence[str] = ()  #: segment uuids


@dataclass(frozen=True, slots=True)
class Lease:
    """A node's right to run one job until ``expires`` (renewed well before)."""

    job_id: str
    owner: str  #: node id
    token: int  #: fencing token: grows on every claim of this job
    expires: int  #: epoch ms


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node of the cluster, as ``GET /kylin/api/cluster/nodes`` lists it."""

    node_id: str
    host: str
    pid: int
    started: int  #: epoch ms
    last_heartbeat: int  #: epoch ms
    running_jobs: int


@dataclass(frozen=True, slots=True)
class StepProcess:
    """A step's process group, recorded before the step's work starts and cleared when it ends:
    what a later incarnation of the engine kills if it is still running (no orphans).

    ``started`` and ``node_started`` tell a process from a later one that reuses its pid
    (``engine.batch.orphans.identity``: boot id and start time; "" when unknown).
    """

    host: str
    pgid: int  #: the group (its leader's pid: the step runs in its own session)
    job_id: str
    step_id: str
    attempt: int
    started: str  #: identity of the group's leader
    node_id: str  #: the node that ran it
    node_pid: int  #: that node's process
    node_started: str  #: identity of that node's process
    recorded: int  #: epoch ms


@dataclass(frozen=True, slots=True)
class Candidate:
    """A batch job some node should run: READY, or RUNNING without a live lease (rescue)."""

    job_id: str
    state: State
    priority: int
    create_time: int


@dataclass(frozen=True, slots=True)
class JobWrite:
    """One atomic write: a job (compare-and-set on its version) and what goes with it."""

    job: Job
    expected_version: int | None  #: None: the job is new
    segments: SegmentChange | None = None
    outputs: Sequence[OutputWrite] = field(default_factory=tuple)
    clear_outputs: Sequence[str] = field(default_factory=tuple)  #: step ids
    #: the stored job this write was derived from (its version is ``expected_version``): steps
    #: that are the very same objects as in ``base`` are unchanged and a store may skip them;
    #: None: every step may have changed
    base: Job | None = None
    #: the job ended: its notification goes into the outbox in the same transaction
    notification: JobEnd | None = None
    lease: Lease | None = None  #: a runner's write: refused (``LeaseLost``) unless current


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A job-end notification waiting in the outbox (SPEC §11)."""

    event_id: str
    job_id: str
    payload: str  #: the JSON body, as POSTed
    attempts: int  #: delivery attempts made so far
    next_attempt: int  #: epoch ms; a claim moves it to the claim's lease end


class JobStore(Protocol):
    """Persistence of batch jobs, their step outputs and cube segments."""

    async def open(self) -> None:
        """Connect, migrate to the latest schema; idempotent."""

    async def close(self) -> None:
        """Flush pending writes and release connections."""

    async def save_job(self, write: JobWrite) -> Job:
        """Write atomically with compare-and-set; return the stored job (version + 1)."""

    async def delete_job(self, job_id: str, expected_version: int) -> None:
        """Delete a job, its outputs (compare-and-set); ``JobNotFound`` if it is gone."""

    async def get_job(self, job_id: str) -> Job:
        """The stored job; ``JobNotFound`` when there is none."""

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching ``query``, newest ``last_modified`` first, paged."""

    async def count_jobs(self, query: JobFilter) -> int:
        """How many jobs match ``query`` (paging ignored)."""

    async def count_by_state(self) -> dict[State, int]:
        """Number of jobs in each state (states with none may be missing)."""

    async def jobs_in_states(self, states: frozenset[State]) -> list[Job]:
        """Every job in one of ``states``, oldest first (recovery and scheduling)."""

    async def read_output(self, step_id: str, attempt: int) -> str | None:
        """The stored output of one attempt, None when nothing was stored."""

    async def output_attempts(self, step_id: str) -> list[int]:
        """Attempt numbers that have stored output, ascending."""

    async def segments(self, cube: str) -> list[Segment]:
        """The cube's segments, by range start."""

    async def delete_segments(self, uuids: Sequence[str]) -> None:
        """Delete these segments (segment management; one already gone is skipped)."""

    # -- operations (SPEC §11, engine/ops) ---------------------------------------------------

    async def claim_notifications(
        self, now: int, lease_until: int, limit: int
    ) -> list[OutboxEntry]:
        """Up to ``limit`` pending notifications due by ``now``, earliest first; each one's next
        attempt moves to ``lease_until`` in the same write, so a second sender does not take it
        and a crashed sender's claims come due again after the lease."""

    async def settle_notification(
        self, event_id: str, attempts: int, next_attempt: int | None, error: str | None
    ) -> None:
        """After an attempt: delivered (``error`` None: the entry goes), to be retried at
        ``next_attempt``, or given up (``next_attempt`` None with an ``error``: kept, never due)."""

    async def sweep_jobs(self, ended_before: int, limit: int) -> list[str]:
        """Delete up to ``limit`` FINISHED or DISCARDED jobs last changed before ``ended_before``
        (epoch ms) with their outputs, oldest first, in one short write; their ids."""

    async def save_schedule(self, schedule: Schedule, expected_version: int | None) -> Schedule:
        """Compare-and-set on ``Schedule.version`` (None: the name must be free, else
        ``ConcurrentModification``); the stored schedule has ``version + 1``."""

    async def get_schedule(self, name: str) -> Schedule:
        """The stored schedule; ``ScheduleNotFound`` when there is none."""

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""

    async def delete_schedule(self, name: str) -> None:
        """Delete the schedule (its jobs stay); ``ScheduleNotFound`` when there is none."""


# -- streaming jobs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamingWrite:
    """One atomic write: a job (compare-and-set on its mvcc) and what goes with it."""

    job: StreamingJob
    expected_mvcc: int | None  #: None: the job is new
    records: Sequence[StreamingRecord] = ()
    stats: Sequence[BatchStats] = ()
    add_segments: Sequence[StreamingSegment] = ()
    remove_segments: Sequence[str] = ()  #: segment ids
    #: a run's write on a shared store: refused (``LeaseLost``, nothing written) unless this is
    #: still the job's current lease (SPEC §9); stores that are never shared ignore it
    lease: Lease | None = None


class StreamingStore(Protocol):
    """Persistence of streaming jobs, their records and stats, and streaming segments."""

    async def open(self) -> None:
        """Connect and migrate; idempotent."""

    async def close(self) -> None:
        """Flush pending writes and release connections."""

    async def save(self, write: StreamingWrite) -> StreamingJob:
        """Write atomically with compare-and-set on mvcc; return the stored job."""

    async def get_job(self, job_id: str) -> StreamingJob:
        """The stored job; ``JobNotFound`` when there is none."""

    async def list_jobs(self) -> list[StreamingJob]:
        """Every streaming job, by uuid."""

    async def records(self, job_id: str, limit: int | None = None) -> list[StreamingRecord]:
        """The job's records, newest first (at most ``limit``)."""

    async def stats(self, job_id: str, since: int) -> list[BatchStats]:
        """The job's stats rows created at or after ``since`` (epoch ms), newest first."""

    async def segments(self, model_id: str) -> list[StreamingSegment]:
        """The model's streaming segments, by ``start_offset``."""


# -- leases and nodes (SPEC §9) ---------------------------------------------------------------


class LeaseStore(Protocol):
    """Leases on jobs (batch and streaming ids share one namespace) and the nodes' registry."""

    #: other processes may use the same store (SQLite file, PostgreSQL): poll and renew
    shared: bool

    async def claim(self, job_id: str, owner: str, now: int, ttl_ms: int) -> Lease | None:
        """A new lease (token + 1) when the job is free, expired or already ``owner``'s."""

    async def take_over(self, job_id: str, owner: str, now: int, ttl_ms: int) -> Lease:
        """A new lease (token + 1) for ``owner`` whoever holds the job's: revoke and claim in
        one step, so no third node claims in between (an action on a job running elsewhere)."""

    async def renew(self, lease: Lease, now: int, ttl_ms: int) -> Lease:
        """The lease with a new expiry; ``LeaseLost`` when it is no longer current."""

    async def release(self, lease: Lease) -> None:
        """Give the lease up (nothing happens when it is no longer current)."""

    async def revoke(self, job_id: str) -> None:
        """Take the job's lease away from whoever holds it."""

    async def held(self, owner: str) -> dict[str, int]:
        """Job id -> token of every lease ``owner`` holds now (expired or not)."""

    async def claimable(self, now: int, limit: int) -> list[Candidate]:
        """READY batch jobs and RUNNING ones without a live lease, priority then age."""

    async def heartbeat(self, node: NodeInfo) -> None:
        """Register or refresh a node."""

    async def nodes(self) -> list[NodeInfo]:
        """Every registered node, by id."""

    async def forget_node(self, node_id: str) -> None:
        """Remove a node and expire its leases at once (it stopped or died)."""

    async def watch(self, work: Callable[[], None], lease: Callable[[], None]) -> None:
        """Call ``work`` when another process makes a job READY and ``lease`` when it revokes
        a lease; stores that cannot tell (SQLite, memory) leave it to the polls."""

    async def record_process(self, process: StepProcess) -> None:
        """Record a step's process group (replacing a record of the same host and pgid)."""

    async def clear_process(self, host: str, pgid: int) -> None:
        """The group is gone (its step ended, or it was killed): drop its record."""

    async def step_processes(self, host: str, job_id: str | None = None) -> list[StepProcess]:
        """The recorded groups of ``host`` (of one job only, if given), oldest first."""
