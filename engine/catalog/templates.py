"""Job templates (``config/templates/*.toml``), executor profiles (``config/profiles.toml``)
and the expansion of a template into ``StepSpec`` lists.

Commands are substituted by ``steps.quoting.substitute``: a ``{name}`` placeholder stands outside
quotes and its value is shell-quoted, so ``echo {cube}`` is safe and ``echo "{cube}"`` is refused
when the template is loaded. Step names and options are not shell text: their ``{name}``
placeholders are replaced as they are.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config.toml import Reader, non_empty, non_negative, one_of, positive, read_toml
from engine.core import cubing
from engine.core.errors import ConfigError, InvalidRequest
from engine.core.jobs import Family, Mode, StepSpec
from steps import quoting
from steps.base import Profile


@dataclass(frozen=True, slots=True)
class TemplateStep:
    """One entry of a job template (``[[steps]]``)."""

    name: str  #: may hold ``{level}`` when repeated per cuboid level
    cmd_type: str
    family: Family
    mode: Mode = Mode.SIMULATED
    command: str | None = None  #: ``{placeholders}`` outside quotes; values are shell-quoted
    interrupt: str | None = None
    profile: str = "short"
    timeout_s: float | None = None
    action: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)  #: substituted, not quoted
    repeat: str | None = None  #: "cuboid_levels": once per level 1..L


@dataclass(frozen=True, slots=True)
class Template:
    """An ordered list of template steps (``config/templates/{name}.toml``)."""

    name: str
    steps: tuple[TemplateStep, ...]
    description: str = ""

    def step_names(self) -> frozenset[str]:
        """The names of its steps as written (``{level}`` unexpanded)."""
        return frozenset(s.name for s in self.steps)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(text: str) -> list[str]:
    """The names of the ``{name}`` placeholders of a step name or option, in order."""
    return _PLACEHOLDER.findall(text)


def plain_substitute(text: str, params: Mapping[str, str]) -> str:
    """``{name}`` -> ``params[name]`` as is (step names, options: not shell text)."""
    return _PLACEHOLDER.sub(lambda m: params.get(m.group(1), m.group(0)), text)


def command_problem(text: str, known: Collection[str]) -> str | None:
    """Why the command template ``text`` cannot be substituted with ``known`` parameters."""
    try:
        quoting.substitute(text, dict.fromkeys(known, "x"))
    except InvalidRequest as exc:
        return str(exc)
    return None


ProfileOf = Callable[[TemplateStep, str], str]


def expand_template(
    template: Template, params: Mapping[str, str], levels: int, profile_of: ProfileOf
) -> tuple[StepSpec, ...]:
    """The template's steps with ``params`` substituted; repeated steps once per level 1..L.

    ``profile_of(template_step, expanded_name)`` picks each step's profile.
    """
    specs: list[StepSpec] = []
    for step in template.steps:
        if step.repeat == cubing.REPEAT_CUBOID_LEVELS:
            for level in range(1, levels + 1):
                with_level = {**params, **cubing.level_parameters(level)}
                specs.append(_spec(step, with_level, profile_of))
        else:
            specs.append(_spec(step, params, profile_of))
    return tuple(specs)


def _spec(step: TemplateStep, params: Mapping[str, str], profile_of: ProfileOf) -> StepSpec:
    name = plain_substitute(step.name, params)

    def command(text: str | None) -> str | None:
        return None if text is None else quoting.substitute(text, params)

    return StepSpec(
        name=name,
        cmd_type=step.cmd_type,
        family=step.family,
        mode=step.mode,
        exec_cmd=command(step.command),
        interrupt_cmd=command(step.interrupt),
        profile=profile_of(step, name),
        timeout_s=step.timeout_s,
        action=step.action,
        options={k: plain_substitute(v, params) for k, v in step.options.items()},
    )


# -- loading ------------------------------------------------------------------------------------


def load_profiles(path: Path) -> dict[str, Profile]:
    """Every ``[name]`` table of ``profiles.toml`` as a ``Profile`` (fields of ``Profile``)."""
    root = Reader(str(path), "", read_toml(path))
    profiles = {name: _profile(root.table(name), name) for name in root.data}
    root.done()
    return profiles


_ORDERED = (
    ("min_seconds", "max_seconds"),
    ("queue_min_seconds", "queue_max_seconds"),
    ("records_min", "records_max"),
)


def _profile(r: Reader, name: str) -> Profile:
    values: dict[str, Any] = {"name": name}
    for f in dataclasses.fields(Profile):
        default = f.default
        if f.name == "name":
            continue
        if isinstance(default, bool):
            values[f.name] = r.boolean(f.name, default)
        elif isinstance(default, int):
            values[f.name] = r.integer(f.name, default, non_negative)
        elif isinstance(default, float):
            values[f.name] = r.number(f.name, default, non_negative)
        else:
            values[f.name] = r.string(f.name, default, non_empty)
    r.done()
    profile = Profile(**values)
    if profile.failure_rate > 1:
        raise r.error(
            "failure_rate", f"must be a probability in [0, 1], got {profile.failure_rate}"
        )
    for low, high in _ORDERED:
        if getattr(profile, low) > getattr(profile, high):
            raise r.error(low, f"must not be greater than {high} ({getattr(profile, high)})")
    return profile


def load_templates(folder: Path, profiles: Collection[str]) -> dict[str, Template]:
    """Every ``{name}.toml`` of the templates folder, by name; steps may use ``profiles``."""
    if not folder.is_dir():
        raise ConfigError(str(folder), "-", "templates folder not found")
    return {path.stem: _template(path, profiles) for path in sorted(folder.glob("*.toml"))}


def _template(path: Path, profiles: Collection[str]) -> Template:
    root = Reader(str(path), "", read_toml(path))
    description = root.string("description", "")
    readers = root.tables("steps")
    root.done()
    if not readers:
        raise root.error("steps", "a template needs at least one [[steps]] entry")
    steps: list[TemplateStep] = []
    for r in readers:
        step = _template_step(r, profiles)
        if any(s.name == step.name for s in steps):
            raise r.error("name", f"two steps are called {step.name!r}")
        steps.append(step)
    return Template(path.stem, tuple(steps), description)


def _template_step(r: Reader, profiles: Collection[str]) -> TemplateStep:
    cmd_type = r.string("cmd_type", check=one_of(cubing.CMD_TYPES, "cmd_type"))
    family = Family(r.string("family", cubing.family_for(cmd_type), one_of(Family, "family")))
    default_profile = "mr" if family is Family.MAPREDUCE else "short"
    step = TemplateStep(
        name=r.string("name", check=non_empty),
        cmd_type=cmd_type,
        family=family,
        mode=Mode(r.string("mode", Mode.SIMULATED, one_of(Mode, "mode"))),
        command=r.optional_string("command", non_empty),
        interrupt=r.optional_string("interrupt", non_empty),
        profile=r.string("profile", default_profile, one_of(profiles, "profile")),
        timeout_s=r.number("timeout", check=positive) if r.has("timeout") else None,
        action=r.optional_string("action", one_of(cubing.ACTIONS, "action")),
        options=r.string_map("options"),
        repeat=r.optional_string("repeat", one_of(cubing.REPEATS, "repeat")),
    )
    r.done()
    if step.profile not in profiles:  # a default the profiles file does not define
        raise r.error("profile", f"the default profile {step.profile!r} is not defined")
    _check_texts(r, step)
    return step


def _check_texts(r: Reader, step: TemplateStep) -> None:
    params = set(cubing.JOB_PARAMETERS)
    in_name: set[str] = set()
    if step.repeat is not None:
        params.update(cubing.level_parameters(1))
        in_name.add(cubing.LEVEL_PARAMETER)
        if cubing.LEVEL_PARAMETER not in placeholders(step.name):
            raise r.error("name", "a repeated step needs {level} in its name")
    texts = [("name", step.name, in_name)]
    texts += [(f"options.{k}", v, params) for k, v in step.options.items()]
    for key, text, known in texts:
        for name in placeholders(text):
            if name not in known:
                listed = ", ".join(sorted(known)) or "none here"
                raise r.error(key, f"unknown placeholder {{{name}}} (known: {listed})")
    for key, command in (("command", step.command), ("interrupt", step.interrupt)):
        if command is not None and (problem := command_problem(command, params)) is not None:
            raise r.error(key, problem)
    if step.mode is Mode.REAL and step.family is Family.SHELL and step.command is None:
        raise r.error("command", "a real shell step needs a command")
