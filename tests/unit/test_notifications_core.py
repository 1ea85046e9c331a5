"""The pure rules of job-end notifications (``engine.core.notifications``)."""

from __future__ import annotations

import random

from engine.core.notifications import MAX_BACKOFF_MS, event_id, job_end, retry_delay_ms
from engine.core.states import JOB_END_STATES, State
from tests.integration.test_store_contract import make_job


def test_every_move_into_an_end_state_is_notified_once() -> None:
    job = make_job("j1").evolve(version=3)
    for old in State:
        for new in State:
            end = job_end(job.evolve(state=old), job.evolve(state=new, end_time=5))
            owed = new in JOB_END_STATES and new is not old
            assert (end is not None) is owed, (old, new)
            if end is not None:
                assert end.job_state == new.rest_name
                assert end.event_id == event_id("j1", 4)  # the version the write stores


def test_a_discard_of_a_stopped_job_is_notified() -> None:
    job = make_job("j1").evolve(state=State.STOPPED)
    end = job_end(job, job.evolve(state=State.DISCARDED))
    assert end is not None and end.job_state == "DISCARDED" and end.error_step is None


def test_the_backoff_doubles_is_capped_and_jittered_below() -> None:
    rng = random.Random(1)
    for retry, base in [(1, 1000), (2, 2000), (3, 4000), (7, MAX_BACKOFF_MS), (99, MAX_BACKOFF_MS)]:
        delays = {retry_delay_ms(retry, 1000, rng) for _ in range(50)}
        assert all(0.8 * base <= d <= base for d in delays), (retry, delays)
        assert len(delays) > 1  # jitter spreads a burst of retries
