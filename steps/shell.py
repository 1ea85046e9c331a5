"""The shell family: ``/bin/sh -c`` in its own process group (real), or a profile (simulated).

Real mode runs the step's already-substituted command with stdout and stderr on ONE pipe, so
the captured output keeps the order the child wrote it in. The shell first waits at a gate
(a line on its stdin) while the engine records its process group (``ctx.processes``): the
command starts only once the record is durable, so a later incarnation of the engine can kill
it if this one dies (``engine.batch.orphans``); a shell whose engine died before the gate
opened exits at once. The pipe is read incrementally and
each line is handed to the output sink as it arrives; at most one partial line (bounded) is held.

Interruption (anyio cancellation, or the step's timeout) runs the step's interrupt command if it
has one, else SIGTERMs the whole process group; after ``ctx.grace_seconds`` the group is
SIGKILLed. When the command ends by itself, whatever it left running in its group is killed too:
a step leaves no orphans behind, and no background process can hold the pipe open and hang us.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import signal
import subprocess
from pathlib import Path
from typing import Final

import anyio
import anyio.abc

from engine.core.errors import StepFailure
from engine.logging import get_logger
from steps.base import OutputSink, StepContext, StepResult
from steps.simulated import OK_RESULT, duration, simulate_step

log = get_logger()

_CHUNK: Final = 64 * 1024  #: bytes read from the pipe at a time
_MAX_PARTIAL: Final = 64 * 1024  #: a line longer than this is passed on in pieces
#: after the process group is gone, how long a process that left the group (setsid) may keep
#: the pipe open before we stop reading
_DRAIN_SECONDS: Final = 2.0
_REAP_SECONDS: Final = 10.0  #: bound on waiting for a SIGKILLed child to be reaped
#: the step's shell: wait for "go" on stdin, then become ``sh -c COMMAND`` (same pid and group)
_GATE: Final = 'IFS= read -r go && [ "$go" = go ] && exec /bin/sh -c "$1" </dev/null; exit 125'


class ShellExecutor:
    """Real shell steps: ``/bin/sh -c exec_cmd`` in a new session (process group)."""

    async def run(self, ctx: StepContext) -> StepResult:
        """Run the command; exit 0 succeeds, anything else raises ``StepFailure``."""
        spec = ctx.step.spec
        if not spec.exec_cmd:
            raise StepFailure(f"Step '{spec.name}' has no command to run", kind="InvalidStep")
        # Shielded: a cancellation that lands while the child is being created would otherwise
        # lose its handle and leave it running. _supervise sees the cancellation right after.
        with anyio.CancelScope(shield=True):
            process = await _spawn(["/bin/sh", "-c", _GATE, "sh", spec.exec_cmd], ctx, gated=True)
        log.debug("kjobs.shell.started", job_id=ctx.job_id, step_id=ctx.step.id, pid=process.pid)
        timed_out = await _supervise(process, ctx)
        code = _exit_code(process.returncode)
        log.debug("kjobs.shell.ended", job_id=ctx.job_id, step_id=ctx.step.id, exit_code=code)
        if timed_out:
            raise StepFailure(
                f"Command timed out after {spec.timeout_s} seconds and was killed",
                kind="StepTimeout",
                info={"exit_code": str(code)},
            )
        if code != 0:
            raise StepFailure(
                f"Command failed with exit code {code}",
                kind="ShellCommandFailed",
                info={"exit_code": str(code)},
            )
        return StepResult(info={"exit_code": "0"})


class SimulatedShellExecutor:
    """Simulated shell steps: a duration, a few output lines and failures from the profile."""

    async def run(self, ctx: StepContext) -> StepResult:
        """Spend the profile's duration; succeed with exit code 0 or fail with exit code 1."""
        seconds = duration(ctx.profile, ctx.rng)
        spec = ctx.step.spec
        header = f"+ {spec.exec_cmd or spec.name}\n"
        await simulate_step(ctx, seconds, header, "Command failed with exit code 1")
        return OK_RESULT


async def _spawn(command: list[str], ctx: StepContext, gated: bool = False) -> anyio.abc.Process:
    """Start ``command`` in a new session with stdout+stderr on one pipe (stdin: a pipe to
    open its gate when ``gated``, else nothing)."""
    cwd: Path | None = ctx.workdir
    try:
        if cwd is not None:
            await anyio.Path(cwd).mkdir(parents=True, exist_ok=True)
        return await anyio.open_process(
            command,
            stdin=subprocess.PIPE if gated else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **ctx.env},
            start_new_session=True,
        )
    except OSError as exc:
        raise StepFailure(
            f"Cannot start the command: {exc}", kind="ShellCommandFailed", info={"exit_code": "127"}
        ) from exc


async def _supervise(process: anyio.abc.Process, ctx: StepContext) -> bool:
    """Wait for the process while pumping its output; True if it ran past its timeout.

    Every way out (end, timeout, cancellation, a failing sink) stops the process group and
    drains the pipe inside a shielded scope, so nothing outlives the step.
    """
    assert process.stdout is not None
    pump = _Pump(process.stdout, ctx.output)
    timed_out = False
    async with anyio.create_task_group() as tg:
        try:
            tg.start_soon(pump.run)
            await _open_gate(process, ctx)
            with anyio.move_on_after(ctx.step.spec.timeout_s) as timeout:
                await process.wait()
            timed_out = timeout.cancelled_caught
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process, ctx)
                await pump.finish(_DRAIN_SECONDS)
                if ctx.processes is not None:
                    await ctx.processes.ended(process.pid)
    return timed_out


async def _open_gate(process: anyio.abc.Process, ctx: StepContext) -> None:
    """Record the step's group, then let its command start."""
    if ctx.processes is not None:
        await ctx.processes.started(process.pid)
    stdin = process.stdin
    assert stdin is not None
    try:
        await stdin.send(b"go\n")
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the shell is gone already: its exit code tells why
    finally:
        await stdin.aclose()


async def _stop(process: anyio.abc.Process, ctx: StepContext) -> None:
    """End the process group: interrupt politely if still running, then SIGKILL what is left."""
    pgid = process.pid  # start_new_session: the child leads its own group
    if process.returncode is None:
        with anyio.move_on_after(ctx.grace_seconds):
            await _interrupt(process, ctx)
            await process.wait()
        log.info(
            "kjobs.shell.interrupted",
            job_id=ctx.job_id,
            step_id=ctx.step.id,
            pid=pgid,
            exited=process.returncode is not None,
        )
    if _signal_group(pgid, signal.SIGKILL) and process.returncode is not None:
        log.info("kjobs.shell.leftovers_killed", job_id=ctx.job_id, step_id=ctx.step.id, pid=pgid)
    with anyio.move_on_after(_REAP_SECONDS):
        await process.wait()


async def _interrupt(process: anyio.abc.Process, ctx: StepContext) -> None:
    """Ask the command to stop: its interrupt command, else (or if that fails) SIGTERM."""
    command = ctx.step.spec.interrupt_cmd
    if command:
        try:
            code = await _run_interrupt(command, process.pid, ctx)
            if code == 0:
                return
            error = f"exit code {code}"
        except (StepFailure, OSError) as exc:
            error = str(exc)
        # an interrupt command that fails leaves the step running: fall back to SIGTERM
        log.warning(
            "kjobs.shell.interrupt_failed", job_id=ctx.job_id, step_id=ctx.step.id, error=error
        )
    _signal_group(process.pid, signal.SIGTERM)


async def _run_interrupt(command: str, pgid: int, ctx: StepContext) -> int:
    """Run the step's interrupt command (its output joins the step's), in its own group.

    ``KJOBS_STEP_PGID`` tells it the process group of the command it interrupts.
    """
    env = {**ctx.env, "KJOBS_STEP_PGID": str(pgid)}
    interrupter = await _spawn(["/bin/sh", "-c", command], dataclasses.replace(ctx, env=env))
    assert interrupter.stdout is not None
    pump = _Pump(interrupter.stdout, ctx.output)
    async with anyio.create_task_group() as tg:
        try:
            tg.start_soon(pump.run)
            await interrupter.wait()
        finally:
            with anyio.CancelScope(shield=True):
                _signal_group(interrupter.pid, signal.SIGKILL)
                await pump.finish(_DRAIN_SECONDS)
                with anyio.move_on_after(_REAP_SECONDS):
                    await interrupter.wait()
    return _exit_code(interrupter.returncode)


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to the process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed credentials; nothing more we may do
        return False
    return True


def _exit_code(returncode: int | None) -> int:
    """The exit code as a shell (and Java's ``Process``) reports it: 128 + signal if killed."""
    if returncode is None:
        return -1
    return returncode if returncode >= 0 else 128 - returncode


class _Pump:
    """Reads a byte stream and writes it to a sink line by line, as it arrives.

    It runs shielded: only ``finish`` stops it, so output written while the process is being
    interrupted (a SIGTERM handler's last words) is still captured.
    """

    def __init__(self, stream: anyio.abc.ByteReceiveStream, sink: OutputSink) -> None:
        self._stream = stream
        self._sink = sink
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._scope = anyio.CancelScope(shield=True)
        self._done = anyio.Event()

    async def run(self) -> None:
        """Pump until end of stream or until ``finish`` gives up waiting."""
        try:
            with self._scope:
                try:
                    while True:
                        self._feed(self._decoder.decode(await self._stream.receive(_CHUNK)))
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass
            self._feed(self._decoder.decode(b"", final=True), final=True)
        finally:
            self._done.set()
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    async def finish(self, drain_seconds: float) -> None:
        """Wait up to ``drain_seconds`` for the end of the stream, then stop reading.

        The pump is started with ``start_soon`` (not ``start``): a cancelled ``start`` waits
        for its shielded child and would never return.
        """
        with anyio.move_on_after(drain_seconds):
            await self._done.wait()
        self._scope.cancel()

    def _feed(self, text: str, final: bool = False) -> None:
        """Write the complete lines of ``partial + text``; keep the rest unless it is too long."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        write = self._sink.write
        for line in lines:
            write(line + "\n")
        if self._partial and (final or len(self._partial) > _MAX_PARTIAL):
            write(self._partial)
            self._partial = ""
