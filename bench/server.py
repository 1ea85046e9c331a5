"""A real ``kjobs serve`` process on loopback, and a lean HTTP/1.1 load generator for it.

The load generator is raw asyncio streams with keep-alive connections and pre-built requests:
on a 2-core machine the client shares the CPU with the server, so it must cost far less per
request than the server does (an ``httpx`` client would be the bottleneck, not the server).
"""

from __future__ import annotations

import asyncio
import base64
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from engine.clock import monotonic

AUTH: Final = "Basic " + base64.b64encode(b"ADMIN:KYLIN").decode()
START_TIMEOUT_S: Final = 60.0
READY_PREFIX: Final = "kjobs: serving on "


@dataclass
class Server:
    """A running ``kjobs serve``."""

    process: subprocess.Popen[str]
    url: str

    @property
    def host(self) -> str:
        """The host it listens on."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The port it listens on."""
        return urlsplit(self.url).port or 80

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid


def clean_env() -> dict[str, str]:
    """The environment without ``KJOBS_*`` settings (the figures use the shipped config)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}


@contextmanager
def kjobs_serve(
    store: Path,
    workdir: Path,
    time_scale: float = 1000.0,
    settings: dict[str, str] | None = None,
) -> Iterator[Server]:
    """``kjobs serve --port 0`` on ``store`` (``settings``: extra ``KJOBS_*`` variables);
    stopped with SIGTERM (then SIGKILL) at the end."""
    command = [
        sys.executable, "-m", "engine.cli", "serve", "--host", "127.0.0.1", "--port", "0",
        "--store", str(store), "--time-scale", str(time_scale),
    ]  # fmt: skip
    env = clean_env()
    env["KJOBS_WORKDIR"] = str(workdir)
    env.update(settings or {})
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, start_new_session=True
    )
    try:
        yield Server(process, _wait_ready(process))
    finally:
        stop(process)
        log.close()


def _wait_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = monotonic() + START_TIMEOUT_S
    with selectors.DefaultSelector() as sel:
        sel.register(process.stdout, selectors.EVENT_READ)
        while monotonic() < deadline:
            if not sel.select(timeout=0.5):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith(READY_PREFIX):
                return line[len(READY_PREFIX) :].split()[0]
    raise RuntimeError(f"kjobs serve did not start (exit code {process.poll()})")


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM the process group, SIGKILL it after 15 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- the load generator -----------------------------------------------------------------------


def get_request(host: str, port: int, path: str) -> bytes:
    """An authenticated keep-alive ``GET path``."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {AUTH}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


@dataclass
class LoadResult:
    """What a load run saw."""

    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: int = 0
    body_bytes: int = 0

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0


class Connection:
    """One keep-alive HTTP/1.1 connection (Content-Length bodies only)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        """Connect."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw``; the status code and the body."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise RuntimeError("chunked responses are not supported by the bench client")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        with suppress(OSError):
            await self.writer.wait_closed()


async def load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    clients: int,
    duration_s: float,
    warmup_s: float = 1.0,
) -> LoadResult:
    """``clients`` connections, each sending ``requests`` round-robin back to back.

    Requests during the first ``warmup_s`` are not counted; then every request that completes
    within ``duration_s`` is.
    """
    conns = [await Connection.open(host, port) for _ in range(clients)]
    result = LoadResult()
    start = monotonic()
    counting_from = start + warmup_s
    stop_at = counting_from + duration_s

    async def client(conn: Connection, first: int) -> None:
        index = first
        while True:
            sent = monotonic()
            if sent >= stop_at:
                return
            status, body = await conn.request(requests[index % len(requests)])
            index += 1
            done = monotonic()
            if sent >= counting_from and done <= stop_at:
                result.latencies_ms.append((done - sent) * 1000.0)
                result.body_bytes += len(body)
                if status != 200:
                    result.errors += 1

    try:
        await asyncio.gather(*(client(c, i) for i, c in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()
    result.elapsed_s = duration_s
    return result


async def sequential(host: str, port: int, requests: Sequence[bytes]) -> list[tuple[int, float]]:
    """Send each request in turn on one connection: (status, latency ms) of each."""
    conn = await Connection.open(host, port)
    out: list[tuple[int, float]] = []
    try:
        for raw in requests:
            sent = monotonic()
            status, _ = await conn.request(raw)
            out.append((status, (monotonic() - sent) * 1000.0))
    finally:
        await conn.close()
    return out


async def fetch(host: str, port: int, path: str, method: str = "GET", body: str = "") -> bytes:
    """One request (any method, JSON body); the response body; raises on a non-2xx status."""
    conn = await Connection.open(host, port)
    try:
        raw = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {AUTH}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n\r\n"
            f"{body}"
        ).encode()
        status, data = await conn.request(raw)
    finally:
        await conn.close()
    if not 200 <= status < 300:
        raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:300]!r}")
    return data
