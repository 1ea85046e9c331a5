"""The monitor's figures (issue 13): the page's load time over 100,000 stored jobs, SSE fan-out.

- ``page_load``: a real ``kjobs serve`` on a store filled by ``bench.listing.fill``; Debian's
  headless Chromium (driven by Playwright, never a downloaded browser) opens ``/kylin/`` in a
  fresh page per round; the time runs from navigation until the first page of jobs is drawn and
  the overview counts are in (``[data-job-id]`` rows and ``[data-overview] .count`` present).
- ``sse_fanout``: ``clients`` raw connections read ``/kylin/api/events`` while ``jobs`` sample
  builds run at a high time scale; the figure is the events delivered to all clients per
  second, from the first submission until every client saw every job end. The clients are lean
  asyncio streams in this process, sharing the machine's cores with the server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

from bench.common import percentile
from bench.server import AUTH, kjobs_serve
from engine.clock import monotonic

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)  # fmt: skip
CREDENTIALS: Final = {"username": "ADMIN", "password": "KYLIN"}
JOB_END: Final = b'"status":"FINISHED"}'  #: ends a ``job`` event's data (a step's has more keys)


def page_load(store: Path, work: Path, rounds: int) -> dict[str, Any]:
    """Load ``/kylin/`` ``rounds`` times over ``store``; milliseconds to the first drawn page."""
    from playwright.sync_api import sync_playwright  # a dev dependency: imported when used

    times: list[float] = []
    with kjobs_serve(store, work) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, http_credentials=CREDENTIALS
        )
        for _ in range(rounds + 1):  # the first round warms the server's caches: not counted
            page = context.new_page()
            started = monotonic()
            page.goto(server.url + "/kylin/#/jobs?time=5", wait_until="commit")
            page.wait_for_selector("[data-job-id]", timeout=60_000)
            page.wait_for_selector('[data-overview="FINISHED"] .count', timeout=60_000)
            times.append((monotonic() - started) * 1000)
            rows = page.locator("[data-job-id]").count()
            page.close()
        browser.close()
    counted = times[1:]
    return {
        "rounds": rounds,
        "rows_drawn": rows,
        "p50_ms": percentile(counted, 50),
        "max_ms": max(counted),
        "cold_ms": times[0],
    }


def sse_fanout(work: Path, clients: int, jobs: int, time_scale: float = 5000.0) -> dict[str, Any]:
    """Events per second delivered to ``clients`` SSE readers while ``jobs`` builds run."""
    with kjobs_serve(work / "fanout.sqlite", work, time_scale) as server:
        return asyncio.run(_fanout(server.host, server.port, clients, jobs))


async def _fanout(host: str, port: int, clients: int, jobs: int) -> dict[str, Any]:
    readers = [_Reader(jobs) for _ in range(clients)]
    await asyncio.gather(*(r.connect(host, port) for r in readers))
    tasks = [asyncio.create_task(r.read()) for r in readers]
    started = monotonic()
    await _submit(host, port, jobs)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=600)
    elapsed = monotonic() - started
    events = sum(r.events for r in readers)
    return {
        "clients": clients,
        "jobs": jobs,
        "events_per_client": events / clients,
        "events_total": events,
        "resyncs": sum(r.resyncs for r in readers),
        "elapsed_s": elapsed,
        "events_per_s": events / elapsed,
    }


async def _submit(host: str, port: int, jobs: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in range(jobs):
            body = f'{{"startTime":{i * 1000},"endTime":{(i + 1) * 1000},"buildType":"BUILD"}}'
            writer.write(
                f"PUT /kylin/api/cubes/kylin_sales_cube/rebuild HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: {AUTH}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        writer.close()


class _Reader:
    """One SSE client: counts events, and the ``job`` events that say FINISHED."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.events = 0
        self.finished = 0
        self.resyncs = 0
        self._stream: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self, host: str, port: int) -> None:
        self._stream, self._writer = await asyncio.open_connection(host, port)
        request = f"GET /kylin/api/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH}\r\n\r\n"
        self._writer.write(request.encode())
        await self._writer.drain()
        seen = b""
        while b": subscribed" not in seen:  # listening from here on
            seen += await self._stream.read(65536)

    async def read(self) -> None:
        assert self._stream is not None and self._writer is not None
        tail = b""
        while self.finished < self.jobs:
            chunk = await self._stream.read(262144)
            if not chunk:
                break
            messages = (tail + chunk).split(b"\n\n")
            tail = messages.pop()
            for message in messages:
                # chunked framing sits between messages: look for the event line anywhere
                if b"event: " not in message:
                    continue
                self.events += 1
                if b"event: job\n" in message and message.endswith(JOB_END):
                    self.finished += 1
                elif b"event: resync" in message:
                    self.resyncs += 1
        self._writer.close()
