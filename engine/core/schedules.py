"""Scheduled builds (SPEC §11) as pure functions: the range each run builds, and what a schedule
does when slots come due (overlap and catch-up). The runtime is ``engine.ops.schedules``.

Slots are instants on the engine's clock: the matches of a cron expression in UTC, or the
multiples of ``interval_s`` since the epoch. A ``Timing`` answers where they are: intervals are
plain arithmetic (``IntervalTiming``, here); cron expressions need a cron library, so their
timing is an adapter (``engine.clock.slots``). The run at slot *t* builds ``[previous slot, t)``.
The job a slot creates has an id derived from the schedule and the slot, so however many
engines see the slot come due, the store accepts one job for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol, Self

from engine.core.errors import InvalidRequest
from engine.core.jobs import _evolve
from engine.core.segments import BUILD_TYPES
from engine.core.states import CatchUp, Overlap

_JOB_NAMESPACE: Final = uuid.UUID("c2a7f0e4-3d51-4f0c-a8f6-1d2b9e7c5a30")
MAX_CATCH_UP: Final = 10_000  #: missed slots looked at after an outage, at most
#: the ``submitter`` of a scheduled job: this prefix and the schedule's name
SCHEDULE_SUBMITTER: Final = "schedule:"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A stored schedule: what to build when, and where it stands."""

    name: str
    cube: str
    project: str
    cron: str | None  #: exactly one of ``cron`` and ``interval_s`` is set
    interval_s: int | None
    build_type: str = "BUILD"
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.NONE
    paused: bool = False
    next_fire_time: int | None = None  #: epoch ms of the next slot; None while paused
    last_job_id: str | None = None
    create_time: int = 0  #: epoch ms; part of every job id (a re-created schedule starts anew)
    version: int = 0  #: compare-and-set: +1 on every stored write

    def evolve(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied."""
        return _evolve(self, changes)


class Timing(Protocol):
    """Where a schedule's slots are (epoch ms)."""

    def next_slot(self, after: int) -> int:
        """The first slot strictly after ``after``."""

    def previous_slot(self, slot: int) -> int:
        """The last slot strictly before ``slot``."""


@dataclass(frozen=True, slots=True)
class IntervalTiming:
    """Every ``interval_s`` seconds, aligned to the epoch."""

    interval_s: int

    def next_slot(self, after: int) -> int:
        """The next multiple of the interval after ``after``."""
        step = self.interval_s * 1000
        return (after // step + 1) * step

    def previous_slot(self, slot: int) -> int:
        """One interval before ``slot``."""
        return slot - self.interval_s * 1000


@dataclass(frozen=True, slots=True)
class Run:
    """One job to create: the range ``[start, end)`` for the slot ``slot``."""

    slot: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What a schedule does now: the runs to create, then its new ``next_fire_time``."""

    runs: tuple[Run, ...]
    next_fire_time: int | None
    skipped: int = 0  #: slots that get no run (overlap skip, catch-up none)
    waiting: bool = False  #: overlap queue: the due slot waits for the last job to end


def new_schedule(
    name: str,
    cube: str,
    project: str,
    *,
    cron: str | None,
    interval_s: int | None,
    timing: Timing,
    now: int,
    build_type: str = "BUILD",
    overlap: str = Overlap.SKIP,
    catch_up: str = CatchUp.NONE,
    paused: bool = False,
) -> Schedule:
    """A checked new schedule (``InvalidRequest`` for bad input), its first slot after ``now``
    (``timing``: its slots, from ``engine.clock.slots.timing``, which checks the cron)."""
    if not name or not name.strip():
        raise InvalidRequest("A schedule needs a non-empty name")
    if build_type not in BUILD_TYPES:
        raise InvalidRequest(f"build_type must be one of {', '.join(BUILD_TYPES)}: {build_type!r}")
    schedule = Schedule(
        name=name,
        cube=cube,
        project=project,
        cron=cron,
        interval_s=interval_s,
        build_type=build_type,
        overlap=_choice(Overlap, overlap, "overlap"),
        catch_up=_choice(CatchUp, catch_up, "catch_up"),
        paused=paused,
        create_time=now,
    )
    check_choice(cron, interval_s)
    return schedule.evolve(next_fire_time=None if paused else timing.next_slot(now))


def _choice(kind: type[Overlap] | type[CatchUp], value: str, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(m.value for m in kind)
        raise InvalidRequest(f"{field} must be one of {names}: {value!r}") from None


def check_choice(cron: str | None, interval_s: int | None) -> None:
    """Exactly one of ``cron`` and ``interval_s``, and ``interval_s`` at least 1."""
    if (cron is None) == (interval_s is None):
        raise InvalidRequest("A schedule needs exactly one of cron and interval_s")
    if interval_s is not None and (isinstance(interval_s, bool) or interval_s < 1):
        raise InvalidRequest(f"interval_s must be at least 1: {interval_s!r}")


def due_slots(schedule: Schedule, timing: Timing, now: int) -> list[int]:
    """The slots from ``next_fire_time`` up to ``now``, oldest first (at most ``MAX_CATCH_UP``)."""
    return list(_slots(schedule, timing, now))


def _slots(schedule: Schedule, timing: Timing, now: int) -> Iterator[int]:
    slot = schedule.next_fire_time
    for _ in range(MAX_CATCH_UP):
        if slot is None or slot > now:
            return
        yield slot
        slot = timing.next_slot(slot)


def run_for(timing: Timing, slot: int) -> Run:
    """The run at ``slot``: it builds ``[previous slot, slot)``."""
    return Run(slot, timing.previous_slot(slot), slot)


def plan(
    schedule: Schedule, timing: Timing, now: int, *, last_active: bool, catching_up: bool
) -> Plan | None:
    """What ``schedule`` does at ``now``; None when nothing is due (or it is paused).

    ``last_active``: its last job has not ended. ``catching_up``: the first look after the
    engine started, when every due slot was missed while no engine ran (``catch_up`` decides;
    the overlap policy is for slots that come due while an engine runs).
    """
    due = [] if schedule.paused else due_slots(schedule, timing, now)
    if not due:
        return None
    after = timing.next_slot(max(now, due[-1]))
    if catching_up:
        if schedule.catch_up is CatchUp.ALL:
            return Plan(tuple(run_for(timing, s) for s in due), after)
        if schedule.catch_up is CatchUp.LAST:  # one run over the whole missed range
            run = Run(due[-1], timing.previous_slot(due[0]), due[-1])
            return Plan((run,), after, skipped=len(due) - 1)
        return Plan((), after, skipped=len(due))
    if last_active:
        if schedule.overlap is Overlap.QUEUE:
            return Plan((), schedule.next_fire_time, waiting=True)
        return Plan((), after, skipped=len(due))
    return Plan((run_for(timing, due[0]),), timing.next_slot(due[0]))


def submitter(schedule: Schedule) -> str:
    """Who submits the schedule's jobs: ``schedule:{name}``."""
    return f"{SCHEDULE_SUBMITTER}{schedule.name}"


def slot_job_id(schedule: Schedule, slot: int) -> str:
    """The id of the job ``schedule`` creates for ``slot``: the same on every engine."""
    key = f"{schedule.name}/{schedule.create_time}/{slot}"
    return str(uuid.uuid5(_JOB_NAMESPACE, key))


def paused(schedule: Schedule) -> Schedule:
    """The schedule paused: no slot is next."""
    return schedule.evolve(paused=True, next_fire_time=None)


def resumed(schedule: Schedule, timing: Timing, now: int) -> Schedule:
    """The schedule running again from the first slot after ``now`` (paused slots are lost)."""
    return schedule.evolve(paused=False, next_fire_time=timing.next_slot(now))
