"""Migration 0003 (steps as rows) upgrades a store of the 0001 layout in place: every job, step,
output and segment is kept, and the result equals a store written fresh with the same jobs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from engine.core.jobs import Job, Segment
from engine.core.states import State
from engine.store.ports import JobFilter, JobWrite, OutputWrite, SegmentChange
from engine.store.rules import fold
from engine.store.sqlite.codec import job_to_dict
from engine.store.sqlite.db import SqliteDatabase
from engine.store.sqlite.jobs import SqliteJobStore
from engine.store.sqlite.migrations import load_migrations
from tests.integration.test_store_contract import make_job, rich_job

#: the statement of schema 0001: the whole job as JSON in ``data``
OLD_INSERT = """
INSERT INTO jobs (id, project, cube, cube_key, state, priority, create_time, last_modified,
                  version, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
STATES = (State.READY, State.RUNNING, State.SUCCEED, State.ERROR, State.STOPPED, State.DISCARDED)
OUTPUTS = (OutputWrite("rich-01", 3, "tail ✓"), OutputWrite("j7-00", 1, "x\ny"))
SEGMENTS = (Segment("s1", "cube_a", "n1", 100, 200, "READY", ("x", "y")),)


def jobs() -> list[Job]:
    """Jobs of every state, steps in several states, and one whose every field is set."""
    found = [rich_job()]
    for n in range(60):
        job = make_job(f"j{n}", project=f"p{n % 3}", now=1_000 + n)
        step = job.steps[n % 3].evolve(state=STATES[n % 6], start_time=n, info={"n": str(n)})
        found.append(job.with_step(step).evolve(state=STATES[n % 6], last_modified=5_000 - n))
    return found


def write_old_store(path: Path) -> None:
    """A store of schema 0001 + 0002, written as kjobs before 0003 wrote it."""
    conn = sqlite3.connect(path)
    with conn:
        for job in jobs():
            data = json.dumps(job_to_dict(job), separators=(",", ":"))
            conn.execute(OLD_INSERT, (job.id, job.project, job.cube, fold(job.cube),
                                      job.state.value, job.priority, job.create_time,
                                      job.last_modified, job.version, data))  # fmt: skip
        for o in OUTPUTS:
            conn.execute(
                "INSERT INTO step_outputs (step_id, attempt, job_id, text) VALUES (?, ?, ?, ?)",
                (o.step_id, o.attempt, o.step_id.rsplit("-", 1)[0], o.text),
            )
        conn.execute(
            "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("s1", "cube_a", "n1", 100, 200, "READY", '["x","y"]'),
        )
    conn.close()


async def fresh_store(path: Path) -> None:
    """The same jobs, outputs and segments written through today's store (one write each)."""
    store = SqliteJobStore(path)
    await store.open()
    try:
        for job in jobs():
            mine = [o for o in OUTPUTS if o.step_id.startswith(f"{job.id}-")]
            segments = SegmentChange(upsert=SEGMENTS) if job.id == "j0" else None
            previous = job.evolve(version=job.version - 1)
            await store.save_job(JobWrite(previous, None, segments=segments, outputs=mine))
    finally:
        await store.close()


async def snapshot(path: Path) -> dict[str, object]:
    """What the store answers, through every read of the port."""
    store = SqliteJobStore(path)
    await store.open()
    try:
        every = await store.list_jobs(JobFilter())
        return {
            "jobs": {job.id: await store.get_job(job.id) for job in every},
            "list": every,
            "page": await store.list_jobs(JobFilter(project="p1", offset=3, limit=5)),
            "states": await store.count_by_state(),
            "active": await store.jobs_in_states(frozenset({State.READY, State.RUNNING})),
            "outputs": {o.step_id: await store.read_output(o.step_id, o.attempt) for o in OUTPUTS},
            "attempts": await store.output_attempts("rich-01"),
            "segments": await store.segments("cube_a"),
        }
    finally:
        await store.close()


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    return [(name, sql or "") for name, sql in rows]


async def test_a_migrated_store_equals_a_fresh_one_and_keeps_every_job(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    before = SqliteDatabase(old, migrations=[m for m in load_migrations() if m.version <= 2])
    await before.open()
    await before.close()
    write_old_store(old)
    fresh = tmp_path / "fresh.sqlite"
    await fresh_store(fresh)

    migrated, expected = await snapshot(old), await snapshot(fresh)  # opening old migrates it

    assert schema(old) == schema(fresh)
    assert migrated == expected
    kept = migrated["jobs"]
    assert isinstance(kept, dict)
    assert list(kept.values()) == sorted(jobs(), key=lambda j: (-j.last_modified, j.id))
