"""The step-process part of the ``LeaseStore`` contract (``engine/store/ports.py``) on every
adapter (the ``adapter`` fixture of ``test_lease_contract``): a step's process group is
recorded, found by host and job, replaced by a newer record of the same group, and cleared."""

from __future__ import annotations

import dataclasses

from engine.store.ports import StepProcess
from tests.integration.test_lease_contract import Opened, adapter, kind, pg_url

__all__ = ["adapter", "kind", "pg_url"]  # the fixtures, run on every adapter

T0 = 1_700_000_000_000


def group(pgid: int, job_id: str = "j1", host: str = "h1", at: int = T0) -> StepProcess:
    """A recorded group of ``job_id``'s first step."""
    return StepProcess(
        host=host, pgid=pgid, job_id=job_id, step_id=f"{job_id}-00", attempt=1,
        started="boot:123", node_id="node-a", node_pid=4242, node_started="boot:100", recorded=at,
    )  # fmt: skip


async def test_a_recorded_group_is_found_by_host_and_by_job(adapter: Opened) -> None:
    _, leases = adapter
    first, second, elsewhere = group(100), group(200, "j2", at=T0 + 1), group(100, host="h2")
    for process in (second, first, elsewhere):
        await leases.record_process(process)
    assert await leases.step_processes("h1") == [first, second]  # oldest first
    assert await leases.step_processes("h1", "j2") == [second]
    assert await leases.step_processes("h2") == [elsewhere]
    assert await leases.step_processes("h3") == []


async def test_a_newer_record_of_the_same_group_replaces_the_older(adapter: Opened) -> None:
    _, leases = adapter
    await leases.record_process(group(100))
    reused = dataclasses.replace(group(100, "j2", at=T0 + 5), started="boot:999", attempt=2)
    await leases.record_process(reused)
    assert await leases.step_processes("h1") == [reused]
    assert await leases.step_processes("h1", "j1") == []


async def test_a_cleared_group_is_gone_and_clearing_twice_is_harmless(adapter: Opened) -> None:
    _, leases = adapter
    await leases.record_process(group(100))
    await leases.record_process(group(100, host="h2"))
    await leases.clear_process("h1", 100)
    await leases.clear_process("h1", 100)
    await leases.clear_process("h1", 555)
    assert await leases.step_processes("h1") == []
    assert len(await leases.step_processes("h2")) == 1
