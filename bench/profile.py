"""Where the time of a figure goes: py-spy samples the process while the figure is measured.

``sampled(pid)`` runs ``py-spy record --nonblocking`` (the target is never paused, so the
figure is not slowed beyond py-spy's own CPU) at 100 Hz on the process, and fills the dict it
yields with a summary of the event-loop thread's samples: the functions with the most samples
of their own (``self``) and the kjobs functions with the most samples under them
(``inclusive``), in percent. Without py-spy (or without the right to trace) the summary says
why and the figure is measured all the same.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

RATE_HZ: Final = 100
TOP: Final = 12
LOOP_FRAME: Final = "run_forever"  #: frames of the event-loop thread's stacks
OWN_CODE: Final = ("engine/", "steps/", "bench/")  #: kjobs' own files (py-spy shortens paths)
ENABLED: dict[str, bool] = {"on": True}  #: ``python -m bench --no-profile`` turns it off


def py_spy() -> str | None:
    """The py-spy executable (beside this Python first), or None."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextmanager
def sampled(pid: int | None = None) -> Iterator[dict[str, Any]]:
    """Sample ``pid`` (default: this process) for the duration of the block."""
    summary: dict[str, Any] = {}
    exe = py_spy()
    if exe is None or not ENABLED["on"]:
        summary["unavailable"] = "py-spy not installed" if exe is None else "turned off"
        yield summary
        return
    handle, raw = tempfile.mkstemp(prefix="kjobs-pyspy-", suffix=".txt")
    os.close(handle)
    command = [exe, "record", "--pid", str(pid or os.getpid()), "--rate", str(RATE_HZ),
               "--format", "raw", "--output", raw, "--nonblocking"]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield summary
    finally:
        summary.update(_stop(recorder, Path(raw)))
        Path(raw).unlink(missing_ok=True)


def _stop(recorder: subprocess.Popen[bytes], raw: Path) -> dict[str, Any]:
    if recorder.poll() is None:
        recorder.send_signal(signal.SIGINT)
    try:
        _, err = recorder.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        recorder.kill()
        _, err = recorder.communicate()
    if not raw.exists() or raw.stat().st_size == 0:
        reason = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no samples"]
        return {"unavailable": reason[0][:200]}
    return summarize(raw.read_text(errors="replace"))


def summarize(text: str) -> dict[str, Any]:
    """Self and inclusive shares of the loop thread's samples in py-spy's raw format."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if LOOP_FRAME not in stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_name(frame) for frame in stack.split(";")]
        own[frames[-1][0]] += n
        for name in {name for name, mine in frames if mine}:
            under[name] += n
    if not total:
        return {"unavailable": "no samples of the event-loop thread"}

    def top(counts: Counter[str]) -> list[str]:
        # entry points (under every sample) say nothing: left out
        ranked = [(name, n) for name, n in counts.most_common() if n < total or counts is own]
        return [f"{100 * n / total:.1f}% {name}" for name, n in ranked[:TOP]]

    return {"samples": total, "rate_hz": RATE_HZ, "self": top(own), "inclusive": top(under)}


def _name(frame: str) -> tuple[str, bool]:
    """``function (path:line)`` -> ("function (path)", whether the path is kjobs' own code)."""
    function, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for root in OWN_CODE:
        at = path.find(root)
        if at == 0 or (at > 0 and path[at - 1] == "/"):
            return f"{function} ({path[at:]})", True
    return f"{function} ({Path(path).name})", False
