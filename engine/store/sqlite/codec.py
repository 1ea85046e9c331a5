"""How a batch job is laid out in rows (migration 0003: steps as rows) and its JSON parts.

A job is three kinds of row (``/work/coord/SCHEMA.md`` has the design):

- its summary in ``jobs`` (plain columns, rewritten by every transition),
- its definition in ``job_definitions``: the fields it keeps for life (name, build type,
  segment, submitter, params) and every step's spec, as one JSON document written at submit,
- one row per step in ``job_steps``: what changes about a step, written only when it changes.

JSON is compact and ASCII-only (any str, lone surrogates included, survives SQLite exactly).
Fields that are "unset" (0 times, empty maps, None commands) are left out; decoding never leans
on the dataclass defaults, so a change of a default in ``jobs.py`` cannot change what a stored
job means. Decoded definitions are cached per job (they never change), so reading a job back
costs its summary and its step rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from engine.core.jobs import Family, Job, Mode, Segment, Step, StepSpec
from engine.core.states import State
from engine.store.rules import fold

_dumps = json.JSONEncoder(separators=(",", ":")).encode  #: one C encoder, ASCII only
_loads = json.loads
_string = json.encoder.encode_basestring_ascii  #: a str as a JSON string literal (C), ASCII only

# plain dict look-ups: several times faster than calling the enum class, per field per step
_STATES: Final = {s.value: s for s in State}
_FAMILIES: Final = {f.value: f for f in Family}
_MODES: Final = {m.value: m for m in Mode}
_EMPTY: Final = "{}"

#: (job_id, sequence, state, start_time, end_time, wait_time, info, attempts, retries, reattach)
StepRow = tuple[str, int, str, int, int, int, str, int, int, int]
#: the job's summary columns after ``id, project, cube, cube_key`` (see ``summary_row``)
SUMMARY_COLUMNS: Final = (
    "state, priority, create_time, last_modified, version, start_time, end_time, "
    "interrupt_time, build_instance"
)


# -- writing ----------------------------------------------------------------------------------


def summary_row(job: Job) -> tuple[Any, ...]:
    """``id, project, cube, cube_key`` and then the ``SUMMARY_COLUMNS`` of the job."""
    return (
        job.id, job.project, job.cube, fold(job.cube), job.state.value, job.priority,
        job.create_time, job.last_modified, job.version, job.start_time, job.end_time,
        job.interrupt_time, job.build_instance,
    )  # fmt: skip


def step_row(step: Step) -> StepRow:
    """The ``job_steps`` row of ``step``."""
    info = step.info
    return (
        step.job_id, step.sequence, step.state.value, step.start_time, step.end_time,
        step.wait_time, _encode_info(info) if info else _EMPTY, step.attempts, step.retries,
        1 if step.reattach else 0,
    )  # fmt: skip


def _encode_info(info: Mapping[str, str]) -> str:
    """``_dumps(dict(info))`` for a map of strings, without the encoder's Python layer."""
    return "{" + ",".join([f"{_string(k)}:{_string(v)}" for k, v in info.items()]) + "}"


def encode_definition(job: Job) -> str:
    """The job's ``job_definitions.data``: what it keeps for life, every step's spec included."""
    data: dict[str, Any] = {
        "name": job.name,
        "build_type": job.build_type,
        "segment": segment_to_dict(job.segment),
        "submitter": job.submitter,
    }
    if job.params:
        data["params"] = dict(job.params)
    data["steps"] = [_spec_to_dict(s.spec) for s in job.steps]
    return _dumps(data)


# -- reading ----------------------------------------------------------------------------------


class _Definition:
    """A decoded definition: the static fields of ``Job`` and the steps' specs."""

    __slots__ = ("build_type", "name", "params", "segment", "specs", "submitter", "text")

    def __init__(self, text: str) -> None:
        data = _loads(text)
        self.text = text
        self.name: str = data["name"]
        self.build_type: str = data["build_type"]
        self.segment = segment_from_dict(data["segment"])
        self.submitter: str = data["submitter"]
        self.params: Mapping[str, str] = dict(data.get("params", {}))
        self.specs = tuple(_spec_from_dict(s) for s in data["steps"])


def decode_job(summary: Sequence[Any], definition: str, steps: Sequence[Sequence[Any]]) -> Job:
    """The job of its ``jobs`` row (``summary_row``'s columns), definition and step rows."""
    (job_id, project, cube, _key, state, priority, create_time, last_modified, version,
     start_time, end_time, interrupt_time, build_instance) = summary  # fmt: skip
    fixed = _definition(job_id, definition)
    specs = fixed.specs
    if len(steps) != len(specs):
        raise ValueError(f"job {job_id!r}: {len(steps)} step rows for {len(specs)} steps")
    return Job(
        id=job_id,
        name=fixed.name,
        project=project,
        cube=cube,
        build_type=fixed.build_type,
        segment=fixed.segment,
        submitter=fixed.submitter,
        priority=priority,
        steps=tuple(_step(job_id, row, specs) for row in steps),
        state=_STATES[state],
        create_time=create_time,
        last_modified=last_modified,
        start_time=start_time,
        end_time=end_time,
        interrupt_time=interrupt_time,
        build_instance=build_instance,
        version=version,
        params=fixed.params,
    )


def _definition(job_id: str, text: str) -> _Definition:
    """The decoded definition, cached per job (checked against the text: ids can be reused)."""
    known = _DEFINITIONS.get(job_id)
    if known is not None and known.text == text:
        return known
    known = _Definition(text)
    if len(_DEFINITIONS) >= _DEFINITIONS_SIZE:
        _DEFINITIONS.pop(next(iter(_DEFINITIONS)), None)  # oldest first: a cheap bounded cache
    _DEFINITIONS[job_id] = known
    return known


def _step(job_id: str, row: Sequence[Any], specs: tuple[StepSpec, ...]) -> Step:
    _job, sequence, state, start, end, wait, info, attempts, retries, reattach = row
    return Step(
        job_id=job_id,
        sequence=sequence,
        spec=specs[sequence],
        state=_STATES[state],
        start_time=start,
        end_time=end,
        wait_time=wait,
        info=_loads(info) if info != _EMPTY else {},
        attempts=attempts,
        retries=retries,
        reattach=bool(reattach),
    )


_DEFINITIONS: Final[dict[str, _Definition]] = {}
_DEFINITIONS_SIZE: Final = 8192


# -- the whole job as one document (the 0001 layout) ------------------------------------------


def job_to_dict(job: Job) -> dict[str, Any]:
    """The job as one JSON-ready document: the row layout of schema 0001 (``jobs.data``), which
    migration 0003 reads; the tests write stores of that layout with it."""
    data: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "project": job.project,
        "cube": job.cube,
        "build_type": job.build_type,
        "segment": segment_to_dict(job.segment),
        "submitter": job.submitter,
        "priority": job.priority,
        "state": job.state.value,
        "create_time": job.create_time,
        "last_modified": job.last_modified,
        "version": job.version,
        "build_instance": job.build_instance,
    }
    _put_set(data, "start_time", job.start_time)
    _put_set(data, "end_time", job.end_time)
    _put_set(data, "interrupt_time", job.interrupt_time)
    _put_set(data, "params", dict(job.params))
    data["steps"] = [_step_to_dict(s) for s in job.steps]
    return data


def _step_to_dict(step: Step) -> dict[str, Any]:
    data: dict[str, Any] = {"spec": _spec_to_dict(step.spec), "state": step.state.value}
    _put_set(data, "start_time", step.start_time)
    _put_set(data, "end_time", step.end_time)
    _put_set(data, "wait_time", step.wait_time)
    _put_set(data, "info", dict(step.info))
    _put_set(data, "attempts", step.attempts)
    _put_set(data, "retries", step.retries)
    _put_set(data, "reattach", step.reattach)
    return data


# -- specs ------------------------------------------------------------------------------------


def _spec_to_dict(spec: StepSpec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": spec.name,
        "cmd_type": spec.cmd_type,
        "family": spec.family.value,
        "mode": spec.mode.value,
        "profile": spec.profile,
    }
    _put_set(data, "exec_cmd", spec.exec_cmd)
    _put_set(data, "interrupt_cmd", spec.interrupt_cmd)
    _put_set(data, "timeout_s", spec.timeout_s)
    _put_set(data, "action", spec.action)
    _put_set(data, "options", dict(spec.options))
    return data


def _spec_from_dict(data: Mapping[str, Any]) -> StepSpec:
    return StepSpec(
        name=data["name"],
        cmd_type=data["cmd_type"],
        family=_FAMILIES[data["family"]],
        mode=_MODES[data["mode"]],
        exec_cmd=data.get("exec_cmd"),
        interrupt_cmd=data.get("interrupt_cmd"),
        profile=data["profile"],
        timeout_s=data.get("timeout_s"),
        action=data.get("action"),
        options=dict(data.get("options", {})),
    )


def _put_set(data: dict[str, Any], key: str, value: Any) -> None:
    """Store ``value`` unless it means "unset": None, 0 (not 0.0), False or an empty map."""
    if value is None or value is False or value == {} or (type(value) is int and value == 0):
        return
    data[key] = value


# -- segments ---------------------------------------------------------------------------------


def segment_to_dict(segment: Segment) -> dict[str, Any]:
    """The segment as JSON-ready data."""
    return {
        "uuid": segment.uuid,
        "cube": segment.cube,
        "name": segment.name,
        "start": segment.start,
        "end": segment.end,
        "status": segment.status,
        "merged_from": list(segment.merged_from),
    }


def segment_from_dict(data: Mapping[str, Any]) -> Segment:
    """The segment of ``segment_to_dict``."""
    return Segment(
        uuid=data["uuid"],
        cube=data["cube"],
        name=data["name"],
        start=data["start"],
        end=data["end"],
        status=data["status"],
        merged_from=tuple(data["merged_from"]),
    )


def encode_uuids(uuids: tuple[str, ...]) -> str:
    """A tuple of uuids as a JSON array (``segments.merged_from``)."""
    return _dumps(list(uuids))


def decode_uuids(text: str) -> tuple[str, ...]:
    """The tuple of ``encode_uuids``."""
    return tuple(_loads(text))
