"""The engine's event stream: job and step state changes and output lines, in order.

Publishing is cheap when nobody listens (one length check). Each subscriber gets its own
bounded buffer; a subscriber that falls that far behind loses events and is told so by a
``dropped`` count on the next event it receives, instead of slowing the engine down.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine.core.jobs import Job
from engine.core.states import State

log = structlog.get_logger("kjobs")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, stamped with the engine clock's time (epoch ms)."""

    kind: str  #: "job" (state change), "step" (state change), "output" (a line), "streaming"
    job_id: str
    time: int
    state: str | None = None  #: the new state (job, step or streaming job)
    step_id: str | None = None
    text: str | None = None  #: output text, or a streaming action / detail
    dropped: int = 0  #: events this subscriber lost just before this one


class EventBus:
    """Fan-out of events to any number of subscribers."""

    def __init__(self, buffer: int = 100_000) -> None:
        self._buffer = buffer
        self._subscribers: list[_Subscriber] = []

    @property
    def active(self) -> bool:
        """Whether anyone listens (publishers may skip building events when not)."""
        return bool(self._subscribers)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber without waiting."""
        for sub in self._subscribers:
            sub.offer(event)

    def job_changed(self, old: Job | None, new: Job, now: int) -> None:
        """Publish the job's and its steps' state changes between two versions of it."""
        if not self._subscribers:
            return
        old_steps = {s.sequence: s.state for s in old.steps} if old is not None else {}
        for step in new.steps:
            if old_steps.get(step.sequence) is not step.state:
                self.publish(Event("step", new.id, now, step.state.value, step.id))
        if old is None or old.state is not new.state:
            self.publish(Event("job", new.id, now, new.state.value))

    @asynccontextmanager
    async def subscribe(self, buffer: int | None = None) -> AsyncIterator[AsyncIterator[Event]]:
        """Receive every event published while the context is open."""
        size = self._buffer if buffer is None else buffer
        send, receive = anyio.create_memory_object_stream[Event](math.inf if size <= 0 else size)
        sub = _Subscriber(send)
        self._subscribers.append(sub)
        try:
            async with receive:
                yield _iterate(receive)
        finally:
            self._subscribers.remove(sub)
            send.close()


class _Subscriber:
    def __init__(self, send: MemoryObjectSendStream[Event]) -> None:
        self.send = send
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if self.dropped:
            event = dataclasses.replace(event, dropped=self.dropped)
        try:
            self.send.send_nowait(event)
            self.dropped = 0
        except anyio.WouldBlock:
            if not self.dropped:
                log.warning("kjobs.events.subscriber_behind")
            self.dropped += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass


async def _iterate(receive: MemoryObjectReceiveStream[Event]) -> AsyncIterator[Event]:
    async for event in receive:
        yield event


def is_state(value: str | None, *states: State) -> bool:
    """Whether an event's ``state`` is one of ``states``."""
    return value is not None and value in {s.value for s in states}
