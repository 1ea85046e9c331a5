"""Scheduled builds at run time (SPEC §11): managing stored schedules and firing their slots.

The rules (slots, ranges, overlap, catch-up) are pure, in ``engine.core.schedules``. This task
looks at every schedule when the engine starts (catch-up: the slots missed while no engine ran),
then whenever the earliest ``next_fire_time`` comes on the engine's clock, a schedule is created
or resumed, or a job ends (``overlap = queue`` waits for that). Each run is a job whose id is
derived from the schedule and the slot: with several engines on one store, the first to create
it wins and the others find it there, so a slot fires once. The schedule's own row moves on with
compare-and-set; a lost race is re-read on the next look.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskStatus

from engine.catalog import Catalog
from engine.catalog.schedules import ScheduleSpec
from engine.clock import Clock
from engine.clock.slots import timing, timing_of
from engine.core import schedules as rules
from engine.core.errors import (
    ConcurrentModification,
    InvalidRequest,
    JobNotFound,
    KjobsError,
    ScheduleExists,
    ScheduleNotFound,
)
from engine.core.jobs import Job
from engine.core.schedules import Run, Schedule
from engine.core.states import ACTIVE_STATES, BuildType, CatchUp, Overlap
from engine.logging import get_logger
from engine.ops.stats import OpsStats
from engine.store.ports import JobStore

log = get_logger()

#: ``submit(cube, build_type, start, end, job_id=...)``: ``Engine.submit_build``
Submit = Callable[..., Awaitable[Job]]
RETRY_S = 1.0  #: after a failed look (the store is closing or failing), look again this soon
MAX_RACES = 50


class ScheduleService:
    """The schedules of one engine: create, list, pause, resume, delete; ``run`` fires them."""

    def __init__(
        self, store: JobStore, clock: Clock, catalog: Catalog, stats: OpsStats, submit: Submit
    ) -> None:
        self._store = store
        self._clock = clock
        self._catalog = catalog
        self._stats = stats
        self._submit = submit
        self._wake = anyio.Event()
        self._waiting = False  #: a schedule (overlap queue) waits for its last job to end
        self._ends = 0  #: jobs ended so far (one ending during a look must not be missed)

    # -- management ---------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        cube: str,
        *,
        cron: str | None = None,
        interval_s: int | None = None,
        build_type: str = BuildType.BUILD,
        overlap: str = "skip",
        catch_up: str = "none",
        paused: bool = False,
        project: str | None = None,
    ) -> Schedule:
        """Store a new schedule; 404 unknown cube or project, 400 bad timing, 409 name taken."""
        cube_def = self._catalog.cube(cube)
        if project is not None and self._catalog.project(project).name != cube_def.project:
            raise InvalidRequest(f"Cube '{cube_def.name}' is in project '{cube_def.project}'")
        schedule = rules.new_schedule(
            name, cube_def.name, cube_def.project, cron=cron, interval_s=interval_s,
            timing=timing(cron, interval_s), now=self._clock.now_ms(), build_type=build_type,
            overlap=overlap, catch_up=catch_up, paused=paused,
        )  # fmt: skip
        try:
            stored = await self._store.save_schedule(schedule, None)
        except ConcurrentModification:
            raise ScheduleExists(name) from None
        log.info("kjobs.schedule.created", schedule=name, cube=cube_def.name)
        self.wake()
        return stored

    async def list(self) -> list[Schedule]:
        """Every schedule, by name."""
        return await self._store.list_schedules()

    async def get(self, name: str) -> Schedule:
        """The schedule; ``ScheduleNotFound`` when there is none."""
        return await self._store.get_schedule(name)

    async def pause(self, name: str) -> Schedule:
        """No more runs until resumed (``next_fire_time`` null)."""
        return await self._change(name, rules.paused)

    async def resume(self, name: str) -> Schedule:
        """Runs again from the next slot to come (the paused slots are not caught up)."""
        return await self._change(name, lambda s: s if not s.paused else rules.resumed(
            s, timing_of(s), self._clock.now_ms()))  # fmt: skip

    async def delete(self, name: str) -> Schedule:
        """Delete the schedule (its jobs stay); returns it as it was."""
        schedule = await self._store.get_schedule(name)
        await self._store.delete_schedule(name)
        log.info("kjobs.schedule.deleted", schedule=name)
        return schedule

    async def _change(self, name: str, change: Callable[[Schedule], Schedule]) -> Schedule:
        for _ in range(MAX_RACES):
            current = await self._store.get_schedule(name)
            new = change(current)
            if new == current:
                return current
            try:
                stored = await self._store.save_schedule(new, current.version)
            except ConcurrentModification:
                continue
            self.wake()
            return stored
        raise ConcurrentModification(name, -1)

    async def declare(self, specs: Sequence[ScheduleSpec]) -> None:
        """The catalog's schedules: created when missing, their definition brought up to date."""
        for spec in specs:
            try:
                current = await self._store.get_schedule(spec.name)
            except ScheduleNotFound:
                with contextlib.suppress(ScheduleExists):  # another engine declared it first
                    await self.create(spec.name, spec.cube, **spec.options())
                continue
            await self._redefine(current, spec)

    async def _redefine(self, current: Schedule, spec: ScheduleSpec) -> None:
        wanted = spec.options()
        fields: dict[str, Any] = {k: wanted[k] for k in ("cron", "interval_s", "build_type")}
        fields.update(cube=spec.cube, overlap=Overlap(wanted["overlap"]),
                      catch_up=CatchUp(wanted["catch_up"]))  # fmt: skip
        new = current.evolve(**fields)
        if new == current:
            return
        if not new.paused:
            new = new.evolve(next_fire_time=timing_of(new).next_slot(self._clock.now_ms()))
        try:
            await self._store.save_schedule(new, current.version)
        except ConcurrentModification:
            return  # another engine redefined it meanwhile
        log.info("kjobs.schedule.redefined", schedule=spec.name)

    # -- firing -------------------------------------------------------------------------------

    def wake(self) -> None:
        """A schedule changed: look at the schedules again."""
        self._wake.set()

    def job_ended(self) -> None:
        """A job ended: look again if a queued slot waits for one (else nothing to do)."""
        self._ends += 1
        if self._waiting:
            self._wake.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Fire due slots until cancelled; the first look catches up after downtime."""
        task_status.started()
        catching_up = True
        while True:
            self._wake = anyio.Event()
            try:
                next_due = await self._look(catching_up)
                catching_up = False
            except Exception as exc:  # a failing store must not end the engine
                log.warning("kjobs.schedule.look_failed", error=repr(exc))
                next_due = self._clock.now_ms() + round(RETRY_S * 1000)
            await self._idle(next_due)

    async def _look(self, catching_up: bool) -> int | None:
        """Fire what is due on every schedule; when the next one comes due (None: none)."""
        soonest: int | None = None
        self._waiting, ends = False, self._ends
        for schedule in await self._store.list_schedules():
            when = await self._tick(schedule, catching_up)
            if when is not None and (soonest is None or when < soonest):
                soonest = when
        if self._waiting and self._ends != ends:
            self._wake.set()  # the job a slot waits for may have ended while we looked
        return soonest

    async def _tick(self, schedule: Schedule, catching_up: bool) -> int | None:
        now = self._clock.now_ms()
        active = await self._active(schedule.last_job_id)
        plan = rules.plan(
            schedule, timing_of(schedule), now, last_active=active, catching_up=catching_up
        )
        if plan is None:
            return schedule.next_fire_time
        if plan.waiting:
            self._waiting = True
            return None  # a job end wakes the loop
        last = schedule.last_job_id
        for run in plan.runs:
            last = await self._fire(schedule, run)
        if plan.skipped:
            self._stats.schedule_skips += plan.skipped
            log.info("kjobs.schedule.skipped", schedule=schedule.name, slots=plan.skipped,
                     reason="catch_up" if catching_up else "overlap")  # fmt: skip
        new = schedule.evolve(next_fire_time=plan.next_fire_time, last_job_id=last)
        try:
            await self._store.save_schedule(new, schedule.version)
        except (ConcurrentModification, ScheduleNotFound):
            return now  # another engine moved it on (or it was deleted): look again
        return new.next_fire_time

    async def _fire(self, schedule: Schedule, run: Run) -> str:
        """Create the slot's job unless it exists; its id either way."""
        job_id = rules.slot_job_id(schedule, run.slot)
        if await self._exists(job_id):
            return job_id
        try:
            await self._submit(schedule.cube, schedule.build_type, run.start, run.end,
                               job_id=job_id, submitter=rules.submitter(schedule))  # fmt: skip
        except KjobsError as exc:
            if not isinstance(exc, ConcurrentModification) and not await self._exists(job_id):
                self._stats.schedule_skips += 1
                log.warning("kjobs.schedule.fire_failed", schedule=schedule.name,
                            slot=run.slot, error=str(exc))  # fmt: skip
            return job_id
        self._stats.schedule_runs += 1
        log.info("kjobs.schedule.fired", schedule=schedule.name, job_id=job_id,
                 start=run.start, end=run.end)  # fmt: skip
        return job_id

    async def _exists(self, job_id: str) -> bool:
        try:
            await self._store.get_job(job_id)
        except JobNotFound:
            return False
        return True

    async def _active(self, job_id: str | None) -> bool:
        if job_id is None:
            return False
        try:
            job = await self._store.get_job(job_id)
        except JobNotFound:
            return False
        return job.state in ACTIVE_STATES

    async def _idle(self, next_due: int | None) -> None:
        """Wait for a wake-up or until ``next_due`` (epoch ms on the engine clock)."""
        async with anyio.create_task_group() as tg:

            async def woken() -> None:
                await self._wake.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(woken)
            if next_due is not None:
                await self._clock.sleep(max(0.0, (next_due - self._clock.now_ms()) / 1000))
                tg.cancel_scope.cancel()
