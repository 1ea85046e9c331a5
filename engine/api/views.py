"""JSON views of batch jobs (SPEC §3): plain dicts whose key order IS the wire order.

Routes render with these and answer a ``JSONResponse`` directly (no second validation pass);
``engine.api.schemas`` documents the same shapes for OpenAPI, and the API tests check that the
two agree.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from engine.batch.output import StepOutput
from engine.core.jobs import Job, Step
from engine.core.states import STATUS_CODES, BuildType

#: Kylin's REST ``type``: every cube job is a "BUILD", merges and refreshes included
JOB_TYPE = BuildType.BUILD.value


def step_view(step: Step) -> dict[str, Any]:
    """A ``JobStep`` in SPEC §3 order."""
    spec = step.spec
    return {
        "interruptCmd": spec.interrupt_cmd,
        "id": step.id,
        "name": spec.name,
        "sequence_id": step.sequence,
        "exec_cmd": spec.exec_cmd,
        "interrupt_cmd": spec.interrupt_cmd,
        "exec_start_time": step.start_time,
        "exec_end_time": step.end_time,
        "exec_wait_time": step.exec_wait_s,
        "step_status": step.state.rest_name,
        "cmd_type": spec.cmd_type,
        "info": dict(step.info),
        "run_async": spec.run_async,
    }


def job_view(job: Job, now: int, version: str) -> dict[str, Any]:
    """A ``JobInstance`` in SPEC §3 order; ``now`` (engine clock) sizes a running duration."""
    return {
        "uuid": job.id,
        "last_modified": job.last_modified,
        "version": version,
        "name": job.name,
        "projectName": job.project,
        "type": JOB_TYPE,
        "duration": job.duration_s(now),
        "related_cube": job.cube,
        "display_cube_name": job.cube,
        "related_segment": job.segment.uuid,
        "related_segment_name": job.segment.name,
        "exec_start_time": job.start_time,
        "exec_end_time": job.end_time,
        "exec_interrupt_time": job.interrupt_time,
        "mr_waiting": job.mr_waiting_s,
        "steps": [step_view(s) for s in job.steps],
        "submitter": job.submitter,
        "job_status": job.state.rest_name,
        "build_instance": job.build_instance,
        "progress": job.progress,
    }


class JobRenderer:
    """``job_view`` as JSON bytes, cached while the job's stored version does not change.

    Only the ``duration`` of a started, unfinished job depends on ``now``; every other change
    is a new stored version (the store bumps it on each write), so an entry is never stale.
    One renderer per app: job ids and versions are only unique within one engine's store.
    """

    def __init__(self, version: str, size: int = 512) -> None:
        self.version = version
        self._size = size
        self._cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()

    def render(self, job: Job, now: int) -> bytes:
        """The job's JSON (``now`` sizes the duration of a running job)."""
        if job.start_time and not job.end_time:
            return _dumps(job_view(job, now, self.version))
        key = (job.id, job.version, job.last_modified)
        body = self._cache.get(key)
        if body is None:
            body = self._cache[key] = _dumps(job_view(job, now, self.version))
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return body


def _dumps(content: Any) -> bytes:
    """What ``JSONResponse`` renders: compact UTF-8 JSON."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def output_view(output: StepOutput) -> dict[str, Any]:
    """``{jobId, stepId, cmd_output}``; the step id is always the padded one."""
    return {"jobId": output.job_id, "stepId": output.step_id, "cmd_output": output.cmd_output}


def overview_view(counts: Mapping[str, int]) -> dict[str, int]:
    """``/jobs/overview`` in Kylin's key order (NEW is always 0)."""
    return {key: int(counts.get(key, 0)) for key in STATUS_CODES}


def envelope(data: Any = "") -> dict[str, Any]:
    """Kylin 5's success envelope ``{"code": "000", "data": ..., "msg": ""}``."""
    return {"code": "000", "data": data, "msg": ""}
