"""``kjobs serve``: the Kylin-compatible REST server with the engine embedded (SPEC §6, §8).

The socket is bound (and listening) before the engine starts, so ``--port 0`` works: the line
``kjobs: serving on http://HOST:PORT`` is printed, with the real port, once the engine is up.
SIGINT/SIGTERM shut down gracefully: uvicorn stops accepting, then the engine leaves every
running step resumable (it re-runs from scratch on the next start), then
``kjobs: stopped`` is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import anyio

from engine.core.errors import InvalidRequest, KjobsError

GRACEFUL_SHUTDOWN_S = 5  #: open connections get this long before they are closed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the CLI."""
    p = sub.add_parser(
        "serve",
        help="run the Kylin-compatible REST server (engine embedded)",
        description="Serve Apache Kylin's job REST API (/kylin/api) with the engine embedded, "
        "until Ctrl-C or SIGTERM; interactive docs at /docs.",
    )
    p.add_argument("--config", type=Path, default=None, help="config directory (default: shipped)")
    p.add_argument(
        "--store",
        default=None,
        help="SQLite file or postgresql://user:password@host:port/dbname "
        "(default: a SQLite file under the user's data directory)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7070, help="port (default 7070; 0 = any free port)")
    p.add_argument(
        "--time-scale", type=float, default=None, help="simulated work runs N times faster"
    )
    p.add_argument("--debug", action="store_true", help="include stack traces in error bodies")
    p.set_defaults(handler=serve)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6, whichever ``host`` names)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise InvalidRequest(f"unknown host {host!r}: use --host 127.0.0.1") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # listening now: clients that connect while the engine starts wait instead of failing
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InvalidRequest(_bind_advice(host, port, exc)) from exc
    return sock


def _bind_advice(host: str, port: int, exc: OSError) -> str:
    """One line for a socket that cannot be bound, naming what to do."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{host}:{port} is already in use (another kjobs serve?): stop it, "
            f"or pick another port with --port N (--port 0: any free port)"
        )
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on {host}:{port}: use a port above 1023 (--port N)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: use --host 127.0.0.1"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def check_store(spec: str) -> None:
    """Open the store once (migrating it), take its write lock, close it: before the server
    starts, so that a store it cannot use is one line ``kjobs: …`` (exit 2), not a traceback
    from the server's start-up."""
    from engine.store import MEMORY, open_store  # here: client commands do not need it
    from engine.store.postgres import is_postgres_url

    if spec == MEMORY or is_postgres_url(spec):
        return  # PostgreSQL: the engine's start-up connects and says what failed
    store = open_store(spec)  # first the preflight (StoreRefused): it writes nothing

    async def probe() -> None:
        try:
            await store.open()
        finally:  # a failed open leaves its connection thread: release it before the loop ends
            with contextlib.suppress(Exception):
                await store.close()

    try:
        path = Path(spec).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as conn:  # first: fails fast, no threads
            conn.execute("BEGIN IMMEDIATE")  # fails on a read-only file or folder
            conn.rollback()
        anyio.run(probe)  # then the store's own checks and migrations
    except KjobsError:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise InvalidRequest(
            f"cannot use the store {spec}: {exc} (make it writable, or pick another file "
            "with --store PATH; --store :memory: keeps nothing)"
        ) from exc


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server that also ends the live event streams when asked to exit."""

        def __init__(self, on_exit: Callable[[], None], config: uvicorn.Config) -> None:
            super().__init__(config)
            self._on_exit = on_exit

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # SSE streams never end by themselves: without this uvicorn would wait out its
            # graceful timeout for them, then cut them off mid-stream
            self._on_exit()
            super().handle_exit(sig, frame)

    return Server


def serve(args: argparse.Namespace) -> int:
    """Load the config, bind, and run uvicorn until SIGINT/SIGTERM."""
    # imported here: the other `kjobs` commands should not pay for the web stack
    import uvicorn

    from engine.api.app import create_server_app
    from engine.config import load_config
    from engine.facade import Engine
    from engine.store import default_store_path

    overrides: dict[str, object] = {"kjobs.store": args.store, "kjobs.time-scale": args.time_scale}
    config = load_config(args.config, overrides=overrides)
    store = config.engine.store or default_store_path()
    check_store(store)
    sock = bind(args.host, args.port)
    url = url_of(sock)
    engine = Engine(config)

    def ready() -> None:
        print(f"kjobs: serving on {url} (OpenAPI docs at {url}/docs)", flush=True)
        store = config.engine.store or default_store_path()
        print(f"kjobs: store {store}, config {config.engine.config_dir}", flush=True)

    def stopped() -> None:
        print("kjobs: stopped", flush=True)

    _Server = _server_class()
    app = create_server_app(engine, on_ready=ready, on_stopped=stopped, debug=args.debug)
    server = _Server(
        app.state.closing.close,
        uvicorn.Config(
            app,
            lifespan="on",
            log_level="info" if args.verbose else "warning",
            access_log=args.verbose,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ),
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0 if server.started else 1
