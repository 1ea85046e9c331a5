"""Helpers shared by the measurements: config, step specs, percentiles, a step-timing clock."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio

from engine.clock import SystemClock, monotonic
from engine.config import Config, load_config
from engine.core.jobs import Family, Mode, StepSpec
from engine.core.states import State
from engine.facade import Engine
from steps.base import Profile

#: zero time and no output: the peers' "noop" step (the shipped ``instant`` profile prints lines)
NOOP_PROFILE: Final = Profile(name="bench-noop", min_seconds=0.0, max_seconds=0.0, output_lines=0)
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
FINAL_STATES: Final = frozenset({State.SUCCEED, State.ERROR, State.DISCARDED, State.STOPPED})


def bench_config(workdir: Path, **overrides: Any) -> Config:
    """The shipped config, ``KJOBS_*`` ignored, with the bench's noop profile and ``overrides``."""
    values: dict[str, Any] = {
        "kjobs.store": str(workdir / "kjobs.sqlite"),
        "kjobs.workdir": str(workdir / "work"),
    }
    values.update(overrides)
    config = load_config(environ={}, overrides=values)
    return with_profile(config, NOOP_PROFILE)


def with_profile(config: Config, profile: Profile) -> Config:
    """``config`` with one more executor profile in its catalog."""
    profiles = {**config.catalog.profiles, profile.name: profile}
    return dataclasses.replace(
        config, catalog=dataclasses.replace(config.catalog, profiles=profiles)
    )


def noop_steps(
    count: int, family: Family = Family.METADATA, profile: str = NOOP_PROFILE.name
) -> list[StepSpec]:
    """``count`` simulated steps of ``profile`` (default: zero duration, no output)."""
    return [
        StepSpec(f"step {i}", "bench", family, Mode.SIMULATED, profile=profile)
        for i in range(count)
    ]


def shell_steps(count: int, command: str = "true") -> list[StepSpec]:
    """``count`` real shell steps running ``command``."""
    return [
        StepSpec(f"shell {i}", "bench", Family.SHELL, Mode.REAL, exec_cmd=command)
        for i in range(count)
    ]


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (``pct`` in 0..100) of ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def rounded(value: float | None, digits: int = 1) -> float | None:
    """``value`` rounded for the report (None stays None)."""
    return None if value is None else round(value, digits)


async def wait_all_final(engine: Engine, count: int, poll_s: float = 0.002) -> dict[State, int]:
    """Wait until ``count`` jobs are in final states; their counts by state.

    Polls the scheduler's slot count in memory and confirms with one count query, so that
    waiting adds no event subscription (and no fan-out cost) to the engine being measured.
    """
    while True:
        await anyio.sleep(poll_s)
        if engine.scheduler.running_jobs:
            continue
        counts = await engine.store.count_by_state()
        if sum(n for state, n in counts.items() if state in FINAL_STATES) >= count:
            return counts


class StepTimingClock(SystemClock):
    """The system clock, noting when each ``sleep`` starts and ends (``monotonic`` seconds).

    A zero-duration simulated step spends its time with exactly one ``clock.sleep(0)``
    (``steps.simulated.spend``), so for one job running alone the entries and exits of these
    sleeps are the starts and ends of its steps' work, seen from inside the executor.
    """

    def __init__(self) -> None:
        self.entered: list[float] = []
        self.left: list[float] = []
        self._target = 0
        self._reached = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        """Sleep as the system clock does, noting when."""
        self.entered.append(monotonic())
        await anyio.sleep(max(0.0, seconds))
        self.left.append(monotonic())
        if len(self.left) == self._target:
            self._reached.set()

    def expect(self, sleeps: int) -> anyio.Event:
        """Forget what was noted; the event is set once ``sleeps`` sleeps have ended."""
        self.entered.clear()
        self.left.clear()
        self._target = sleeps
        self._reached = anyio.Event()
        return self._reached


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": sys.platform,
    }
