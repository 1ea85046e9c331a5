"""Pure pieces of the API: the job renderer's cache and the list's time filter."""

from __future__ import annotations

import datetime as dt
import json

from engine.api.jobs import modified_since
from engine.api.views import JobRenderer
from engine.core.jobs import Family, Job, Segment, Step, StepSpec
from engine.core.states import State

SECOND = 1000


def a_job(**changes: object) -> Job:
    spec = StepSpec("Extract", "JAVA_CMD_HADOOP_FACTDISTINCT", Family.MAPREDUCE)
    job = Job(
        id="job-1",
        name="BUILD CUBE - c - s - t UTC",
        project="p",
        cube="c",
        build_type="BUILD",
        segment=Segment("seg-1", "c", "s", 0, 10),
        submitter="ADMIN",
        priority=20,
        steps=(Step("job-1", 0, spec),),
        version=1,
    )
    return job.evolve(**changes)


def test_running_job_duration_follows_the_clock() -> None:
    renderer = JobRenderer("4.0.0.0")
    job = a_job(state=State.RUNNING, start_time=100 * SECOND, version=2)
    first = json.loads(renderer.render(job, 110 * SECOND))
    later = json.loads(renderer.render(job, 130 * SECOND))
    assert (first["duration"], later["duration"]) == (10, 30)


def test_ended_job_is_rendered_once_per_version() -> None:
    renderer = JobRenderer("4.0.0.0")
    ended = a_job(state=State.ERROR, start_time=100 * SECOND, end_time=150 * SECOND, version=3)
    body = renderer.render(ended, 200 * SECOND)
    assert renderer.render(ended, 900 * SECOND) is body
    assert json.loads(body)["duration"] == 50
    resumed = ended.evolve(state=State.READY, end_time=0, interrupt_time=50 * SECOND, version=4)
    assert json.loads(renderer.render(resumed, 300 * SECOND))["job_status"] == "PENDING"


def test_cache_is_bounded() -> None:
    renderer = JobRenderer("4.0.0.0", size=2)
    jobs = [a_job(version=v) for v in range(1, 5)]
    bodies = [renderer.render(job, 0) for job in jobs]
    assert renderer.render(jobs[-1], 0) is bodies[-1]
    assert renderer.render(jobs[0], 0) is not bodies[0]  # evicted, rendered again
    assert renderer.render(jobs[0], 0) == bodies[0]


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def test_time_filters() -> None:
    now = ms(2024, 3, 31, 15, 30)
    assert modified_since(0, now) == ms(2024, 3, 31)
    assert modified_since(1, now) == ms(2024, 3, 30, 15, 30)
    assert modified_since(2, now) == ms(2024, 3, 24, 15, 30)
    assert modified_since(3, now) == ms(2024, 2, 29, 15, 30)  # no 31 February: last day
    assert modified_since(4, now) == ms(2023, 3, 31, 15, 30)
    assert modified_since(5, now) is None
    assert modified_since(4, ms(2024, 2, 29)) == ms(2023, 2, 28)
    assert modified_since(3, ms(2024, 1, 15)) == ms(2023, 12, 15)
