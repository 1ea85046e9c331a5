"""``engine.core.applications``: what a resumed MR step does with the simulated YARN application
its interrupted attempt recorded (SPEC §2.3): re-attach, end as recorded, or submit anew, so
that two applications of one step never run."""

from __future__ import annotations

import pytest

from engine.core import applications as apps
from engine.core.applications import Fate, Recorded

SUBMITTED, START, FINISH = 1_000, 2_000, 5_000


def info(**changes: str | None) -> dict[str, str]:
    """A complete record (succeeding, retry 0), with ``changes`` (None drops a key)."""
    record = {
        apps.APP_ID: "application_7_0003",
        apps.JOB_ID: "job_7_0003",
        apps.SUBMITTED: str(SUBMITTED),
        apps.EXPECTED_START: str(START),
        apps.EXPECTED_FINISH: str(FINISH),
        apps.EXPECTED_STATUS: apps.SUCCEEDED,
        apps.RETRY: "0",
        "startTime": "900",
    }
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def app(**changes: str | None) -> Recorded:
    recorded = apps.recorded(info(**changes))
    assert recorded is not None
    return recorded


def test_a_complete_record_is_read_back_whole() -> None:
    assert app() == Recorded(
        "application_7_0003", "job_7_0003", SUBMITTED, START, FINISH, apps.SUCCEEDED, 0
    )
    assert app(yarn_expected_final_status=apps.FAILED).fails
    assert not app().fails


@pytest.mark.parametrize(
    "record",
    [
        None,
        {},
        {"startTime": "1"},  # a step that never submitted
        info(yarn_application_id=""),
        info(yarn_expected_start=None),  # the engine died before the timeline was written
        info(yarn_expected_finish="soon"),
    ],
)
def test_no_usable_record_means_none(record: dict[str, str] | None) -> None:
    assert apps.recorded(record) is None
    assert apps.fate(apps.recorded(record), START, killed=False, retries=0) is Fate.SUBMIT


def test_an_older_record_fills_in_what_it_lacks() -> None:
    old = app(
        mr_job_id=None,
        yarn_submit_time=None,
        yarn_expected_final_status=None,
        yarn_step_retry=None,
    )
    assert old.job_id == "job_7_0003"  # from the application id
    assert old.submitted == 900  # the attempt's startTime
    assert (old.status, old.retry) == (None, None)
    assert app(yarn_expected_final_status="RUNNING").status is None  # unknown: as if absent
    assert app(yarn_step_retry="x").retry is None
    assert app(yarn_submit_time=str(START + 1)).submitted == START  # never after its start


@pytest.mark.parametrize(
    ("now", "fate"),
    [
        (SUBMITTED, Fate.ATTACH),  # still queued
        (START + 1, Fate.ATTACH),  # running: wait out the rest
        (FINISH - 1, Fate.ATTACH),
        (FINISH, Fate.ENDED),  # ended while nobody watched: end with its status
        (FINISH + 3_600_000, Fate.ENDED),
    ],
)
def test_the_clock_decides_between_attach_and_ended(now: int, fate: Fate) -> None:
    assert apps.fate(app(), now, killed=False, retries=0) is fate
    failing = app(yarn_expected_final_status=apps.FAILED)
    assert apps.fate(failing, now, killed=False, retries=0) is fate


@pytest.mark.parametrize("now", [START, FINISH + 1])
def test_a_killed_application_is_never_reattached_to(now: int) -> None:
    assert apps.fate(app(), now, killed=True, retries=0) is Fate.SUBMIT  # this engine killed it
    recorded_kill = app(yarn_expected_final_status=apps.KILLED)
    assert recorded_kill.status == apps.KILLED
    assert apps.fate(recorded_kill, now, killed=False, retries=0) is Fate.SUBMIT


@pytest.mark.parametrize("now", [START, FINISH + 1])
def test_an_application_of_an_earlier_retry_is_not_taken_over(now: int) -> None:
    # the failed attempt's application is accounted for already: the retry submits its own
    assert apps.fate(app(), now, killed=False, retries=1) is Fate.SUBMIT
    assert apps.fate(app(yarn_step_retry="1"), now, killed=False, retries=1) is not Fate.SUBMIT


def test_an_older_record_is_reattached_while_running_and_submitted_anew_after() -> None:
    old = app(yarn_expected_final_status=None, yarn_step_retry=None)
    assert apps.fate(old, START, killed=False, retries=5) is Fate.ATTACH
    assert apps.fate(old, FINISH, killed=False, retries=5) is Fate.SUBMIT  # status unknown
