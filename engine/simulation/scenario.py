"""Scenario files: what happens, and when, in a simulated run (``config/scenarios/*.toml``).

A scenario says how long to run, which builds arrive when (fixed times, a fixed period or a
seeded Poisson rate), which steps fail with what probability, what an operator does at given
times (pause/resume/discard/restart jobs of a cube, START/STOP/FORCE_STOP/RESTART streaming
jobs) and which streaming models run at what source rate. The shipped scenarios document every
key in their comments.

Every problem is ONE ``ConfigError`` naming the file, the dotted key and the reason: first the
file alone (``load_scenario``), then against the catalog (``engine.simulation.plan.check``).
Durations are written ``"90s"``, ``"15m"``, ``"2h"``, ``"1h30m"``, ``"1d"``, or a number of
seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from engine.catalog.schedules import ScheduleSpec, read_schedules
from engine.clock.virtual import DEFAULT_START_MS
from engine.config.toml import Reader, non_empty, non_negative, one_of, positive, read_toml
from engine.core.segments import BUILD_TYPES
from engine.core.states import BuildType, Operation, StreamingAction
from engine.core.timefmt import parse_iso

#: operator actions on batch jobs (Kylin's operations that a running job can be given)
_BATCH: Final = (Operation.PAUSE, Operation.RESUME, Operation.DISCARD, Operation.RESTART)
BATCH_ACTIONS: Final = tuple(o.value for o in _BATCH)
STREAMING_ACTIONS: Final = tuple(a.value for a in StreamingAction)
STREAMING_JOBS: Final = ("build", "merge")
_DURATION: Final = re.compile("^" + "".join(rf"(?:(\d+(?:\.\d+)?){u})?" for u in "dhms") + "$")
_UNITS: Final = (86_400.0, 3_600.0, 60.0, 1.0)


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Builds of one cube arriving over the run."""

    key: str  #: where it was written (for messages), e.g. ``arrivals[0]``
    cube: str
    build_type: str = BuildType.BUILD
    at: tuple[float, ...] = ()  #: fixed times, seconds from the start
    every_s: float | None = None  #: a fixed period
    rate_per_hour: float | None = None  #: a seeded Poisson process
    from_s: float = 0.0  #: periodic and Poisson arrivals start here
    until_s: float | None = None  #: ... and stop before here (default: the end)
    limit: int | None = None  #: at most this many arrivals
    segment_s: float = 3_600.0  #: BUILD: each build covers the next this-long range of data
    priority_offset: int = 0


@dataclass(frozen=True, slots=True)
class FailureRule:
    """Simulated steps whose name matches ``step`` fail with ``probability`` per attempt."""

    key: str
    step: str  #: a step name or a glob (``Build N-Dimension Cuboid*``)
    probability: float
    cube: str = "*"  #: a cube name or a glob


@dataclass(frozen=True, slots=True)
class Action:
    """An operator action at a given time."""

    key: str
    at_s: float
    action: str
    cube: str | None = None  #: batch: every job of matching cubes the action is allowed on
    streaming: str | None = None  #: streaming: a model alias (or glob) of the scenario's models
    jobs: tuple[str, ...] = STREAMING_JOBS  #: streaming: which of the model's jobs


@dataclass(frozen=True, slots=True)
class Operator:
    """Standing habits of the operator."""

    resume_errors_after_s: float | None = None  #: resume every ERROR job this long after
    max_resumes: int = 3  #: ... but no job more often than this


@dataclass(frozen=True, slots=True)
class StreamingRun:
    """A streaming model of the catalog run in the simulation (``copies`` > 1 clones it)."""

    key: str
    model: str  #: alias of a catalog streaming model
    copies: int = 1  #: clones named ``{alias}_001`` ... (each its own source and jobs)
    rate_per_s: float | None = None  #: override of the model's source rate
    lag_s: float | None = None
    batch_s: int | None = None  #: ``kylin.streaming.duration`` of its jobs
    start_s: float | None = 0.0  #: when START is sent to its jobs (None: never)
    jobs: tuple[str, ...] = STREAMING_JOBS  #: which jobs START starts
    fail_at_batches: tuple[int, ...] = ()  #: these micro-batches / merge passes fail
    retry: bool | None = None  #: ``kylin.streaming.job-retry-enabled`` of its jobs
    params: Mapping[str, str] = field(default_factory=dict)  #: more job params


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole scenario file, checked on its own (not yet against a catalog)."""

    name: str
    file: str  #: where it came from (for messages)
    description: str = ""
    start_ms: int = DEFAULT_START_MS  #: virtual wall-clock time at the start
    duration_s: float = 6 * 3_600.0
    seed: int = 0
    engine: Mapping[str, object] = field(default_factory=dict)  #: setting overrides
    arrivals: tuple[Arrivals, ...] = ()
    failures: tuple[FailureRule, ...] = ()
    actions: tuple[Action, ...] = ()
    operator: Operator = field(default_factory=Operator)
    streaming: tuple[StreamingRun, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()  #: ``[[schedules]]`` as in catalog.toml

    @property
    def end_ms(self) -> int:
        """When the run ends (epoch ms)."""
        return self.start_ms + round(self.duration_s * 1000)


def parse_duration(value: object) -> float | None:
    """Seconds of ``"1h30m"``-style text or a number; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    match = _DURATION.match(value.strip().lower())
    if match is None or not any(match.groups()):
        return None
    return sum(float(g) * unit for g, unit in zip(match.groups(), _UNITS, strict=True) if g)


class _Reader(Reader):
    """``Reader`` plus raw values (durations are strings or numbers)."""

    def raw(self, name: str) -> object:
        """The value as TOML gave it (None when absent); the key counts as known."""
        self._seen.add(name)
        return self.data.get(name)

    def table(self, name: str) -> _Reader:
        """A sub-table (empty when absent)."""
        t = super().table(name)
        return _Reader(t.file, t.prefix, t.data)

    def tables(self, name: str) -> list[_Reader]:  # type: ignore[override]
        """An array of tables, empty when absent."""
        return [_Reader(t.file, t.prefix, t.data) for t in super().tables(name)]


def _duration(r: _Reader, name: str, default: Any = None) -> Any:
    """A duration key; ``default`` when absent."""
    raw = r.raw(name)
    if raw is None:
        return default
    seconds = parse_duration(raw)
    if seconds is None:
        raise r.error(
            name, f'must be a duration like "90s", "15m", "2h30m" or seconds, got {raw!r}'
        )
    return seconds


def _durations(r: _Reader, name: str) -> tuple[float, ...]:
    raw = r.raw(name) or []
    if not isinstance(raw, list):
        raise r.error(name, f"must be an array of durations, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        seconds = parse_duration(item)
        if seconds is None:
            raise r.error(f"{name}[{i}]", f'must be a duration like "10m", got {item!r}')
        out.append(seconds)
    return tuple(sorted(out))


def load_scenario(path: Path | str) -> Scenario:
    """Read and check a scenario file; ``ConfigError(file, key, reason)`` on any problem."""
    file = Path(path)
    root = _Reader(str(file), "", read_toml(file))
    sim = root.table("simulation")
    name = sim.string("name", file.stem, non_empty)
    description = sim.string("description", "")
    start_text = sim.string("start", "2024-01-01T00:00:00Z", non_empty)
    try:
        start_ms = parse_iso(start_text)
    except ValueError:
        raise sim.error("start", f"must be an ISO 8601 time, got {start_text!r}") from None
    duration_s = _duration(sim, "duration", 6 * 3_600.0)
    if duration_s <= 0:
        raise sim.error("duration", "must be longer than 0")
    seed = sim.integer("seed", 0)
    sim.done()
    scenario = Scenario(
        name=name,
        file=str(file),
        description=description,
        start_ms=start_ms,
        duration_s=duration_s,
        seed=seed,
        engine=_engine(root),
        arrivals=tuple(_arrivals(r) for r in root.tables("arrivals")),
        failures=tuple(_failure(r) for r in root.tables("failures")),
        actions=tuple(sorted((_action(r) for r in root.tables("actions")), key=_when)),
        operator=_operator(root.table("operator")),
        streaming=tuple(_streaming(r) for r in root.tables("streaming")),
        schedules=read_schedules(root, None),
    )
    root.done()
    return scenario


def _when(action: Action) -> float:
    return action.at_s


def _engine(root: _Reader) -> dict[str, object]:
    """``[engine]``: dotted setting keys of ``engine.toml`` (checked when the config loads)."""
    table = root.table("engine")
    values: dict[str, object] = {}
    for key in table.data:
        value = table.raw(key)
        if isinstance(value, dict):
            raise table.error(key, "must be a value, not a table; write the dotted key in quotes")
        values[key] = value
    return values


def _arrivals(r: _Reader) -> Arrivals:
    rule = Arrivals(
        key=r.prefix,
        cube=r.string("cube", check=non_empty),
        build_type=r.string("type", BuildType.BUILD, one_of(BUILD_TYPES, "build type")),
        at=_durations(r, "at"),
        every_s=_duration(r, "every"),
        rate_per_hour=r.number("rate_per_hour", check=positive) if r.has("rate_per_hour") else None,
        from_s=_duration(r, "from", 0.0),
        until_s=_duration(r, "until"),
        limit=r.integer("limit", check=positive) if r.has("limit") else None,
        segment_s=_duration(r, "segment", 3_600.0),
        priority_offset=r.integer("priority_offset", 0),
    )
    r.done()
    kinds = sum(1 for x in (rule.at, rule.every_s, rule.rate_per_hour) if x)
    if kinds != 1:
        raise r.error("at", 'give exactly one of at = [...], every = "..." or rate_per_hour')
    if rule.every_s is not None and rule.every_s <= 0:
        raise r.error("every", "must be longer than 0")
    if rule.segment_s < 1:
        raise r.error("segment", "must be at least 1 second of data")
    return rule


def _failure(r: _Reader) -> FailureRule:
    rule = FailureRule(
        key=r.prefix,
        step=r.string("step", check=non_empty),
        probability=r.number("probability", check=non_negative),
        cube=r.string("cube", "*", non_empty),
    )
    r.done()
    if rule.probability > 1:
        raise r.error("probability", f"must be a probability in [0, 1], got {rule.probability}")
    return rule


def _action(r: _Reader) -> Action:
    at_s = _duration(r, "at")
    if at_s is None:
        raise r.error("at", "is required")
    action = r.string("action", check=one_of(BATCH_ACTIONS + STREAMING_ACTIONS, "action"))
    cube = r.optional_string("cube", non_empty)
    streaming = r.optional_string("streaming", non_empty)
    jobs = r.strings("jobs", STREAMING_JOBS)
    r.done()
    if (cube is None) == (streaming is None):
        raise r.error("cube", 'give exactly one of cube = "..." or streaming = "..."')
    if cube is not None and action not in BATCH_ACTIONS:
        raise r.error("action", f"a cube's jobs take {', '.join(BATCH_ACTIONS)}, not {action}")
    if streaming is not None and action not in STREAMING_ACTIONS:
        raise r.error("action", f"streaming jobs take {', '.join(STREAMING_ACTIONS)}, not {action}")
    for i, job in enumerate(jobs):
        if job not in STREAMING_JOBS:
            raise r.error(f"jobs[{i}]", f"must be build or merge, got {job!r}")
    return Action(r.prefix, at_s, action, cube, streaming, jobs)


def _operator(r: _Reader) -> Operator:
    operator = Operator(
        resume_errors_after_s=_duration(r, "resume_errors_after"),
        max_resumes=r.integer("max_resumes", 3, non_negative),
    )
    r.done()
    return operator


def _streaming(r: _Reader) -> StreamingRun:
    start = None if r.raw("start") == "never" else _duration(r, "start", 0.0)
    run = StreamingRun(
        key=r.prefix,
        model=r.string("model", check=non_empty),
        copies=r.integer("copies", 1, positive),
        rate_per_s=r.number("rate_per_s", check=non_negative) if r.has("rate_per_s") else None,
        lag_s=r.number("lag_s", check=non_negative) if r.has("lag_s") else None,
        batch_s=r.integer("batch", check=positive) if r.has("batch") else None,
        start_s=start,
        jobs=r.strings("jobs", STREAMING_JOBS),
        fail_at_batches=_batch_numbers(r),
        retry=r.boolean("retry") if r.has("retry") else None,
        params=r.string_map("params", scalars=True),
    )
    r.done()
    for i, job in enumerate(run.jobs):
        if job not in STREAMING_JOBS:
            raise r.error(f"jobs[{i}]", f"must be build or merge, got {job!r}")
    return run


def _batch_numbers(r: _Reader) -> tuple[int, ...]:
    raw = r.raw("fail_at_batches") or []
    if not isinstance(raw, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in raw
    ):
        raise r.error("fail_at_batches", f"must be an array of batch numbers (1, 2, ...): {raw!r}")
    return tuple(raw)
