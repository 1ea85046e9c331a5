"""The streaming rules the runtime asks (core.streaming, core.streaming_params), by example."""

from __future__ import annotations

import pytest

from engine.core import streaming as core
from engine.core.states import StreamingAction, StreamingJobType, StreamingStatus
from engine.core.streaming import StreamingJob
from engine.core.streaming_params import RETRY_ENABLED, StreamingSettings, may_retry

T0 = 1_700_000_000_000
ST = StreamingStatus


def job_in(status: StreamingStatus, **params: str) -> StreamingJob:
    """A build job brought to ``status`` by the machine's own decisions."""
    job = core.new_job(
        "m",
        StreamingJobType.STREAMING_BUILD,
        T0,
        model_alias="m",
        project="p",
        owner="ADMIN",
        params=params,
    )

    def start(j: StreamingJob, t: int) -> core.StreamingDecision:
        return core.apply_action(j, StreamingAction.START, t, model_broken=False)

    chains = {
        ST.STOPPED: [],
        ST.STARTING: [start],
        ST.RUNNING: [start, lambda j, t: core.launched(j, t)],
        ST.STOPPING: [
            start,
            lambda j, t: core.launched(j, t),
            lambda j, t: core.apply_action(j, StreamingAction.STOP, t, model_broken=False),
        ],
        ST.ERROR: [start, lambda j, t: core.launched(j, t), core.loop_failed],
        ST.LAUNCHING_ERROR: [start, core.launch_failed],
    }
    for i, decide in enumerate(chains[status]):
        job = decide(job, T0 + i + 1).job
    assert job.status is status
    return job


@pytest.mark.parametrize(
    ("status", "failed", "after"),
    [
        (ST.STARTING, False, ST.RUNNING),
        (ST.STARTING, True, ST.LAUNCHING_ERROR),
        (ST.STOPPING, False, ST.STOPPED),  # a STOP came while launching: it wins
        (ST.STOPPING, True, ST.STOPPED),
    ],
)
def test_a_finished_launch(status: StreamingStatus, failed: bool, after: StreamingStatus) -> None:
    job = job_in(ST.STARTING)
    if status is ST.STOPPING:
        job = core.apply_action(job, StreamingAction.STOP, T0 + 5, model_broken=False).job
    decision = core.launch_ended(job, T0 + 9, failed=failed, yarn_app_id="application_1_0001")
    assert decision.job.status is after
    if after is ST.RUNNING:
        assert decision.job.yarn_app_id == "application_1_0001"


@pytest.mark.parametrize(
    ("status", "after"),
    [
        (ST.STARTING, ST.LAUNCHING_ERROR),  # still launching: a launch failure
        (ST.RUNNING, ST.ERROR),  # the loop failed
        (ST.STOPPING, ST.ERROR),
    ],
)
def test_launch_failure_or_loop_failure(status: StreamingStatus, after: StreamingStatus) -> None:
    assert core.run_failed(job_in(status), T0 + 9).job.status is after


@pytest.mark.parametrize(
    ("status", "params", "setting", "retry"),
    [
        (ST.ERROR, {RETRY_ENABLED: "true"}, False, True),
        (ST.ERROR, {RETRY_ENABLED: "false"}, True, False),  # the job's params win
        (ST.ERROR, {}, True, True),  # no param: the engine's setting
        (ST.ERROR, {}, False, False),
        (ST.ERROR, {RETRY_ENABLED: "true", "kylin.streaming.duration": "x"}, False, False),
        (ST.LAUNCHING_ERROR, {RETRY_ENABLED: "true"}, True, False),  # a failed launch: never
        (ST.RUNNING, {RETRY_ENABLED: "true"}, True, False),
        (ST.STOPPED, {RETRY_ENABLED: "true"}, True, False),
    ],
)
def test_may_retry(
    status: StreamingStatus, params: dict[str, str], setting: bool, retry: bool
) -> None:
    settings = StreamingSettings(job_retry_enabled=setting)
    assert may_retry(job_in(status, **params), settings) is retry
