"""The event bus: typed events, published in order, and what a slow subscriber sees."""

from __future__ import annotations

import dataclasses

import anyio
import pytest

from engine.core import operations as ops
from engine.core.jobs import Family, Mode, Segment, StepSpec
from engine.core.states import State, StreamingStatus
from engine.events import (
    Event,
    EventBus,
    JobChanged,
    OutputLine,
    StepChanged,
    StreamingChanged,
)

SPECS = (
    StepSpec("a", "sim", Family.SHELL, Mode.SIMULATED),
    StepSpec("b", "sim", Family.SHELL, Mode.SIMULATED),
)
SEGMENT = Segment("seg", "cube", "s", 0, 1)


def line(n: int) -> OutputLine:
    return OutputLine("job", n, "job-00", f"line {n}\n")


async def drain(events: object, count: int) -> list[Event]:
    got: list[Event] = []
    with anyio.fail_after(5):
        async for event in events:  # type: ignore[attr-defined]
            got.append(event)
            if len(got) == count:
                break
    return got


def test_events_are_frozen_and_typed() -> None:
    event = JobChanged("j", 1, State.RUNNING, State.READY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.state = State.ERROR  # type: ignore[misc]
    assert isinstance(event, Event)
    assert event.dropped == 0
    assert event.as_dict() == {
        "kind": "job",
        "job_id": "j",
        "time": 1,
        "dropped": 0,
        "state": State.RUNNING,
        "old": State.READY,
    }
    streaming = StreamingChanged(
        "s", 2, StreamingStatus.STARTING, StreamingStatus.STOPPED, "START", 3
    )
    assert [type(e).kind for e in (event, streaming, line(0))] == ["job", "streaming", "output"]


async def test_job_changed_publishes_steps_then_the_job() -> None:
    bus = EventBus()
    job = ops.submit("job", "p", "cube", "BUILD", SEGMENT, SPECS, "ADMIN", 10).job
    running = ops.start_next_step(job, 20, "here").job
    async with bus.subscribe() as events:
        bus.job_changed(None, job, 10)
        bus.job_changed(job, running, 20)
        got = await drain(events, 4)
    assert got == [
        StepChanged("job", 10, job.steps[0].id, 0, State.READY),
        StepChanged("job", 10, job.steps[1].id, 1, State.READY),
        JobChanged("job", 10, State.READY),
        StepChanged("job", 20, job.steps[0].id, 0, State.RUNNING, State.READY),
    ]


@pytest.mark.parametrize(
    ("buffer", "published", "delivered", "dropped_on_next"),
    [
        (3, 3, [0, 1, 2], 0),  # exactly full: nothing lost
        (3, 5, [0, 1, 2], 2),  # two did not fit: the next event says so
        (1, 4, [0], 3),
        (0, 50, list(range(50)), 0),  # 0 = unbounded
    ],
)
async def test_a_slow_subscriber_loses_the_newest_and_is_told_how_many(
    buffer: int, published: int, delivered: list[int], dropped_on_next: int
) -> None:
    bus = EventBus()
    async with bus.subscribe(buffer=buffer) as events:
        for n in range(published):
            bus.publish(line(n))
        got = await drain(events, len(delivered))
        assert [e.time for e in got] == delivered
        assert all(e.dropped == 0 for e in got)
        bus.publish(line(100))
        (after,) = await drain(events, 1)
    assert after.time == 100
    assert after.dropped == dropped_on_next


async def test_one_slow_subscriber_does_not_cost_another_its_events() -> None:
    bus = EventBus()
    async with bus.subscribe(buffer=1) as slow, bus.subscribe(buffer=10) as fast:
        for n in range(5):
            bus.publish(line(n))
        assert [e.time for e in await drain(fast, 5)] == [0, 1, 2, 3, 4]
        assert [e.time for e in await drain(slow, 1)] == [0]
    assert not bus.active
