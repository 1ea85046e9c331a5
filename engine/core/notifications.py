"""Job-end notifications (SPEC §11): which job changes are notified, what the payload says,
and the retry schedule. Pure: the outbox write and the HTTP sender live in ``engine.ops``.

A notification's ``event_id`` is derived from the job and the version of the write that ended
it, so it is known before the write, the same on every retry and the same in every replay.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any, Final

from engine.core.jobs import Job
from engine.core.states import JOB_END_STATES, State

#: namespace of the ``event_id`` uuid5 (any fixed uuid; changing it changes every id)
_EVENT_NAMESPACE: Final = uuid.UUID("5b0e7c1e-8f7a-4b86-9d1c-6f1f0c3a9e42")
MAX_BACKOFF_MS: Final = 60_000  #: SPEC §11: the doubling backoff is capped at 60 s
JITTER: Final = 0.2  #: a retry waits up to 20 % less than its backoff (spreads a burst)


@dataclass(frozen=True, slots=True)
class JobEnd:
    """A job reached FINISHED, ERROR or DISCARDED: the notification of SPEC §11."""

    event_id: str
    job_id: str
    project: str
    cube: str
    job_type: str  #: BUILD / MERGE / REFRESH
    job_state: str  #: the REST status (FINISHED, ERROR, DISCARDED)
    segment_name: str
    start_time: int  #: epoch ms
    end_time: int  #: epoch ms
    duration: int  #: seconds
    error_step: str | None  #: the failed step's name, only when ``job_state`` is ERROR
    msg: str  #: one line for humans

    def payload(self) -> dict[str, Any]:
        """The JSON object POSTed to ``kylin.job.finished-notifier-url``."""
        return {
            "event_id": self.event_id,
            "job_id": self.job_id,
            "project": self.project,
            "cube": self.cube,
            "job_type": self.job_type,
            "job_state": self.job_state,
            "segment_name": self.segment_name,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "error_step": self.error_step,
            "msg": self.msg,
        }


def event_id(job_id: str, version: int) -> str:
    """The id of the notification of the write that stores ``version`` of the job."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{job_id}/{version}"))


def job_end(old: Job, new: Job) -> JobEnd | None:
    """The notification a write from ``old`` to ``new`` owes, None when it owes none."""
    if new.state is old.state or new.state not in JOB_END_STATES:
        return None
    failed = new.first_step_in(State.ERROR) if new.state is State.ERROR else None
    duration = new.duration_s(new.end_time or new.last_modified)
    return JobEnd(
        event_id=event_id(new.id, old.version + 1),
        job_id=new.id,
        project=new.project,
        cube=new.cube,
        job_type=new.build_type,
        job_state=new.state.rest_name,
        segment_name=new.segment.name,
        start_time=new.start_time,
        end_time=new.end_time or new.last_modified,
        duration=duration,
        error_step=failed.name if failed is not None else None,
        msg=_summary(new, failed.name if failed is not None else None, duration),
    )


def _summary(job: Job, error_step: str | None, duration: int) -> str:
    state = job.state.rest_name
    where = f" at step '{error_step}'" if error_step else ""
    what = f"{job.build_type} of cube '{job.cube}' segment {job.segment.name}"
    return f"{what}: {state}{where} after {duration} s"


def retry_delay_ms(retry: int, interval_ms: int, rng: random.Random) -> int:
    """The wait before retry number ``retry`` (1-based): ``interval * 2^(retry-1)``, capped at
    60 s, less up to ``JITTER`` of it at random."""
    base = min(MAX_BACKOFF_MS, interval_ms << min(retry - 1, 30))
    return max(1, round(base * (1.0 - JITTER * rng.random())))
