"""Cluster figures (issue 11), on a throwaway PostgreSQL server and real ``kjobs serve`` nodes.

::

    python -m bench.cluster            # the figures, one JSON document on stdout
    python -m bench.cluster --quick    # tiny sizes: checks the harness, figures mean nothing

- ``claims_per_s``: jobs of ONE instant simulated step; each job is one claim, so jobs finished
  per second = claims per second.
- ``steps_per_s``: jobs of ``steps`` instant steps (claims, then step transitions).
  Both with 1 and with 3 nodes on one database. The jobs are inserted while the nodes are
  frozen (SIGSTOP); the clock runs from their SIGCONT (the NOTIFYs wait for them) to the last
  job SUCCEED.
- ``rescue_s``: two nodes; node B runs long real steps; B is SIGKILLed; the time until every
  job B was running has a RUNNING step again under A (its lease expires, A rescues it). With
  ``kjobs.cluster.lease-seconds`` = ``lease_s`` the expected value is at most one lease plus
  the poll interval.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from engine.core.jobs import Family, Mode, Segment, StepSpec
from engine.core.operations import submit
from engine.core.states import State
from engine.store.ports import JobStore, JobWrite
from engine.store.postgres import PostgresStores
from engine.store.postgres.scratch import ScratchPostgres

START_S: Final = 60.0
WAIT_S: Final = 600.0


@dataclass(frozen=True)
class Sizes:
    """Workload sizes."""

    claim_jobs: int = 2000
    step_jobs: int = 200
    steps: int = 20
    slots: int = 50  #: kylin.job.max-concurrent-jobs per node
    rescue_jobs: int = 6
    lease_s: float = 3.0


FULL: Final = Sizes()
QUICK: Final = Sizes(claim_jobs=30, step_jobs=6, steps=3, slots=10, rescue_jobs=2, lease_s=2.0)


def start_node(folder: Path, url: str, node_id: str, sizes: Sizes) -> subprocess.Popen[str]:
    """``kjobs serve`` on ``url``; returns once it serves (bounded)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}
    env.update({
        "KJOBS_NODE_ID": node_id,
        "KJOBS_WORKDIR": str(folder / "work"),
        "KJOBS_MAX_CONCURRENT_JOBS": str(sizes.slots),
        "KJOBS_CLUSTER_LEASE_SECONDS": str(sizes.lease_s),
        "KJOBS_CLUSTER_POLL_INTERVAL": "0.5",
        "KJOBS_LOG_LEVEL": "warning",
    })  # fmt: skip
    command = [sys.executable, "-m", "engine.cli", "serve", "--port", "0", "--store", url]
    err = (folder / f"{node_id}.err").open("w")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    err.close()
    assert proc.stdout is not None
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "serving on " in line:
            return proc
        if not line:
            break
    proc.kill()
    raise RuntimeError(f"node {node_id} did not start: {(folder / f'{node_id}.err').read_text()}")


def stop(nodes: list[subprocess.Popen[str]]) -> None:
    """SIGTERM every node still running and wait for it."""
    for proc in nodes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in nodes:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def specs(count: int, command: str | None = None) -> list[StepSpec]:
    """``count`` instant simulated steps, or real shell steps running ``command``."""
    if command is not None:
        return [
            StepSpec(f"sh {i}", "SHELL_CMD", Family.SHELL, Mode.REAL, exec_cmd=command)
            for i in range(count)
        ]
    return [
        StepSpec(f"step {i}", "SHELL_CMD_HADOOP", Family.METADATA, profile="instant")
        for i in range(count)
    ]


async def insert(store: JobStore, jobs: int, steps: list[StepSpec]) -> list[str]:
    """``jobs`` READY jobs written straight into the store (each write NOTIFYs the nodes)."""
    now = int(time.time() * 1000)
    ids = [str(uuid.uuid4()) for _ in range(jobs)]

    async def one(job_id: str) -> None:
        segment = Segment(f"seg-{job_id}", "bench", "adhoc", 0, 0, "NEW")
        job = submit(job_id, "bench", "bench", "BUILD", segment, steps, "ADMIN", now).job
        await store.save_job(JobWrite(job, None))

    for start in range(0, jobs, 20):  # 20 writes in flight: the pool's size, about
        await asyncio.gather(*(one(i) for i in ids[start : start + 20]))
    return ids


async def wait_done(store: JobStore, jobs: int) -> None:
    """Until ``jobs`` jobs SUCCEED (bounded)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        counts = await store.count_by_state()
        if counts.get(State.SUCCEED, 0) >= jobs:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"jobs did not finish in {WAIT_S} s: {counts}")


async def throughput(
    url: str, folder: Path, nodes: int, jobs: int, steps: int, sizes: Sizes
) -> float:
    """Jobs (of ``steps`` steps) finished per second by ``nodes`` nodes."""
    procs = [start_node(folder, url, f"n{i}", sizes) for i in range(nodes)]
    stores = PostgresStores(url)
    await stores.jobs.open()
    try:
        # the nodes are frozen while the jobs go in: the figure is theirs, not the insert's
        for proc in procs:
            proc.send_signal(signal.SIGSTOP)
        try:
            await insert(stores.jobs, jobs, specs(steps))
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGCONT)
        started = time.monotonic()
        await wait_done(stores.jobs, jobs)
        return jobs / (time.monotonic() - started)
    finally:
        await stores.jobs.close()
        stop(procs)


async def rescue(url: str, folder: Path, sizes: Sizes) -> float:
    """Seconds from B's SIGKILL until all of B's jobs run again on A."""
    b = start_node(folder, url, "b", sizes)
    stores = PostgresStores(url)
    await stores.jobs.open()
    a: subprocess.Popen[str] | None = None
    try:
        ids = await insert(stores.jobs, sizes.rescue_jobs, specs(1, "sleep 600"))
        await _until(lambda h: len(h) == len(ids), stores, "b")
        a = start_node(folder, url, "a", sizes)
        killed = time.monotonic()
        b.kill()
        await _until(lambda h: len(h) == len(ids), stores, "a")
        return time.monotonic() - killed
    finally:
        await stores.jobs.close()
        stop([p for p in (a, b) if p is not None])


async def _until(check: Any, stores: PostgresStores, owner: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check(await stores.jobs.leases.held(owner)):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"leases of {owner} did not come")


async def measure(sizes: Sizes) -> dict[str, Any]:
    """Every figure, each on a fresh database of one throwaway server."""
    figures: dict[str, Any] = {"lease_s": sizes.lease_s, "slots_per_node": sizes.slots}
    with tempfile.TemporaryDirectory(prefix="kjobs-bench-") as tmp, ScratchPostgres.start() as pg:
        folder = Path(tmp)
        for nodes in (1, 3):
            url = pg.create_database(f"claims{nodes}")
            rate = await throughput(url, folder, nodes, sizes.claim_jobs, 1, sizes)
            figures[f"claims_per_s_{nodes}_nodes"] = round(rate, 1)
            url = pg.create_database(f"steps{nodes}")
            rate = await throughput(url, folder, nodes, sizes.step_jobs, sizes.steps, sizes)
            figures[f"steps_per_s_{nodes}_nodes"] = round(rate * sizes.steps, 1)
        figures["rescue_s"] = round(await rescue(pg.create_database("rescue"), folder, sizes), 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.cluster``."""
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (a check, not figures)")
    args = p.parse_args(argv)
    print(json.dumps(asyncio.run(measure(QUICK if args.quick else FULL)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
