"""A throwaway PostgreSQL server for tests, benchmarks and demos: ``initdb`` + ``pg_ctl``.

::

    with ScratchPostgres.start(tmp_dir) as pg:        # 127.0.0.1, a free port, trust auth
        url = pg.create_database("t1")                 # postgresql://kjobs@127.0.0.1:PORT/t1

It needs the server binaries (Debian: ``apt-get install postgresql``, found under
``/usr/lib/postgresql/*/bin``, or ``KJOBS_PG_BIN``). PostgreSQL refuses to run as root, so
under root the cluster belongs to ``nobody`` and its folder is handed over to that user. It
listens on loopback only and is stopped (``immediate``) and deleted on exit. Durability is
switched off (``fsync = off``): the data is thrown away anyway.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

SUPERUSER = "kjobs"
INSTALL_HINT = (
    "PostgreSQL server binaries not found (initdb, pg_ctl under /usr/lib/postgresql/*/bin): "
    "install them with `sudo apt-get install postgresql` (Debian/Ubuntu), or point "
    "KJOBS_PG_BIN at the folder that holds them"
)
_UNPRIVILEGED = "nobody"
_START_TIMEOUT_S = 60


def find_binaries() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl`` (newest version first), None without one."""
    explicit = os.environ.get("KJOBS_PG_BIN")
    candidates = [explicit] if explicit else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ScratchPostgres:
    """A running throwaway PostgreSQL cluster; ``stop()`` (or leaving the ``with``) ends it."""

    root: Path  #: the temp folder: data directory, socket and log
    bin_dir: Path
    port: int
    user: str | None  #: the OS user the server runs as (None: the current one)

    @classmethod
    def start(cls, parent: str | os.PathLike[str] | None = None) -> ScratchPostgres:
        """initdb a new cluster in a fresh temp folder and start it on a free port."""
        bin_dir = find_binaries()
        if bin_dir is None:
            raise FileNotFoundError(INSTALL_HINT)
        root = Path(tempfile.mkdtemp(prefix="kjobs-pg-", dir=parent))
        user = _UNPRIVILEGED if os.geteuid() == 0 else None
        if user is not None:  # the folder and every parent must be reachable by that user
            shutil.chown(root, user)
            _open_parents(root)
        pg = cls(root, bin_dir, free_port(), user)
        try:
            pg._run("initdb", "-D", str(pg.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                    "--no-sync", "--locale=C")  # fmt: skip
            pg.resume()
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return pg

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The connection URL of ``database``."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def halt(self, *, crash: bool = False) -> None:
        """Shut the server down (``fast``: clients are disconnected), keeping its data: an
        outage that ``resume`` ends. ``crash``: ``immediate`` instead, as if it were killed;
        with ``synchronous_commit = off`` the last acknowledged commits may be lost."""
        mode = "immediate" if crash else "fast"
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def resume(self) -> None:
        """Start a halted server again, on the same port, with the same data."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t",
                  str(_START_TIMEOUT_S), "-o", self._options(), "start")  # fmt: skip

    def stop(self) -> None:
        """Stop the server at once and delete its folder."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _options(self) -> str:
        # loopback only; the socket lives in our folder, not in /var/run/postgresql
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin_dir / tool), *args],
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n{log}")


def _open_parents(path: Path) -> None:
    """Let other users traverse the folders above ``path`` (mkdtemp makes them private)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
