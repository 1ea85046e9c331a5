"""A scenario checked against a config, and what it changes for the run.

``prepare(scenario, config_dir, seed)`` loads the config with the run's settings (virtual time
needs ``time-scale`` 1, a seed, an in-memory store by default), checks every name the scenario
uses against the catalog, refuses cubes whose templates run real commands, turns failure rules
into executor profiles, and expands streaming models (clones, rates). Errors are one
``ConfigError`` naming the scenario file, key and reason.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from engine.catalog import Catalog, Cube, step_profile
from engine.catalog.templates import Template, TemplateStep, plain_substitute
from engine.config import Config, load_config
from engine.core import cubing
from engine.core.errors import CatalogNotFound, ConfigError
from engine.core.jobs import Mode
from engine.core.states import BuildType
from engine.simulation.scenario import Arrivals, Scenario, StreamingRun
from engine.streaming.source import StreamingModelSpec, spec_from_catalog

#: settings every simulated run uses, whatever the config says
RUN_SETTINGS: Final[dict[str, object]] = {
    "kjobs.time-scale": 1.0,  # the virtual clock IS simulated time
    "kjobs.node-id": "kjobs-simulator",  # build_instance must not depend on pid and host
}


@dataclass(frozen=True)
class Plan:
    """Everything a run needs: the scenario, the config to run with, the streaming models."""

    scenario: Scenario
    config: Config
    seed: int
    streaming: tuple[StreamingModelSpec, ...]  #: every model the run's streaming service has
    started: tuple[tuple[float, str], ...]  #: (seconds from start, job id) of START actions


def prepare(
    scenario: Scenario,
    config_dir: Path | str | None = None,
    *,
    seed: int | None = None,
    hours: float | None = None,
    environ: dict[str, str] | None = None,
) -> Plan:
    """Load the config for ``scenario`` and check the scenario against it."""
    if hours is not None:
        if hours <= 0:
            raise ConfigError("command line", "--hours", f"must be greater than 0, got {hours}")
        scenario = dataclasses.replace(scenario, duration_s=hours * 3_600.0)
    run_seed = scenario.seed if seed is None else seed
    config = _load(scenario, config_dir, run_seed, environ)
    catalog = config.catalog
    for rule in scenario.arrivals:
        _check_cube(scenario, rule, catalog)
    for action in scenario.actions:
        if action.cube is not None and not _matching_cubes(catalog, action.cube):
            raise ConfigError(scenario.file, f"{action.key}.cube", _no_cube(action.cube, catalog))
    catalog = _with_schedules(scenario, _with_failures(scenario, catalog))
    specs, started = _streaming(scenario, catalog)
    _check_streaming_actions(scenario, specs)
    return Plan(scenario, dataclasses.replace(config, catalog=catalog), run_seed, specs, started)


def _load(
    scenario: Scenario, config_dir: Path | str | None, seed: int, environ: dict[str, str] | None
) -> Config:
    overrides = {
        **scenario.engine,
        **RUN_SETTINGS,
        "kjobs.seed": seed,
        "kjobs.store": ":memory:",
    }
    try:
        return load_config(config_dir, environ=environ or {}, overrides=overrides)
    except ConfigError as exc:
        if exc.file == "overrides" and exc.key in scenario.engine:
            raise ConfigError(scenario.file, f"engine.{exc.key}", exc.reason) from None
        raise


# -- cubes and failures -----------------------------------------------------------------------


def _matching_cubes(catalog: Catalog, pattern: str) -> list[Cube]:
    return [c for c in catalog.cubes if fnmatch.fnmatchcase(c.name.lower(), pattern.lower())]


def _no_cube(pattern: str, catalog: Catalog) -> str:
    names = ", ".join(c.name for c in catalog.cubes)
    return f"no cube is called {pattern!r} (cubes: {names})"


def _check_cube(scenario: Scenario, rule: Arrivals, catalog: Catalog) -> None:
    key = f"{rule.key}.cube"
    try:
        cube = catalog.cube(rule.cube)
    except CatalogNotFound:
        raise ConfigError(scenario.file, key, _no_cube(rule.cube, catalog)) from None
    build_type = rule.build_type
    if build_type == BuildType.REFRESH and BuildType.REFRESH not in cube.templates:
        build_type = BuildType.BUILD
    if build_type not in cube.templates:
        raise ConfigError(
            scenario.file, f"{rule.key}.type", f"cube {cube.name} has no {build_type}"
        )
    real = real_steps(catalog.template_for(cube.name, build_type))
    if real:
        raise ConfigError(
            scenario.file,
            key,
            f"cube {cube.name} runs real commands ({', '.join(real)}): a simulation on the "
            "virtual clock runs simulated steps only, real ones would take real time",
        )


def real_steps(template: Template) -> list[str]:
    """Names of the template's steps that run in real mode."""
    return [s.name for s in template.steps if s.mode is Mode.REAL]


def expanded_names(cube: Cube, step: TemplateStep) -> list[str]:
    """The names a template step gets in the cube's jobs (one per level when repeated)."""
    if step.repeat != cubing.REPEAT_CUBOID_LEVELS:
        return [step.name]
    return [
        plain_substitute(step.name, cubing.level_parameters(level))
        for level in range(1, cube.cuboid_levels + 1)
    ]


def _cube_steps(catalog: Catalog, cube: Cube) -> Iterator[tuple[TemplateStep, str]]:
    seen: set[str] = set()
    for template_name in dict.fromkeys(cube.templates.values()):
        for step in catalog.template(template_name).steps:
            for name in expanded_names(cube, step):
                if name not in seen:
                    seen.add(name)
                    yield step, name


def _with_schedules(scenario: Scenario, catalog: Catalog) -> Catalog:
    """The scenario's ``[[schedules]]`` join the catalog's (their cubes must exist)."""
    specs = []
    for index, spec in enumerate(scenario.schedules):
        try:
            cube = catalog.cube(spec.cube)
        except CatalogNotFound:
            key = f"schedules[{index}].cube"
            raise ConfigError(scenario.file, key, _no_cube(spec.cube, catalog)) from None
        real = real_steps(catalog.template_for(cube.name, spec.build_type))
        if real:
            key = f"schedules[{index}].cube"
            raise ConfigError(scenario.file, key, f"cube {cube.name} runs real commands")
        specs.append(dataclasses.replace(spec, cube=cube.name))
    if not specs:
        return catalog
    return dataclasses.replace(catalog, schedules=(*catalog.schedules, *specs))


def _with_failures(scenario: Scenario, catalog: Catalog) -> Catalog:
    """Each failure rule: the matching steps get a copy of their profile with its rate."""
    profiles = dict(catalog.profiles)
    cubes = {c.name: c for c in catalog.cubes}
    for rule in scenario.failures:
        matched = False
        for cube in _matching_cubes(catalog, rule.cube):
            current = cubes[cube.name]
            overrides = dict(current.step_profiles)
            for step, name in _cube_steps(catalog, current):
                if not fnmatch.fnmatchcase(name.lower(), rule.step.lower()):
                    continue
                matched = True
                profile_name = step_profile(current, step, name)
                base = profiles.get(profile_name) or catalog.profile(profile_name)
                derived = f"{base.name.split('@', 1)[0]}@fail={rule.probability:g}"
                profiles[derived] = dataclasses.replace(
                    base, name=derived, failure_rate=rule.probability
                )
                overrides[name] = derived
            cubes[cube.name] = dataclasses.replace(current, step_profiles=overrides)
        if not matched:
            raise ConfigError(
                scenario.file,
                f"{rule.key}.step",
                f"matches no step of the cubes matching {rule.cube!r}",
            )
    return dataclasses.replace(
        catalog, cubes=tuple(cubes[c.name] for c in catalog.cubes), profiles=profiles
    )


# -- streaming --------------------------------------------------------------------------------


def _streaming(
    scenario: Scenario, catalog: Catalog
) -> tuple[tuple[StreamingModelSpec, ...], tuple[tuple[float, str], ...]]:
    specs: list[StreamingModelSpec] = []
    started: list[tuple[float, str]] = []
    for run in scenario.streaming:
        try:
            model = catalog.streaming_model(run.model)
        except CatalogNotFound:
            names = ", ".join(m.alias for m in catalog.streaming_models)
            raise ConfigError(
                scenario.file, f"{run.key}.model", f"no streaming model {run.model!r} ({names})"
            ) from None
        for spec in _copies(run, spec_from_catalog(model)):
            if any(s.model_id == spec.model_id for s in specs):
                raise ConfigError(scenario.file, f"{run.key}.model", f"{spec.alias} runs twice")
            specs.append(spec)
            if run.start_s is not None:
                started += [(run.start_s, f"{spec.model_id}_{job}") for job in run.jobs]
    return tuple(specs), tuple(sorted(started))


def _copies(run: StreamingRun, base: StreamingModelSpec) -> list[StreamingModelSpec]:
    params = dict(base.params)
    if run.batch_s is not None:
        params["kylin.streaming.duration"] = str(run.batch_s)
    if run.retry is not None:
        params["kylin.streaming.job-retry-enabled"] = "true" if run.retry else "false"
    params.update(run.params)
    spec = dataclasses.replace(
        base,
        params=params,
        rate_per_s=base.rate_per_s if run.rate_per_s is None else run.rate_per_s,
        lag_s=base.lag_s if run.lag_s is None else run.lag_s,
        fail_at_batches=frozenset(run.fail_at_batches),
    )
    if run.copies == 1:
        return [spec]
    clones = []
    for i in range(1, run.copies + 1):
        alias = f"{base.alias}_{i:03d}"
        model_id = cubing.stable_uuid("streaming_model", alias)
        clones.append(dataclasses.replace(spec, alias=alias, model_id=model_id))
    return clones


def _check_streaming_actions(scenario: Scenario, specs: Sequence[StreamingModelSpec]) -> None:
    for action in scenario.actions:
        if action.streaming is None:
            continue
        if not streaming_targets(specs, action.streaming, action.jobs):
            aliases = ", ".join(s.alias for s in specs) or "none"
            raise ConfigError(
                scenario.file,
                f"{action.key}.streaming",
                f"matches none of the scenario's streaming models ({aliases})",
            )


def streaming_targets(
    specs: Sequence[StreamingModelSpec], pattern: str, jobs: Sequence[str]
) -> list[str]:
    """Job ids of the models whose alias matches ``pattern``, ``jobs`` of each."""
    return [
        f"{spec.model_id}_{job}"
        for spec in specs
        if fnmatch.fnmatchcase(spec.alias.lower(), pattern.lower())
        for job in jobs
    ]


# -- arrivals ---------------------------------------------------------------------------------


def arrival_times(rule: Arrivals, index: int, duration_s: float, seed: int) -> list[float]:
    """Seconds from the start at which ``rule``'s builds arrive (seeded per rule)."""
    until = duration_s if rule.until_s is None else min(rule.until_s, duration_s)
    if rule.at:
        times = [t for t in rule.at if t < duration_s]
    elif rule.every_s is not None:
        count = max(0, int((until - rule.from_s) // rule.every_s) + 1)
        times = [rule.from_s + i * rule.every_s for i in range(count)]
        times = [t for t in times if t < until]
    else:
        assert rule.rate_per_hour is not None
        rng = random.Random(f"{seed}:arrivals:{index}")
        times, t = [], rule.from_s
        while True:
            t += rng.expovariate(rule.rate_per_hour / 3_600.0)
            if t >= until:
                break
            times.append(t)
    return times[: rule.limit] if rule.limit is not None else times
