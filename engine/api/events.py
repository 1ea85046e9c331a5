"""``GET /kylin/api/events``: the engine's events as Server-Sent Events (SPEC §10).

::

    $ curl -N -u ADMIN:KYLIN 'http://127.0.0.1:7070/kylin/api/events?job_id=…'
    event: step
    data: {"job_id":"…","step_id":"…-00","status":"RUNNING"}

Each event is named by kind (``job``, ``step``, ``output``, ``streaming``) and carries the JSON
keys of SPEC "10–11 precisely". Besides those:

- ``: subscribed`` (an SSE comment) once the stream listens: what a client sees from then on
  is every change, in order;
- ``: keep-alive`` every ``HEARTBEAT_S`` of silence, so that proxies keep the stream open;
- ``event: resync`` with ``{"dropped": n}`` when this client fell so far behind that ``n``
  events were thrown away for it: the client should re-read what it shows (the page does).

A slow client never slows the engine down: a task per stream takes every event off the bus
at once into that client's own bounded buffer (``CLIENT_BUFFER`` events); what does not fit
is dropped for that client only and counted (``kjobs_events_dropped_total``). The
stream ends cleanly (a complete chunked body) when the client goes away or the server starts
to shut down (``Closing``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any, Final

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from fastapi import APIRouter, Query, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from engine.api.deps import EngineDep
from engine.core.errors import JobNotFound
from engine.events import Event, JobChanged, OutputLine, StepChanged, StreamingChanged
from engine.facade import Engine

HEARTBEAT_S: Final = 15.0
CLIENT_BUFFER: Final = 1_000  #: events one client may fall behind before it loses some
RETRY_MS: Final = 2_000  #: how soon a browser's EventSource reconnects after the stream ends
HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]

# Left out of the OpenAPI document: a stream that never ends is no request/response operation
# (and fuzzers that read the document would wait on it forever). The README documents it.
router = APIRouter(tags=["events"], include_in_schema=False)


class Closing:
    """The server is shutting down: every open event stream ends at once.

    ``close()`` may be called from a signal handler or another thread.
    """

    def __init__(self) -> None:
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[anyio.Event] = set()

    def close(self) -> None:
        """End every stream, now and from now on."""
        self.closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    async def wait(self) -> None:
        """Return once ``close()`` was called."""
        self._loop = asyncio.get_running_loop()
        waiter = anyio.Event()
        self._waiters.add(waiter)
        try:
            if not self.closed:
                await waiter.wait()
        finally:
            self._waiters.discard(waiter)


def sse_payload(engine: Engine, event: Event) -> tuple[str, dict[str, Any]] | None:
    """The SSE name and JSON data of an engine event (None: not shown on the stream)."""
    match event:
        case JobChanged(job_id=job_id, state=state):
            return event.kind, {"job_id": job_id, "status": state.rest_name}
        case StepChanged(job_id=job_id, step_id=step_id, state=state):
            return event.kind, {"job_id": job_id, "step_id": step_id, "status": state.rest_name}
        case OutputLine(job_id=job_id, step_id=step_id, text=text):
            line = text.rstrip("\r\n")
            return event.kind, {"job_id": job_id, "step_id": step_id, "line": line}
        case StreamingChanged(job_id=uuid, status=status) if engine.streaming is not None:
            try:
                alias = engine.streaming.get(uuid).model_alias
            except JobNotFound:
                return None
            return event.kind, {"uuid": uuid, "model_alias": alias, "status": status.listed_as}
    return None


def frame(name: str, data: dict[str, Any]) -> bytes:
    """One SSE message (the JSON has no line breaks, so one ``data:`` line)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {body}\n\n".encode()


class EventStreamResponse(Response):
    """Streams one subscription of the event bus until disconnect or shutdown."""

    def __init__(
        self, engine: Engine, closing: Closing, job_id: str | None, heartbeat_s: float
    ) -> None:
        super().__init__()
        self._engine = engine
        self._closing = closing
        self._job_id = job_id
        self._heartbeat_s = heartbeat_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers, then events, heartbeats and resyncs; end with an empty chunk."""
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        metrics = self._engine.metrics
        metrics.event_clients.inc()
        try:
            # the bus buffer is unbounded: the forwarder below never blocks, it drops instead
            async with (
                self._engine.events.subscribe(buffer=0) as events,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(_until_disconnect, receive, tg.cancel_scope)
                tg.start_soon(self._until_closing, tg.cancel_scope)
                items_send, items = anyio.create_memory_object_stream[Event | int](CLIENT_BUFFER)
                tg.start_soon(self._forward, events, items_send)
                await _body(send, f"retry: {RETRY_MS}\n: subscribed\n\n".encode())
                await self._pump(items, send)
                tg.cancel_scope.cancel()
        finally:
            metrics.event_clients.dec()
        # the final empty chunk: the client sees a complete response, not a broken one
        with anyio.CancelScope(shield=True), anyio.move_on_after(1), suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _until_closing(self, scope: anyio.CancelScope) -> None:
        await self._closing.wait()
        scope.cancel()

    async def _forward(
        self, events: AsyncIterator[Event], out: MemoryObjectSendStream[Event | int]
    ) -> None:
        """Bus -> this client's bounded buffer; what does not fit is counted, never waited for.

        An ``int`` in the buffer is a resync marker: that many events were lost just before.
        """
        dropped = 0
        async with out:
            async for event in events:
                if not self._wanted(event):
                    continue
                try:
                    if dropped:
                        out.send_nowait(dropped)
                        dropped = 0
                    out.send_nowait(event)
                except anyio.WouldBlock:
                    dropped += 1
                    self._engine.metrics.events_dropped.inc()

    async def _pump(self, items: MemoryObjectReceiveStream[Event | int], send: Send) -> None:
        while True:
            item: Event | int | None = None
            with anyio.move_on_after(self._heartbeat_s):
                item = await items.receive()
            if item is None:
                await _body(send, b": keep-alive\n\n")
            elif isinstance(item, int):
                await _body(send, frame("resync", {"dropped": item}))
            else:
                payload = sse_payload(self._engine, item)
                if payload is not None:
                    await _body(send, frame(*payload))

    def _wanted(self, event: Event) -> bool:
        # SPEC: the job_id filter narrows job, step and output events; streaming ones go away
        if self._job_id is None:
            return True
        return not isinstance(event, StreamingChanged) and event.job_id == self._job_id


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


@router.get("/events", summary="Live events (Server-Sent Events)")
async def events(
    request: Request,
    engine: EngineDep,
    job_id: str | None = Query(default=None, description="only this job's job/step/output events"),
) -> Response:
    """``text/event-stream`` of job, step, output and streaming changes (SPEC §10)."""
    closing: Closing = request.app.state.closing
    heartbeat: float = getattr(request.app.state, "events_heartbeat_s", HEARTBEAT_S)
    return EventStreamResponse(engine, closing, job_id, heartbeat)
