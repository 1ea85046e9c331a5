"""Frozen records of batch jobs and steps, and the fields SPEC §3 derives from them.

A change never mutates a record: ``evolve`` returns a new one. Times are epoch milliseconds on
the engine's clock; 0 means "unset", as in Kylin.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self, TypeVar, cast

from engine.core.errors import StepNotFound
from engine.core.states import SegmentStatus, State
from engine.core.timefmt import COMPACT, format_utc


class Family(StrEnum):
    """The executor family a step runs in (SPEC §4)."""

    SHELL = "shell"
    MAPREDUCE = "mapreduce"
    BULKLOAD = "bulkload"
    METADATA = "metadata"


class Mode(StrEnum):
    """Whether a step does the real thing or follows a simulated profile."""

    REAL = "real"
    SIMULATED = "simulated"


@dataclass(frozen=True, slots=True)
class StepSpec:
    """What a template says about a step: fixed once the job is submitted."""

    name: str
    cmd_type: str
    family: Family
    mode: Mode = Mode.SIMULATED
    exec_cmd: str | None = None  #: already substituted (parameters shell-quoted)
    interrupt_cmd: str | None = None
    profile: str = "default"  #: simulated behaviour (config ``profiles``)
    timeout_s: float | None = None  #: real shell steps: kill after this long
    #: a metadata action the engine applies when the step succeeds, e.g. "update_cube_info"
    action: str | None = None
    #: family-specific settings (bulk-load source/target dirs, ...), values are strings
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def run_async(self) -> bool:
        """Kylin marks MR steps as asynchronous."""
        return self.family is Family.MAPREDUCE


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a job: its spec plus what has happened to it."""

    job_id: str
    sequence: int  #: 0-based position in the job; the step id is ``{job_id}-{sequence:02d}``
    spec: StepSpec
    state: State = State.READY
    start_time: int = 0  #: epoch ms of the latest attempt's start; 0 if never started
    end_time: int = 0  #: epoch ms of the end; 0 while not ended
    wait_time: int = 0  #: ms the step waited in the (simulated) YARN queue
    info: Mapping[str, str] = field(default_factory=dict)  #: string -> string, as Kylin
    #: runs started so far; outputs are stored per attempt and the latest one is shown
    attempts: int = 0
    retries: int = 0  #: automatic retries used by the current run (reset by resume)
    #: set by crash recovery: the next run may re-attach to work still alive (simulated YARN)
    reattach: bool = False

    @property
    def id(self) -> str:
        """Kylin's step id: the job id and the zero-padded sequence."""
        return step_id(self.job_id, self.sequence)

    @property
    def name(self) -> str:
        """The step's display name."""
        return self.spec.name

    @property
    def exec_wait_s(self) -> int:
        """SPEC §3 ``exec_wait_time``: an MR step's queue wait in seconds, 0 for others."""
        return self.wait_time // 1000 if self.spec.family is Family.MAPREDUCE else 0

    def evolve(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied."""
        return _evolve(self, changes)


_R = TypeVar("_R")
_COPIERS: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}


def _evolve(record: _R, changes: dict[str, Any]) -> _R:
    """``dataclasses.replace`` for these records, about three times as fast.

    The records have no ``__post_init__`` and no init-only fields, so copying the fields is
    all ``replace`` does; an unknown name is refused as ``replace`` refuses it. The copier of
    each class is generated once: one slot write per field, no loop, no ``getattr``.
    """
    copier = _COPIERS.get(type(record))
    if copier is None:
        copier = _COPIERS[type(record)] = _make_copier(type(record))
    return cast(_R, copier(record, changes))


def _make_copier(cls: type) -> Callable[[Any, dict[str, Any]], Any]:
    names = [f.name for f in dataclasses.fields(cls)]
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls, "known": frozenset(names)}
    lines = ["def copy(r, c):", "    if not known.issuperset(c):", "        unknown(c)"]
    lines.append("    o = new(cls)")
    for index, name in enumerate(names):
        scope[f"set{index}"] = _setter(cls, name)
        lines.append(f"    set{index}(o, c[{name!r}] if {name!r} in c else r.{name})")
    lines.append("    return o")

    def unknown(changes: dict[str, Any]) -> None:
        name = next(n for n in changes if n not in scope["known"])
        raise TypeError(f"{cls.__name__}.evolve() got an unexpected field {name!r}")

    scope["unknown"] = unknown
    exec("\n".join(lines), scope)  # made from the class's own field names
    return cast(Callable[[Any, dict[str, Any]], Any], scope["copy"])


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The slot's own descriptor (a frozen record refuses ``setattr``), else the generic one."""
    descriptor = inspect.getattr_static(cls, name, None)
    if isinstance(descriptor, types.MemberDescriptorType):
        return descriptor.__set__
    return lambda record, value: object.__setattr__(record, name, value)


def step_id(job_id: str, sequence: int) -> str:
    """``{job_id}-{NN}``: two digits, zero padded."""
    return f"{job_id}-{sequence:02d}"


def split_step_id(text: str) -> tuple[str, int] | None:
    """``{jobId}-NN``, or the seed's unpadded ``{jobId}-N``, as (job id, sequence); else None."""
    job_id, dash, sequence = text.rpartition("-")
    if not dash or not job_id or not sequence.isdigit():
        return None
    return job_id, int(sequence)


def step_sequence(job: Job, step_id: str) -> int:
    """The sequence of ``job``'s step ``{jobId}-NN`` (or the seed's unpadded ``{jobId}-N``);
    ``StepNotFound`` when it names no step of the job."""
    parsed = split_step_id(step_id)
    if parsed is not None and parsed[0] == job.id and parsed[1] < len(job.steps):
        return parsed[1]
    raise StepNotFound(job.id, step_id)


@dataclass(frozen=True, slots=True)
class Segment:
    """A cube segment: a range ``[start, end)`` that a build makes READY (SPEC §2.2)."""

    uuid: str
    cube: str
    name: str
    start: int
    end: int
    status: str = SegmentStatus.NEW  #: NEW -> READY
    #: merged segments remember the segments they replaced (removed when the merge lands)
    merged_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    """A batch job: an ordered chain of steps with Kylin's bookkeeping."""

    id: str
    name: str
    project: str
    cube: str
    build_type: str  #: BUILD / MERGE / REFRESH (the REST ``type`` is always "BUILD")
    segment: Segment
    submitter: str
    priority: int  #: larger first; BUILD 20, MERGE 25, REFRESH 20, plus priorityOffset
    steps: tuple[Step, ...]
    state: State = State.READY
    create_time: int = 0  #: submission time
    last_modified: int = 0  #: epoch ms of the last write to the job's state
    start_time: int = 0  #: first pickup, kept across resumes
    end_time: int = 0  #: set on SUCCEED/ERROR/STOPPED/DISCARDED, cleared by resume
    interrupt_time: int = 0  #: accumulated ms between an end and a resume
    build_instance: str = "unknown"  #: ``pid@host`` of the engine that last ran it
    #: optimistic concurrency (Kylin's mvcc): every stored write increments it by one
    version: int = 0
    params: Mapping[str, str] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied."""
        return _evolve(self, changes)

    def with_step(self, step: Step) -> Self:
        """A copy with ``step`` replacing the step of the same sequence."""
        steps = list(self.steps)
        steps[step.sequence] = step
        return dataclasses.replace(self, steps=tuple(steps))

    def step(self, sequence: int) -> Step:
        """The step at ``sequence`` (IndexError when there is none)."""
        if not 0 <= sequence < len(self.steps):
            raise IndexError(sequence)
        return self.steps[sequence]

    def first_step_in(self, *states: State) -> Step | None:
        """The first step (by sequence) whose state is one of ``states``."""
        return next((s for s in self.steps if s.state in states), None)

    @property
    def current_step(self) -> Step | None:
        """The step that runs, or would run next: the first step not SUCCEED."""
        return next((s for s in self.steps if s.state is not State.SUCCEED), None)

    # -- derived fields of SPEC §3 ------------------------------------------------------------

    def duration_s(self, now: int) -> int:
        """Seconds: 0 if never started, else ``(end or now) - start - interrupt``, // 1000."""
        if not self.start_time:
            return 0
        end = self.end_time or now
        return max(0, end - self.start_time - self.interrupt_time) // 1000

    @property
    def progress(self) -> float:
        """``100 * finished steps / all steps``."""
        if not self.steps:
            return 0.0
        done = sum(1 for s in self.steps if s.state is State.SUCCEED)
        return 100.0 * done / len(self.steps)

    @property
    def mr_waiting_s(self) -> int:
        """Queue-wait seconds of the MR steps before the first step that is not SUCCEED."""
        waited = 0
        for s in self.steps:
            if s.state is not State.SUCCEED:
                break
            if s.spec.family is Family.MAPREDUCE:
                waited += s.wait_time
        return waited // 1000


def segment_name(start: int, end: int) -> str:
    """Kylin's segment name: ``{start:yyyyMMddHHmmss}_{end:yyyyMMddHHmmss}`` in UTC."""
    return f"{format_utc(start, COMPACT)}_{format_utc(end, COMPACT)}"


FULL_BUILD_END = 2**63 - 1  #: ``endTime`` of a full build (startTime 0 and endTime 0)
