"""No orphans: a step's process group is recorded before its work starts, and a group that an
earlier incarnation of the engine left running is killed before its step runs again.

A real shell step runs in its own session, so it outlives a server that is SIGKILLed. Its
group (pgid, leader pid and identity, host, node, job, step, attempt) is written to the store
(``LeaseStore.record_process``) before the command may start (``steps.shell`` holds the command
at a gate until the record returns) and deleted when the group is gone. A row left behind is a
group a dead engine may have left running. It is killed (SIGKILL to the group, after
``engine.batch.procfs`` checked it is still the recorded process) and its row deleted:

- at start-up (``reap_dead``), for every group of this host whose recording node process is gone
  (its pid is free or belongs to a later process). Nodes that share the store and the host keep
  their running steps: a live neighbour's groups are never touched here;
- when this node takes over a RUNNING job whose node stopped renewing its lease
  (``reap_job``), for that job's groups of this host that this process did not start: the job
  is this node's now, a hung node's step must not run beside the new one.

A group on another host can only be killed there: its row waits for that host's next start-up
(a node that is alive but lost its lease kills its own step within a second).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import anyio

from engine.batch import procfs
from engine.clock import Clock
from engine.core.errors import StoreError
from engine.logging import get_logger
from engine.store.commit import WriteRetry
from engine.store.ports import LeaseStore, StepProcess

log = get_logger()


@dataclass(frozen=True, slots=True)
class Reaped:
    """What one reaping pass did."""

    groups: int = 0  #: recorded groups handled (killed, or found gone) and cleared
    processes: int = 0  #: processes SIGKILLed


class StepProcesses:
    """Records this node's step groups and reaps those of earlier incarnations."""

    def __init__(
        self, leases: LeaseStore, clock: Clock, node_id: str, retry: WriteRetry | None = None
    ) -> None:
        self._leases = leases
        self._clock = clock
        self._retry = retry or WriteRetry()
        self.node_id = node_id
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = procfs.identity(self.pid)  #: this process's identity
        self.reaped = 0  #: processes killed since start (orphans of earlier incarnations)

    def recorder(self, job_id: str, step_id: str, attempt: int) -> StepRecorder:
        """The recorder a step's executor reports its group to."""
        return StepRecorder(self, job_id, step_id, attempt)

    async def record(self, job_id: str, step_id: str, attempt: int, pid: int) -> None:
        """Record the group led by ``pid`` (durable on return). A store that refuses writes
        (an outage, a full disk) is waited for: the command stays at its gate meanwhile,
        rather than the step failing for a fault that is not its own."""
        process = StepProcess(
            self.host, pid, job_id, step_id, attempt, procfs.identity(pid), self.node_id,
            self.pid, self.started, self._clock.now_ms(),
        )  # fmt: skip
        await self._retry.until_accepted(
            "step_process", lambda: self._leases.record_process(process), job_id=job_id
        )

    async def clear(self, pgid: int) -> None:
        """The group is gone: drop its record (a store error only leaves it for a reaper)."""
        with anyio.CancelScope(shield=True):
            try:
                await self._leases.clear_process(self.host, pgid)
            except StoreError as exc:  # refused now: the record stays, a reaper checks it later
                log.warning("kjobs.orphans.clear_failed", pgid=pgid, reason=str(exc))
            except Exception:
                log.warning("kjobs.orphans.clear_failed", pgid=pgid, exc_info=True)

    def mine(self, process: StepProcess) -> bool:
        """Whether this very process recorded the group (it runs one of our steps now)."""
        return process.node_pid == self.pid and process.node_started == self.started

    async def reap_dead(self) -> Reaped:
        """At start-up: kill the groups of this host whose recording node process is gone."""
        found = await self._leases.step_processes(self.host)
        dead = [
            p for p in found if not self.mine(p) and not procfs.alive(p.node_pid, p.node_started)
        ]
        return await self._reap(dead, "dead_node")

    async def reap_job(self, job_id: str) -> Reaped:
        """On a takeover of ``job_id``: kill its groups of this host that we did not start."""
        found = await self._leases.step_processes(self.host, job_id)
        return await self._reap([p for p in found if not self.mine(p)], "takeover")

    async def _reap(self, processes: list[StepProcess], reason: str) -> Reaped:
        killed = 0
        for process in processes:
            n = await anyio.to_thread.run_sync(
                procfs.kill_recorded_group, process.pgid, process.started
            )
            if n:
                log.warning(
                    "kjobs.orphans.killed", reason=reason, job_id=process.job_id,
                    step_id=process.step_id, attempt=process.attempt, pgid=process.pgid,
                    processes=n, node=process.node_id,
                )  # fmt: skip
            killed += n
            await self._leases.clear_process(process.host, process.pgid)
        self.reaped += killed
        return Reaped(len(processes), killed)


class StepRecorder:
    """``steps.base.ProcessRecorder`` for one attempt of one step."""

    def __init__(self, owner: StepProcesses, job_id: str, step_id: str, attempt: int) -> None:
        self._owner = owner
        self._job_id = job_id
        self._step_id = step_id
        self._attempt = attempt

    async def started(self, pid: int) -> None:
        """The step's group (led by ``pid``) exists and waits: record it."""
        await self._owner.record(self._job_id, self._step_id, self._attempt, pid)

    async def ended(self, pid: int) -> None:
        """The group is gone: drop its record."""
        await self._owner.clear(pid)
