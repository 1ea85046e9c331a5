"""Shared fixtures: a fast config, an engine with the REST app over ASGI, real server processes.

- ``make_config(**overrides)``: the shipped config with a large time scale, an in-memory store
  and a per-test working directory (dotted keys via ``overrides``).
- ``fast_api(**overrides)`` / ``open_api(config)``: context managers giving an entered ``Engine``
  and an ``httpx.AsyncClient`` on ``create_app`` (ASGI transport: the lifespan does not run, so
  they enter the engine themselves).
- ``postgres_url``: a fresh database on a throwaway PostgreSQL server of the session.
- ``kjobs_server(time_scale=..., store=...)``: a real ``kjobs serve`` process on a free loopback
  port (``--port 0``); stopped with SIGTERM at teardown. ``launch_server`` is the same starter
  for module-scoped fixtures.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.api.app import create_app
from engine.config import Config, load_config
from engine.facade import Engine
from engine.store.postgres.scratch import INSTALL_HINT, ScratchPostgres, find_binaries

AUTH = ("ADMIN", "KYLIN")
API = "/kylin/api"
FAST = 5000.0  #: ~10-minute simulated builds take a fraction of a second
SERVER_START_S = 30.0


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """``make_config(**{"kjobs.time-scale": 50})``: the shipped config, fast and in memory."""

    def make(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            "kjobs.time-scale": FAST,
            "kjobs.store": ":memory:",
            "kjobs.workdir": str(tmp_path / "work"),
        }
        values.update(overrides)
        return load_config(environ={}, overrides=values)

    return make


@asynccontextmanager
async def serve_asgi(config: Config) -> AsyncIterator[tuple[Engine, httpx.AsyncClient]]:
    """An entered engine and an authenticated ASGI client of ``create_app`` on ``/kylin/api``."""
    async with Engine(config) as eng:
        transport = httpx.ASGITransport(app=create_app(eng))
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://kjobs.test{API}", auth=AUTH
        ) as client:
            yield eng, client


@pytest.fixture
def open_api() -> Callable[[Config], AbstractAsyncContextManager[tuple[Engine, httpx.AsyncClient]]]:
    """``async with open_api(config) as (engine, client)``: for tests that need their own config."""
    return serve_asgi


@pytest.fixture
def fast_api(
    make_config: Callable[..., Config],
) -> Callable[..., AbstractAsyncContextManager[tuple[Engine, httpx.AsyncClient]]]:
    """``async with fast_api(**overrides) as (engine, client)``: ``make_config`` + ``open_api``.

    A context manager rather than an async generator fixture: the engine's task group must be
    entered and left in the same task.
    """

    def open_fast(
        **overrides: Any,
    ) -> AbstractAsyncContextManager[tuple[Engine, httpx.AsyncClient]]:
        return serve_asgi(make_config(**overrides))

    return open_fast


@dataclass
class ServerProcess:
    """A running ``kjobs serve``."""

    process: subprocess.Popen[str]
    url: str
    store: Path | str
    stderr: Path | None = None  #: the file the server's log goes to

    @property
    def api(self) -> str:
        """``{url}/kylin/api``."""
        return self.url + API

    def client(self) -> httpx.Client:
        """An authenticated synchronous client on ``/kylin/api``."""
        return httpx.Client(base_url=self.api, auth=AUTH, timeout=10.0)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> str:
        """Send ``sig``, wait for the exit; the rest of stdout."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        out, _ = self.process.communicate(timeout=timeout)
        return out


def start_server(
    tmp_path: Path,
    store: Path | str,
    time_scale: float,
    extra: tuple[str, ...] = (),
    settings: dict[str, str] | None = None,
) -> ServerProcess:
    """Start ``kjobs serve --port 0`` and wait (bounded) for its "serving on" line.

    ``store``: a SQLite file or a PostgreSQL URL. ``settings``: more ``KJOBS_*`` variables for
    the server (the test's own are not passed on).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}
    env["KJOBS_WORKDIR"] = str(tmp_path / "work")
    env.update(settings or {})
    command = [sys.executable, "-m", "engine.cli", "serve", "--port", "0"]
    command += ["--store", str(store), "--time-scale", str(time_scale), *extra]
    stderr = (tmp_path / f"server-{time.monotonic_ns()}.err").open("w")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    stderr.close()
    assert proc.stdout is not None
    deadline = time.monotonic() + SERVER_START_S
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            line = proc.stdout.readline()
            if not line:
                break
            if "serving on " in line:
                url = line.split("serving on ", 1)[1].split()[0]
                return ServerProcess(proc, url, store, Path(stderr.name))
    proc.kill()
    proc.wait(timeout=10)
    raise RuntimeError(f"kjobs serve did not start: {Path(stderr.name).read_text()[-2000:]}")


@pytest.fixture(scope="session")
def launch_server() -> Callable[..., ServerProcess]:
    """``start_server`` for module-scoped fixtures: ``launch_server(folder, store, scale)``."""
    return start_server


@pytest.fixture
def kjobs_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``kjobs_server(time_scale=1000, store=None)``: start a server; all stop at teardown."""
    started: list[ServerProcess] = []

    def start(time_scale: float = FAST, store: Path | None = None) -> ServerProcess:
        server = start_server(tmp_path, store or tmp_path / "kjobs.sqlite", time_scale)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.stop()


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ScratchPostgres]:
    """A throwaway PostgreSQL cluster for the whole session (initdb + pg_ctl, loopback only).

    Without the server binaries the PostgreSQL tests skip, saying how to install them; in CI
    (``CI=true``) they fail instead: there they must run.
    """
    require_postgres()
    with ScratchPostgres.start() as server:
        yield server


def require_postgres() -> None:
    """Skip the test without the PostgreSQL server binaries, saying how to install them; fail
    it instead in CI (``CI=true``), where the PostgreSQL tests must run."""
    if find_binaries() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)


@pytest.fixture
def postgres_url(postgres_server: ScratchPostgres) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database(f"t{uuid.uuid4().hex[:16]}")
