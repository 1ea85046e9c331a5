"""The engine's event stream: typed, frozen events, in the order they happened.

Four kinds, one frozen class each, all subclasses of :class:`Event` (``match`` on them)::

    Event(job_id, time, dropped)
    +-- JobChanged(state, old)            a batch job's state changed (old is None: submitted)
    +-- StepChanged(step_id, sequence, state, old)   one of its steps' state changed
    +-- OutputLine(step_id, text)         a running step wrote a line of output
    +-- StreamingChanged(status, old, cause, mvcc)   a streaming job's status changed

Buffering: publishing never waits and is cheap when nobody listens (one length check). Each
subscriber has its own bounded buffer (``EventBus(buffer=...)``, or ``subscribe(buffer=...)``
per subscriber; ``buffer <= 0`` means unbounded). A subscriber that falls a full buffer behind
does not slow the engine down: the events that do not fit are discarded for that subscriber
only (the newest ones, so what it has already received stays a true prefix), a warning
``kjobs.events.subscriber_behind`` is logged once per gap, and the next event that fits carries
``dropped`` = how many it missed just before it. A subscriber that sees ``dropped > 0`` should
re-read the state it cares about from the engine instead of trusting its running picture.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine.core.jobs import Job
from engine.core.states import State, StreamingStatus
from engine.logging import get_logger

log = get_logger()

DEFAULT_BUFFER = 100_000  #: events one subscriber may fall behind before it loses some


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to a job, stamped with the engine clock's time (epoch ms)."""

    kind: ClassVar[str] = "event"  #: the wire name of the kind (SSE ``event:``, JSON ``kind``)

    job_id: str
    time: int
    #: events this subscriber lost just before this one (its buffer was full); 0 normally
    dropped: int = field(default=0, kw_only=True)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``kind`` first, then every field (enums as their values)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True, slots=True)
class JobChanged(Event):
    """A batch job's state changed (``old`` is None when the job was just submitted)."""

    kind: ClassVar[str] = "job"

    state: State
    old: State | None = None


@dataclass(frozen=True, slots=True)
class StepChanged(Event):
    """A step of a batch job changed state (``old`` is None when the job was just submitted)."""

    kind: ClassVar[str] = "step"

    step_id: str
    sequence: int
    state: State
    old: State | None = None


@dataclass(frozen=True, slots=True)
class OutputLine(Event):
    """A running step wrote a line of output (``text`` keeps its line end)."""

    kind: ClassVar[str] = "output"

    step_id: str
    text: str


@dataclass(frozen=True, slots=True)
class StreamingChanged(Event):
    """A streaming job's status changed; ``cause`` is the action or loop event behind it."""

    kind: ClassVar[str] = "streaming"

    status: StreamingStatus
    old: StreamingStatus
    cause: str  #: the action (START, ...) or event (LAUNCHED, ...) that made it
    mvcc: int  #: the job's mvcc once the whole decision is stored


class EventBus:
    """Fan-out of events to any number of subscribers (see the module doc for buffering)."""

    def __init__(self, buffer: int = DEFAULT_BUFFER) -> None:
        self._buffer = buffer
        self._subscribers: list[_Subscriber] = []
        self._job_hooks: list[Callable[[Job | None, Job], None]] = []

    @property
    def active(self) -> bool:
        """Whether anyone listens (publishers may skip building events when not)."""
        return bool(self._subscribers)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber without waiting."""
        for sub in self._subscribers:
            sub.offer(event)

    def add_job_hook(self, hook: Callable[[Job | None, Job], None]) -> None:
        """Call ``hook(old, new)`` synchronously on every stored job write (metrics)."""
        self._job_hooks.append(hook)

    def job_changed(self, old: Job | None, new: Job, now: int) -> None:
        """Publish the steps' and then the job's state changes between two versions of a job."""
        for hook in self._job_hooks:
            hook(old, new)
        if not self._subscribers:
            return
        old_steps = {s.sequence: s.state for s in old.steps} if old is not None else {}
        for step in new.steps:
            before = old_steps.get(step.sequence)
            if before is not step.state:
                self.publish(StepChanged(new.id, now, step.id, step.sequence, step.state, before))
        if old is None or old.state is not new.state:
            self.publish(JobChanged(new.id, now, new.state, old.state if old else None))

    @asynccontextmanager
    async def subscribe(self, buffer: int | None = None) -> AsyncIterator[AsyncIterator[Event]]:
        """Receive every event published while the context is open.

        ``buffer``: how far this subscriber may fall behind (default: the bus's); ``<= 0``
        means unbounded, for a waiter that must not miss its event.
        """
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
        self.dropped = 0  #: events discarded since the last one delivered

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
