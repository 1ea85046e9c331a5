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
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import anyio

from engine.core.errors import InvalidRequest, KjobsError, StoreRefused, StoreUnavailable

if TYPE_CHECKING:
    from engine.facade import Engine

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
    """The store's own start-up checks, before anything else: a SQLite store that cannot be
    used is refused by its preflight (``engine.store.sqlite.preflight``: one line, exit 2,
    nothing written), a PostgreSQL store by the engine's start-up, which connects."""
    from engine.store import open_stores  # here: client commands do not need it

    open_stores(spec)  # builds the stores (running the preflight) and connects nothing


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server that ends the live event streams when asked to exit, and hands
        SIGINT/SIGTERM back to nobody: the engine's orderly shutdown comes after it."""

        def __init__(self, on_exit: Callable[[], None], config: uvicorn.Config) -> None:
            super().__init__(config)
            self._on_exit = on_exit

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # SSE streams never end by themselves: without this uvicorn would wait out its
            # graceful timeout for them, then cut them off mid-stream
            self._on_exit()
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn's own raises the signal again once it stopped serving, which would end
            # the process before the engine leaves its jobs resumable
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server


def serve(args: argparse.Namespace) -> int:
    """Load the config, check the store, bind, run the engine and uvicorn until SIGINT/SIGTERM.

    The engine is entered first (a start-up error is one line, exit 2, before anything is
    served), then uvicorn serves until told to stop, then the engine shuts down. When the
    engine cannot go on (its task group ends with an error: a broken store), the server stops
    with it: one line on stderr, exit status 3, never a server that answers without an engine.
    """
    # imported here: the other `kjobs` commands should not pay for the web stack
    import uvicorn

    from engine.api.app import create_server_app
    from engine.cli.http_limits import LimitedH11Protocol
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
    app = create_server_app(engine, debug=args.debug)
    server = _server_class()(
        app.state.closing.close,
        uvicorn.Config(
            app,
            lifespan="off",  # the engine is entered around uvicorn, not inside its lifespan
            log_level="info" if args.verbose else "warning",
            access_log=args.verbose,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            http=LimitedH11Protocol,
            h11_max_incomplete_event_size=config.engine.max_request_head_bytes,
        ),
    )

    def banner() -> None:
        print(f"kjobs: serving on {url} (OpenAPI docs at {url}/docs)", flush=True)
        print(f"kjobs: store {store}, config {config.engine.config_dir}", flush=True)

    try:
        anyio.run(_run, engine, server, sock, banner, app.state.closing.close)
    except Exception as exc:
        if not server.started:  # a start-up error: ``kjobs.cli.main`` makes it one line (exit 2)
            named = _startup_error(exc, store)
            if named is exc:
                raise
            raise named from exc
        print(f"kjobs: the engine stopped, so the server did: {_reason(exc)}", file=sys.stderr)
        return 3
    finally:
        sock.close()
    print("kjobs: stopped", flush=True)
    return 0 if server.started else 1


async def _run(
    engine: Engine,
    server: Any,
    sock: socket.socket,
    banner: Callable[[], None],
    closing: Callable[[], None],
) -> None:
    """Enter the engine, serve until told to stop (or until the engine ends), leave it."""

    async def stop_with(ended: anyio.Event) -> None:
        await ended.wait()
        server.should_exit = True  # stop accepting, finish what is in flight, stop

    async with engine:
        banner()
        assert engine.ended is not None
        # shielded: an engine that fails stops uvicorn the orderly way, not mid-request
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_with, engine.ended)
                try:
                    await server.serve(sockets=[sock])
                finally:
                    closing()  # the live event streams end
                    tg.cancel_scope.cancel()


def _startup_error(exc: Exception, store: str) -> Exception:
    """A start-up error as the one line it should be: a store refusing writes is named."""
    refused = _first(exc)
    if isinstance(refused, StoreUnavailable):  # e.g. an existing store on a full disk
        return StoreRefused(
            store, f"refuses writes ({refused.reason}): make room or fix its device, "
            "then start kjobs again; nothing was changed",
        )  # fmt: skip
    return exc


def _first(exc: BaseException) -> BaseException:
    """The innermost first error of ``exc`` (task groups wrap it)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _reason(exc: BaseException) -> str:
    """One line naming the innermost first error of ``exc``."""
    exc = _first(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, KjobsError) else f"{type(exc).__name__}: {text}"
