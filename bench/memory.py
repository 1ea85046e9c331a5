"""Resident memory: of a process, and of an idle engine process on a given store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from bench.server import clean_env, stop

READY: Final = "kjobs-bench: engine ready"
START_TIMEOUT_S: Final = 120.0

#: the engine process: the shipped config on ``argv[1]``, idle until killed
ENGINE_PROCESS: Final = f"""\
import logging
import sys
import anyio
import structlog
from engine.config import load_config
from engine.facade import Engine

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
)

async def main() -> None:
    config = load_config(environ={{}}, overrides={{"kjobs.store": sys.argv[1]}})
    async with Engine(config):
        print({READY!r}, flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


def rss_mb(pid: int) -> float:
    """The process's resident set size now (``VmRSS``), in MiB."""
    return _status_kb(pid, "VmRSS") / 1024.0


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far (``VmHWM``), in MiB."""
    return _status_kb(pid, "VmHWM") / 1024.0


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for process {pid}")


def idle_engine_rss(store: Path) -> dict[str, Any]:
    """Start an engine process on ``store``, wait until it is up and idle, read its RSS.

    "Idle" means: entered (store opened, migrations checked, recovery done), nothing running,
    the process parked in ``sleep_forever``. Its peak (``VmHWM``) is reported beside it.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", ENGINE_PROCESS, str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(READY):
            raise RuntimeError(f"the engine process did not start (exit {process.poll()})")
        rss = rss_mb(process.pid)
        peak = peak_rss_mb(process.pid)
    finally:
        stop(process)
    return {"rss_mb": rss, "peak_rss_mb": peak}
