"""Job-id prefixes: every client command that takes a job id (or a ``{jobId}-NN`` step id) also
takes a unique prefix of it, as git takes a commit's (``kjobs status 8c1e``)."""

from __future__ import annotations

import re
from typing import Final

from engine.cli.http import ApiClient, ApiError

FULL_ID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STEP_SUFFIX: Final = re.compile(r"^(?P<job>.+)-(?P<seq>\d{1,2})$")
EVERY_JOB: Final = {"timeFilter": 5, "limit": 2**53}  #: all jobs, however old


def job_id(client: ApiClient, text: str) -> str:
    """The full id of the one job whose id is ``text`` or starts with it."""
    if FULL_ID.match(text):
        return text
    ids = [str(job["uuid"]) for job in client.get("/jobs", params=EVERY_JOB)]
    if text in ids:
        return text
    matches = [i for i in ids if i.startswith(text)]
    if len(matches) == 1:
        return str(matches[0])
    if not matches:
        raise ApiError(f"Cannot find job '{text}'")
    shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise ApiError(f"'{text}' is the start of {len(matches)} job ids ({shown}): give more of it")


def step_id(client: ApiClient, text: str) -> tuple[str, int]:
    """``(job id, sequence)`` of ``{jobId or prefix}-NN``."""
    match = STEP_SUFFIX.match(text)
    if match is None:
        raise ApiError(f"'{text}' is not a step id ({{jobId}}-NN, a job-id prefix will do)")
    return job_id(client, match["job"]), int(match["seq"])
