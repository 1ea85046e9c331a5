"""JSON form of the stored records (``Job`` with its steps, ``Segment``).

The checks every adapter shares live in ``engine.store.rules``.

The encoding is compact on purpose (every step transition rewrites the whole job): a step does
not repeat its job id or sequence, and fields that are "unset" (0 times, empty maps, None
commands) are left out. Decoding never leans on the dataclass defaults: every missing key is
given its "unset" value here, so a change of a default in ``jobs.py`` cannot change what a
stored job means. Fields that carry a choice (state, mode, profile) are always written.

Speed: a step transition re-encodes the whole job, but changes one step; the other steps are the
very same (frozen) objects as before, so the text of each step and spec is cached by object
identity. This leans on the records' promise never to be mutated, maps included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

from engine.core.jobs import Family, Job, Mode, Segment, Step, StepSpec
from engine.core.states import State

# ASCII-only text: any str (lone surrogates included) survives the trip through SQLite exactly
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_loads = json.loads
_string = json.encoder.encode_basestring_ascii  #: a str as a JSON string literal (C), ASCII only

R = TypeVar("R")

# plain dict look-ups: several times faster than calling the enum class, per field per step
_STATES: Final = {s.value: s for s in State}
_FAMILIES: Final = {f.value: f for f in Family}
_MODES: Final = {m.value: m for m in Mode}


# -- jobs -------------------------------------------------------------------------------------


def encode_job(job: Job) -> str:
    """The job as compact JSON text (the same document as ``job_to_dict``).

    A step transition changes one step and leaves the others as the very same objects, so the
    text of each step is kept in a small cache keyed by the step object: re-encoding a job costs
    its header and the steps that changed.
    """
    return f'{_head_text(job)},"steps":[{_steps_text(job)}]}}'


def _steps_text(job: Job) -> str:
    """The steps' texts joined; those of steps unchanged since the job's last encoding reused.

    Kept per job id (the steps tuple and each step's text): a step transition compares the
    steps by identity and encodes only the one or two that are new objects.
    """
    steps = job.steps
    known = _JOB_STEPS.pop(job.id, None)
    if known is not None and len(known[0]) == len(steps):
        old, texts = known
        texts = [
            t if s is o else _encode_step(s) for s, o, t in zip(steps, old, texts, strict=True)
        ]
    else:
        texts = [_encode_step(s) for s in steps]
        if len(_JOB_STEPS) >= _JOB_STEPS_SIZE:
            _JOB_STEPS.pop(next(iter(_JOB_STEPS)), None)
    _JOB_STEPS[job.id] = (steps, texts)
    return ",".join(texts)


def _head_text(job: Job) -> str:
    """``_dumps(_job_head(job))`` without its closing brace, formatted by hand.

    The fields a job keeps for life (ids, names, segment, params) are encoded once per job and
    kept (keyed by job id, checked by identity); the rest are ints and enums.
    """
    fixed = _FIXED.get(job.id)
    if (
        fixed is None
        or fixed[0] is not job.segment
        or fixed[1] is not job.params
        or (fixed[2] != (job.name, job.project, job.cube, job.build_type, job.submitter))
    ):
        fixed = _fixed_parts(job)
        if len(_FIXED) >= _FIXED_SIZE:
            _FIXED.pop(next(iter(_FIXED)), None)
        _FIXED[job.id] = fixed
    parts = [
        fixed[3],
        f',"priority":{job.priority},"state":"{job.state.value}","create_time":{job.create_time}'
        f',"last_modified":{job.last_modified},"version":{job.version},"build_instance":',
        _string(job.build_instance),
    ]
    if job.start_time:
        parts.append(f',"start_time":{job.start_time}')
    if job.end_time:
        parts.append(f',"end_time":{job.end_time}')
    if job.interrupt_time:
        parts.append(f',"interrupt_time":{job.interrupt_time}')
    parts.append(fixed[4])
    return "".join(parts)


def _fixed_parts(job: Job) -> tuple[Any, ...]:
    head = _dumps({
        "id": job.id, "name": job.name, "project": job.project, "cube": job.cube,
        "build_type": job.build_type, "segment": segment_to_dict(job.segment),
        "submitter": job.submitter,
    })[:-1]  # fmt: skip
    params = f',"params":{_dumps(dict(job.params))}' if job.params else ""
    names = (job.name, job.project, job.cube, job.build_type, job.submitter)
    return (job.segment, job.params, names, head, params)


def decode_job(text: str) -> Job:
    """The job stored as ``text`` by ``encode_job``."""
    return job_from_dict(_loads(text))


def job_to_dict(job: Job) -> dict[str, Any]:
    """The job as JSON-ready data."""
    data = _job_head(job)
    data["steps"] = [_step_to_dict(s) for s in job.steps]
    return data


def _job_head(job: Job) -> dict[str, Any]:
    """Everything of the job but its steps."""
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
    return data


def job_from_dict(data: Mapping[str, Any]) -> Job:
    """The job of ``job_to_dict``."""
    job_id = data["id"]
    return Job(
        id=job_id,
        name=data["name"],
        project=data["project"],
        cube=data["cube"],
        build_type=data["build_type"],
        segment=segment_from_dict(data["segment"]),
        submitter=data["submitter"],
        priority=data["priority"],
        steps=tuple(_step_from_dict(job_id, i, s) for i, s in enumerate(data["steps"])),
        state=_STATES[data["state"]],
        create_time=data["create_time"],
        last_modified=data["last_modified"],
        start_time=data.get("start_time", 0),
        end_time=data.get("end_time", 0),
        interrupt_time=data.get("interrupt_time", 0),
        build_instance=data["build_instance"],
        version=data["version"],
        params=dict(data.get("params", {})),
    )


def _step_to_dict(step: Step) -> dict[str, Any]:
    data: dict[str, Any] = {"spec": _spec_to_dict(step.spec)}
    data.update(_step_fields(step))
    return data


def _step_fields(step: Step) -> dict[str, Any]:
    """A step's own fields, its spec left out."""
    data: dict[str, Any] = {"state": step.state.value}
    _put_set(data, "start_time", step.start_time)
    _put_set(data, "end_time", step.end_time)
    _put_set(data, "wait_time", step.wait_time)
    _put_set(data, "info", dict(step.info))
    _put_set(data, "attempts", step.attempts)
    _put_set(data, "retries", step.retries)
    _put_set(data, "reattach", step.reattach)
    return data


def _encode_step(step: Step) -> str:
    # the spec is shared by every version of the step: its text is cached on its own; the
    # fields are formatted by hand, as _dumps(_step_fields(step)) would (unset ones left out)
    parts = ['{"spec":', _SPEC_TEXTS.get(step.spec), ',"state":"', step.state.value, '"']
    if step.start_time:
        parts.append(f',"start_time":{step.start_time}')
    if step.end_time:
        parts.append(f',"end_time":{step.end_time}')
    if step.wait_time:
        parts.append(f',"wait_time":{step.wait_time}')
    if step.info:
        parts.append(',"info":{')
        parts.append(",".join([f"{_string(k)}:{_string(v)}" for k, v in step.info.items()]))
        parts.append("}")
    if step.attempts:
        parts.append(f',"attempts":{step.attempts}')
    if step.retries:
        parts.append(f',"retries":{step.retries}')
    if step.reattach:
        parts.append(',"reattach":true')
    parts.append("}")
    return "".join(parts)


def _encode_spec(spec: StepSpec) -> str:
    return _dumps(_spec_to_dict(spec))


def _step_from_dict(job_id: str, sequence: int, data: Mapping[str, Any]) -> Step:
    return Step(
        job_id=job_id,
        sequence=sequence,
        spec=_spec_from_dict(data["spec"]),
        state=_STATES[data["state"]],
        start_time=data.get("start_time", 0),
        end_time=data.get("end_time", 0),
        wait_time=data.get("wait_time", 0),
        info=dict(data.get("info", {})),
        attempts=data.get("attempts", 0),
        retries=data.get("retries", 0),
        reattach=data.get("reattach", False),
    )


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
    """A spec, shared with earlier decodes of the same spec (records are frozen).

    Specs with ``options`` are never shared: their map is a plain dict.
    """
    if "options" in data:
        return _new_spec(data)
    key = tuple(data.items())
    spec = _DECODED_SPECS.get(key)
    if spec is None:
        spec = _new_spec(data)
        if len(_DECODED_SPECS) >= _DECODED_SPECS_SIZE:
            _DECODED_SPECS.pop(next(iter(_DECODED_SPECS)), None)
        _DECODED_SPECS[key] = spec
    return spec


def _new_spec(data: Mapping[str, Any]) -> StepSpec:
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


class _TextCache(Generic[R]):
    """JSON text of frozen records, keyed by identity, least recently used dropped first.

    An entry holds its record, so the record's ``id()`` cannot be reused while it is cached.
    """

    def __init__(self, encode: Callable[[R], str], size: int) -> None:
        self._encode = encode
        self._size = size
        self._entries: dict[int, tuple[R, str]] = {}

    def get(self, record: R) -> str:
        key = id(record)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is record:
            return entry[1]  # a hit costs one look-up: first in, first out, no reordering
        entry = (record, self._encode(record))
        if key not in self._entries and len(self._entries) >= self._size:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[key] = entry
        return entry[1]


_STEP_TEXTS: Final = _TextCache(_encode_step, 8192)
_SPEC_TEXTS: Final = _TextCache(_encode_spec, 1024)
_DECODED_SPECS: Final[dict[tuple[tuple[str, Any], ...], StepSpec]] = {}
_DECODED_SPECS_SIZE: Final = 4096
_FIXED: Final[dict[str, tuple[Any, ...]]] = {}
_JOB_STEPS: Final[dict[str, tuple[tuple[Step, ...], list[str]]]] = {}
_JOB_STEPS_SIZE: Final = 4096
_FIXED_SIZE: Final = 8192


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
