"""``GET /kylin/api/jobs`` over 100,000 stored jobs, filtered and paged, through ``kjobs serve``.

The store is filled straight through SQL: the store creates the file (migrations), then the
rows go in with the store's own statements and codec (``INSERT_JOB``, ``INSERT_DEFINITION``,
``INSERT_STEP``: a summary, a definition and 10 step rows per job), 10,000 jobs per
transaction. Jobs have 10 steps (~1.3 KB of definition JSON each; a sample-cube build is
~20 KB), and are spread over 10 projects, 100 cubes, 60 days of ``last_modified`` and the four
states a job rests in (70% FINISHED, 10% each ERROR, DISCARDED, STOPPED): nothing for the engine
to run. ``build_jobs`` checks that one job of each state decodes from its rows as built.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from bench.common import noop_steps, percentile
from bench.profile import sampled
from bench.server import get_request, kjobs_serve, sequential
from engine.clock import SystemClock, monotonic
from engine.core import operations as ops
from engine.core.jobs import Job, Segment, Step
from engine.core.states import State
from engine.store.sqlite.codec import (
    decode_job,
    encode_definition,
    segment_to_dict,
    step_row,
    summary_row,
)
from engine.store.sqlite.jobs import INSERT_DEFINITION, INSERT_JOB, INSERT_STEP, SqliteJobStore

_dumps = json.JSONEncoder(separators=(",", ":")).encode
DAY_MS: Final = 86_400_000
PROJECTS: Final = 10
CUBES: Final = 100
CHUNK: Final = 10_000
#: (state, share) of the stored jobs
MIX: Final = (
    (State.SUCCEED, 0.7),
    (State.ERROR, 0.1),
    (State.DISCARDED, 0.1),
    (State.STOPPED, 0.1),
)

#: the list queries, timed round-robin (Kylin status codes: 4 FINISHED, 8 ERROR, 16 DISCARDED,
#: 32 STOPPED; timeFilter 1 = last day, 3 = last month)
QUERIES: Final = (
    "projectName=project_3&limit=30&offset=0",
    "projectName=project_7&status=32&status=16&timeFilter=3&limit=15&offset=15",
    "cubeName=cube_04&status=8&limit=30",
    "cubeName=CUBE_99&limit=30&offset=30",
    "status=4&timeFilter=1&limit=30&offset=30",
    "limit=30&offset=1000",
)


def _steps_for(state: State, job_id: str, steps: int, now: int) -> tuple[Step, ...]:
    """Steps consistent with a job resting in ``state``."""
    done = {State.SUCCEED: steps, State.ERROR: 5, State.DISCARDED: 3, State.STOPPED: 6}[state]
    out = []
    for i, spec in enumerate(noop_steps(steps)):
        if i < done:
            step = Step(job_id, i, spec, State.SUCCEED, now - 1000, now - 500, 0,
                        {"exit_code": "0"}, 1)  # fmt: skip
        elif i == done and state is not State.SUCCEED:
            step = Step(job_id, i, spec, state, now - 400, now, 0, {}, 1)
        else:
            step = Step(job_id, i, spec)
        out.append(step)
    return tuple(out)


Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def build_jobs(count: int, steps: int = 10, seed: int = 6, first: int = 0) -> Iterator[Rows]:
    """``count`` jobs (numbered from ``first``) as (summary, definition, step) rows, ``CHUNK``
    jobs at a time, deterministic for a seed (times end now).

    Fast enough for a million: the step rows of one state and the steps' part of the definition
    are made once and shared (only the job id differs), and ids grow with the number so that
    rows are appended to the tables' B-trees. The first job of each state is built as a real
    ``Job`` and must decode from its rows exactly.
    """
    rng = random.Random(seed)
    now = SystemClock().now_ms()
    states = [state for state, _ in MIX]
    weights = [share for _, share in MIX]
    shapes = {state: _Shape(state, steps, now) for state in states}
    checked: set[State] = set()
    for start in range(first, first + count, CHUNK):
        rows: Rows = ([], [], [])
        for index in range(start, min(first + count, start + CHUNK)):
            state = rng.choices(states, weights)[0]
            job = _job(index, state, rng, now, shapes[state])
            shapes[state].add(job, rows)
            if state not in checked:
                checked.add(state)
                own = job.evolve(steps=_steps_for(state, job.id, steps, now))
                if decode_job(rows[0][-1], rows[1][-1][1], rows[2][-steps:]) != own:
                    raise AssertionError("a job does not decode from its rows as built")
        yield rows


class _Shape:
    """What every stored job resting in one state shares: its steps (ids aside)."""

    def __init__(self, state: State, steps: int, now: int) -> None:
        self.steps = _steps_for(state, "shared", steps, now)
        self.step_rows = [step_row(s)[1:] for s in self.steps]
        sample = Job("shared", "", "", "", "BUILD", Segment("", "", "", 0, 0), "", 0, self.steps)
        text = encode_definition(sample)
        self.steps_text = text[text.index(',"steps":') :]

    def add(self, job: Job, rows: Rows) -> None:
        """Append the job's summary, definition and step rows."""
        rows[0].append(summary_row(job))
        head: dict[str, Any] = {"name": job.name, "build_type": job.build_type,
                                "segment": segment_to_dict(job.segment),
                                "submitter": job.submitter}  # fmt: skip
        rows[1].append((job.id, _dumps(head)[:-1] + self.steps_text))
        rows[2].extend([(job.id, *row) for row in self.step_rows])


def _job(index: int, state: State, rng: random.Random, now: int, shape: _Shape) -> Job:
    job_id = f"{index:012x}{rng.getrandbits(80):020x}"
    cube = f"cube_{index % CUBES:02d}"
    modified = now - rng.randrange(60 * DAY_MS)
    created = modified - rng.randrange(1, 3_600_000)
    segment = Segment(f"{rng.getrandbits(128):032x}", cube, "seg", 0, 0, "READY")
    return Job(
        id=job_id,
        name=ops.job_name("BUILD", cube, segment, created),
        project=f"project_{index % PROJECTS}",
        cube=cube,
        build_type="BUILD",
        segment=segment,
        submitter="ADMIN",
        priority=20,
        steps=shape.steps,
        state=state,
        create_time=created,
        last_modified=modified,
        start_time=created + 10,
        end_time=modified,
        build_instance="bench@localhost",
        version=len(shape.steps) + 2,
    )


def fill(path: Path, count: int = 100_000, first: int = 0) -> dict[str, Any]:
    """Create the store at ``path`` (if needed) and insert ``count`` jobs, numbered from
    ``first`` (so that a filled store can be grown); seconds taken and file size."""
    started = monotonic()
    asyncio.run(_create(path))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        for jobs, definitions, steps in build_jobs(count, seed=6 + first, first=first):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_JOB, jobs)
            conn.executemany(INSERT_DEFINITION, definitions)
            conn.executemany(INSERT_STEP, steps)
            conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return {
        "jobs": first + count,
        "added": count,
        "fill_s": monotonic() - started,
        "file_mb": path.stat().st_size / 2**20,
    }


async def _create(path: Path) -> None:
    store = SqliteJobStore(path)
    await store.open()
    await store.close()


def list_latency(store: Path, workdir: Path, rounds: int = 50) -> dict[str, Any]:
    """Each of ``QUERIES`` ``rounds`` times, one at a time, through ``kjobs serve``."""
    with kjobs_serve(store, workdir) as server:
        requests = [
            get_request(server.host, server.port, f"/kylin/api/jobs?{query}") for query in QUERIES
        ]
        asyncio.run(sequential(server.host, server.port, requests))  # warm-up: one of each
        with sampled(server.pid) as profile:
            answers = asyncio.run(sequential(server.host, server.port, requests * rounds))
    bad = [status for status, _ in answers if status != 200]
    if bad:
        raise RuntimeError(f"GET /jobs answered {bad[0]}")
    per_query: dict[str, dict[str, float]] = {}
    for index, query in enumerate(QUERIES):
        mine = [ms for i, (_, ms) in enumerate(answers) if i % len(QUERIES) == index]
        per_query[query] = {"p50_ms": percentile(mine, 50), "p99_ms": percentile(mine, 99)}
    every = [ms for _, ms in answers]
    return {
        "p50_ms": percentile(every, 50),
        "p99_ms": percentile(every, 99),
        "requests": len(every),
        "via": "kjobs serve (HTTP, one client)",
        "queries": per_query,
        "profile": profile,
    }
