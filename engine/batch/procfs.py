"""Processes of this host as ``/proc`` shows them: who a pid is, and killing a step's group only
if it is still the group that was recorded.

A pid is reused once its process is gone, so a pid alone names nothing after a crash. A
process's *identity* is ``BOOT_ID:START`` (the kernel's boot id and the process's start time in
clock ticks since boot): it stays the same across ``exec`` and no later process has it.

A step runs in its own session, led by the shell kjobs started (pgid = sid = its pid). After a
crash the leader may be gone while processes it started still run in its group (or in other
groups of its session). Those are killed too when they can only be the recorded group's: every
member started at or after the recorded leader, and the leader's pid does not belong to a later
process. Where there is no ``/proc`` (not Linux) the identity is "" and nothing is ever killed on
its strength.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PROC: Final = Path("/proc")
GONE_SECONDS: Final = 5.0  #: bound on waiting for SIGKILLed processes to stop running


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` that matter here."""

    pid: int
    pgid: int
    sid: int
    start: int  #: clock ticks since boot
    state: str  #: R, S, D, Z (a zombie runs no more), ...


def boot_id() -> str:
    """The kernel's boot id ("" when unknown)."""
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


_BOOT: Final = boot_id()


def stat(pid: int) -> ProcStat | None:
    """The process's stat, None when there is no such process (or no ``/proc``)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # "pid (comm) state ppid pgrp session ... starttime(22nd)"; comm may hold spaces and ")"
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return ProcStat(pid, int(fields[2]), int(fields[3]), int(fields[19]), fields[0])
    except (IndexError, ValueError):
        return None


def identity(pid: int) -> str:
    """``BOOT_ID:START`` of the process, "" when it does not exist (or cannot be told)."""
    found = stat(pid)
    if found is None or not _BOOT:
        return ""
    return f"{_BOOT}:{found.start}"


def alive(pid: int, ident: str) -> bool:
    """Whether the process with this pid is still the one whose identity was ``ident``.

    With no identity recorded (no ``/proc`` then), any process with the pid counts as alive:
    the safe answer for a caller that would otherwise kill it or its work.
    """
    if ident:
        return identity(pid) == ident
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def session_members(sid: int) -> list[ProcStat]:
    """Every process of this host whose session or process group is ``sid``."""
    found = []
    try:
        entries = os.listdir(PROC)
    except OSError:
        return []
    for name in entries:
        if name.isdigit():
            member = stat(int(name))
            if member is not None and sid in (member.sid, member.pgid):
                found.append(member)
    return found


def kill_recorded_group(pgid: int, leader: str) -> int:
    """SIGKILL the step group ``pgid`` whose leader's identity was ``leader``, if it is still
    that group; the number of processes signalled (0: gone, or not ours any more)."""
    boot, _, start_text = leader.partition(":")
    if not boot or boot != _BOOT or not start_text.isdigit():
        return 0  # recorded before a reboot (long gone) or without /proc: nothing to verify
    start = int(start_text)
    head = stat(pgid)
    if head is not None and head.start != start:
        return 0  # the pid belongs to a later process: the recorded group is gone
    members = session_members(pgid)
    if any(m.start < start for m in members):
        return 0  # someone older than the recorded leader: not its group
    for group in sorted({m.pgid for m in members}):
        _kill_group(group)
    _wait_gone(pgid, start)
    return len(members)


def _wait_gone(pgid: int, start: int) -> None:
    """Return once no process of the session runs any more (zombies run nothing), or after
    ``GONE_SECONDS``: the step must not run again beside a copy that is still dying."""
    deadline = time.monotonic() + GONE_SECONDS
    while time.monotonic() < deadline:
        running = [m for m in session_members(pgid) if m.state != "Z" and m.start >= start]
        if not running:
            return
        for group in {m.pgid for m in running}:
            _kill_group(group)  # a fork that raced the first signal
        time.sleep(0.01)


def _kill_group(pgid: int) -> None:
    # gone meanwhile, or no longer ours to signal: nothing more to do
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
