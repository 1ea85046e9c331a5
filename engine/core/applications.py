"""Re-attach, end, or submit anew: what an MR step does with the simulated YARN application its
interrupted attempt recorded (SPEC §2.3). Pure: the recorded info and the clock in, a fate out.

The rule, so that at most one application of a step ever runs:

- an application is *recorded before it starts*: its ids, its timeline and its final status are
  made durable in the step's info before it is reported or waited for. An application whose
  record never became durable (the engine died during its submission) never started: it counts
  as killed, and the next attempt submits a new one;
- one this cluster killed (a pause, a discard, a timeout, a clean shutdown: the kill is recorded
  as its final status where the store still takes it, and remembered by the engine that killed
  it), or one of an attempt that failed and was retried, is not re-attached to;
- one that would still be queued or running now is re-attached to, and only the rest of it is
  waited out;
- one that would have ended while no engine watched ends the step at once with the recorded
  final status (a record from before final statuses were recorded is submitted anew).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

APP_ID: Final = "yarn_application_id"
JOB_ID: Final = "mr_job_id"
#: [beyond Kylin] epoch ms (engine clock) of the submission, of leaving the queue, of the end
SUBMITTED: Final = "yarn_submit_time"
EXPECTED_START: Final = "yarn_expected_start"
EXPECTED_FINISH: Final = "yarn_expected_finish"
#: [beyond Kylin] SUCCEEDED or FAILED: how the application ends unless it is killed; KILLED
#: once it was
EXPECTED_STATUS: Final = "yarn_expected_final_status"
#: [beyond Kylin] the step's retry count at the submission: an application recorded before a
#: retry belonged to the failed attempt, whose outcome is accounted for already
RETRY: Final = "yarn_step_retry"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
KILLED: Final = "KILLED"


class Fate(enum.Enum):
    """What the next attempt does about the recorded application."""

    SUBMIT = "submit"  #: none recorded, killed, or unusable: a new application
    ATTACH = "attach"  #: still queued or running: wait out the rest of it
    ENDED = "ended"  #: ended while no engine watched: the step ends now with its status


@dataclass(frozen=True, slots=True)
class Recorded:
    """An application as the step's info recorded it (engine clock, epoch ms)."""

    app_id: str
    job_id: str
    submitted: int
    start: int
    finish: int
    status: str | None  #: SUCCEEDED, FAILED, KILLED, or None in a record older than statuses
    retry: int | None  #: the step's retry count at the submission (None: an older record)

    @property
    def fails(self) -> bool:
        """Whether it ends FAILED."""
        return self.status == FAILED


def recorded(info: Mapping[str, str] | None) -> Recorded | None:
    """The application ``info`` records, or None when there is none (or it is incomplete)."""
    if not info or not info.get(APP_ID):
        return None
    try:
        start, finish = int(info[EXPECTED_START]), int(info[EXPECTED_FINISH])
    except (KeyError, ValueError):
        return None
    submitted = _int(info.get(SUBMITTED), _int(info.get("startTime"), start))
    app_id = info[APP_ID]
    job_id = info.get(JOB_ID) or "job_" + app_id.removeprefix("application_")
    status = info.get(EXPECTED_STATUS)
    if status not in (SUCCEEDED, FAILED, KILLED):
        status = None
    retry = _int(info.get(RETRY), -1)
    return Recorded(
        app_id, job_id, min(submitted, start), start, finish, status, None if retry < 0 else retry
    )


def fate(app: Recorded | None, now: int, killed: bool, retries: int) -> Fate:
    """The module's rule: what becomes of ``app`` (recorded by the interrupted attempt) at
    ``now``; ``killed``: this cluster killed it; ``retries``: the step's retry count now."""
    if app is None or killed or app.status == KILLED:
        return Fate.SUBMIT
    if app.retry is not None and app.retry != retries:
        return Fate.SUBMIT
    if now < app.finish:
        return Fate.ATTACH
    return Fate.SUBMIT if app.status is None else Fate.ENDED


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
