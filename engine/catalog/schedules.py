"""``[[schedules]]`` of ``catalog.toml`` (and of simulation scenarios): scheduled builds that
exist as soon as the engine starts (SPEC §11).

::

    [[schedules]]
    name = "nightly_sales"
    cube = "kylin_sales_cube"
    cron = "0 2 * * *"          # or interval_s = 3600; exactly one of the two
    build_type = "BUILD"        # BUILD (default), REFRESH or MERGE
    overlap = "skip"            # skip (default) or queue
    catch_up = "none"           # none (default), last or all
    paused = false

The engine creates a declared schedule that the store does not have yet, and brings the
definition of one it has up to date (its paused state and position stay as stored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.clock.slots import timing
from engine.config.toml import Reader, non_empty, one_of
from engine.core.errors import CatalogNotFound, InvalidRequest
from engine.core.segments import BUILD_TYPES
from engine.core.states import BuildType, CatchUp, Overlap


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A schedule as declared: what ``ScheduleService.create`` takes."""

    name: str
    cube: str
    cron: str | None
    interval_s: int | None
    build_type: str = BuildType.BUILD
    overlap: str = Overlap.SKIP.value
    catch_up: str = CatchUp.NONE.value
    paused: bool = False

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``ScheduleService.create`` besides name and cube."""
        return {
            "cron": self.cron,
            "interval_s": self.interval_s,
            "build_type": self.build_type,
            "overlap": self.overlap,
            "catch_up": self.catch_up,
            "paused": self.paused,
        }


def read_schedules(root: Reader, cube_names: Sequence[str] | None) -> tuple[ScheduleSpec, ...]:
    """The ``[[schedules]]`` tables of ``root``, checked (their cubes against ``cube_names``
    unless None: a scenario's are checked against the catalog later)."""
    specs: list[ScheduleSpec] = []
    known = {name.lower(): name for name in cube_names or ()}
    for r in root.tables("schedules"):
        name = r.string("name", check=non_empty)
        if any(s.name == name for s in specs):
            raise r.error("name", f"{name!r} is defined twice")
        cube = r.string("cube", check=non_empty)
        if cube_names is not None and cube.lower() not in known:
            raise r.error("cube", str(CatalogNotFound("cube", cube)))
        spec = ScheduleSpec(
            name=name,
            cube=known.get(cube.lower(), cube),
            cron=r.optional_string("cron"),
            interval_s=r.integer("interval_s") if r.has("interval_s") else None,
            build_type=r.string("build_type", BuildType.BUILD, one_of(BUILD_TYPES, "build_type")),
            overlap=r.string("overlap", "skip", one_of([o.value for o in Overlap], "overlap")),
            catch_up=r.string("catch_up", "none", one_of([c.value for c in CatchUp], "catch_up")),
            paused=r.boolean("paused", False),
        )
        try:
            timing(spec.cron, spec.interval_s)
        except InvalidRequest as exc:
            raise r.error("cron" if spec.cron else "interval_s", str(exc)) from None
        r.done()
        specs.append(spec)
    return tuple(specs)
