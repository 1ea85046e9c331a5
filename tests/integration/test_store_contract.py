"""The ``JobStore`` contract (``engine/store/ports.py``), run against every adapter.

The same tests run on ``MemoryJobStore`` and on ``SqliteJobStore`` over a real file.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import pytest

from engine.core.errors import ConcurrentModification, JobNotFound
from engine.core.jobs import Family, Job, Mode, Segment, StepSpec
from engine.core.operations import submit
from engine.core.segments import plan_segment
from engine.core.states import State
from engine.store import MemoryJobStore, SqliteJobStore, open_store
from engine.store.ports import JobFilter, JobStore, JobWrite, OutputWrite, SegmentChange
from engine.store.postgres import PostgresStores
from engine.store.sqlite.codec import decode_job, encode_definition, step_row, summary_row

LIMIT = 64 * 1024  #: max_output_bytes of the stores under test

SPECS = (
    StepSpec("Create Intermediate Flat Hive Table", "SHELL_CMD_HADOOP", Family.SHELL),
    StepSpec(
        "Extract Fact Table Distinct Columns", "JAVA_CMD_HADOOP_FACTDISTINCT", Family.MAPREDUCE
    ),
    StepSpec("Update Cube Info", "SHELL_CMD_HADOOP", Family.METADATA, action="update_cube_info"),
)


def make_job(
    job_id: str,
    *,
    cube: str = "kylin_sales_cube",
    project: str = "learn_kylin",
    now: int = 1_700_000_000_000,
    start: int = 0,
    end: int = 0,
) -> Job:
    """A freshly submitted job (version 0) over a NEW BUILD segment."""
    segment = plan_segment(f"seg-{job_id}", cube, "BUILD", start, end, ())
    return submit(job_id, project, cube, "BUILD", segment, SPECS, "ADMIN", now).job


async def create(store: JobStore, job: Job) -> Job:
    return await store.save_job(JobWrite(job, None))


async def change(store: JobStore, job: Job, **fields: object) -> Job:
    """Store ``job`` with ``fields`` changed, expecting its current version."""
    return await store.save_job(JobWrite(job.evolve(**fields), job.version))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    """Each adapter, opened; the SQLite one on a real file, PostgreSQL on a fresh database."""
    adapter: JobStore
    if request.param == "memory":
        adapter = MemoryJobStore(max_output_bytes=LIMIT)
    elif request.param == "sqlite":
        adapter = SqliteJobStore(tmp_path / "jobs.sqlite", max_output_bytes=LIMIT)
    else:
        url = request.getfixturevalue("postgres_url")
        adapter = PostgresStores(url, max_output_bytes=LIMIT).jobs
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


# -- create, read, compare-and-set ------------------------------------------------------------


async def test_a_new_job_is_stored_with_version_one(store: JobStore) -> None:
    job = make_job("j1")
    stored = await create(store, job)
    assert stored == job.evolve(version=1)
    assert await store.get_job("j1") == stored


async def test_an_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound) as caught:
        await store.get_job("nope")
    assert isinstance(caught.value, LookupError)
    assert caught.value.job_id == "nope"


async def test_compare_and_set_increments_the_version(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    v2 = await change(store, v1, state=State.RUNNING, last_modified=v1.last_modified + 5)
    assert v2.version == 2
    assert v2.state is State.RUNNING
    assert await store.get_job("j1") == v2


async def test_a_stale_version_writes_nothing(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    v2 = await change(store, v1, state=State.RUNNING)
    stale = JobWrite(
        v1.evolve(state=State.STOPPED),
        v1.version,
        segments=SegmentChange(upsert=[v1.segment]),
        outputs=[OutputWrite(v1.steps[0].id, 1, "lost")],
    )
    with pytest.raises(ConcurrentModification) as caught:
        await store.save_job(stale)
    assert (caught.value.record_id, caught.value.expected_version) == ("j1", 1)
    assert await store.get_job("j1") == v2
    assert await store.read_output(v1.steps[0].id, 1) is None
    assert await store.segments(v1.cube) == []


async def test_creating_an_existing_job_is_a_lost_race(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    with pytest.raises(ConcurrentModification):
        await store.save_job(
            JobWrite(make_job("j1", cube="other"), None, outputs=[OutputWrite("j1-00", 1, "x")])
        )
    assert await store.get_job("j1") == v1
    assert await store.read_output("j1-00", 1) is None


async def test_updating_a_missing_job_is_a_lost_race(store: JobStore) -> None:
    with pytest.raises(ConcurrentModification):
        await store.save_job(JobWrite(make_job("ghost"), 0))
    with pytest.raises(JobNotFound):
        await store.get_job("ghost")


async def test_of_twenty_writers_on_one_version_exactly_one_wins(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))

    async def writer(n: int) -> Job | None:
        try:
            return await change(store, v1, build_instance=f"writer-{n}")
        except ConcurrentModification:
            return None

    with anyio.fail_after(10):
        results = await asyncio.gather(*(writer(n) for n in range(20)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await store.get_job("j1") == winners[0]
    assert winners[0].version == 2


async def test_records_survive_the_round_trip_with_every_field(store: JobStore) -> None:
    job = rich_job()
    stored = await create(store, job)
    assert await store.get_job(job.id) == stored == job.evolve(version=job.version + 1)


def rich_job() -> Job:
    """A job whose every field differs from its default."""
    spec = StepSpec(
        "Real step ✓",
        "SHELL_CMD",
        Family.SHELL,
        mode=Mode.REAL,
        exec_cmd="echo 'hi' && sleep 0",
        interrupt_cmd="kill -TERM 1",
        profile="slow",
        timeout_s=0.0,
        action="update_cube_info",
        options={"target": "/tmp/x", "é": "ü"},
    )
    job = make_job("rich", cube="Ünïcode_Cube", start=1_000, end=2_000)
    step = job.steps[1].evolve(
        state=State.ERROR,
        start_time=11,
        end_time=12,
        wait_time=13,
        info={"mr_job_id": "job_1_0001", "exit_code": "1"},
        attempts=3,
        retries=2,
        reattach=True,
    )
    job = job.with_step(step).with_step(job.steps[2].evolve(spec=spec))
    segment = Segment("seg-m", job.cube, "merged", 0, 2**63 - 1, "READY", ("a", "b"))
    return job.evolve(
        state=State.ERROR,
        segment=segment,
        start_time=21,
        end_time=22,
        interrupt_time=23,
        build_instance="123@host",
        version=7,
        priority=-5,
        params={"k": "v", "lone": "\udcff"},
    )


def test_the_codec_round_trips_rows_and_leaves_unset_fields_out() -> None:
    for job in (rich_job(), make_job("bare")):
        definition = encode_definition(job)
        steps = [step_row(s) for s in job.steps]
        assert decode_job(summary_row(job), definition, steps) == job
        assert definition.isascii()
        assert all(isinstance(v, int | str) for row in steps for v in row)
    bare = json.loads(encode_definition(make_job("bare")))
    assert "params" not in bare
    assert "exec_cmd" not in bare["steps"][0]  # unset: left out


async def test_a_write_from_a_base_rewrites_only_the_steps_that_changed(
    store: JobStore,
) -> None:
    v1 = await create(store, make_job("j1"))
    first = v1.steps[0].evolve(state=State.SUCCEED, end_time=5)
    second = v1.steps[1].evolve(state=State.RUNNING, start_time=5, info={"k": "v"})
    v2_job = v1.with_step(first).with_step(second).evolve(state=State.RUNNING)
    v2 = await store.save_job(JobWrite(v2_job, v1.version, base=v1))
    assert await store.get_job("j1") == v2 == v2_job.evolve(version=2)
    v3 = await store.save_job(JobWrite(v2.evolve(last_modified=9), v2.version, base=v2))
    assert await store.get_job("j1") == v3


async def test_a_base_of_another_version_is_refused(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    v2 = await change(store, v1, state=State.RUNNING)
    with pytest.raises(ValueError, match="base"):
        await store.save_job(JobWrite(v2.evolve(state=State.STOPPED), v2.version, base=v1))
    assert await store.get_job("j1") == v2


# -- atomic writes, delete --------------------------------------------------------------------


async def test_job_segments_and_outputs_are_written_together(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    old = Segment("old", v1.cube, "old", 0, 10, "READY")
    await store.save_job(JobWrite(v1, v1.version, segments=SegmentChange(upsert=[old])))
    v2 = await store.get_job("j1")
    landed = Segment(v1.segment.uuid, v1.cube, v1.segment.name, 10, 20, "READY")
    v3 = await store.save_job(
        JobWrite(
            v2.evolve(state=State.SUCCEED),
            v2.version,
            segments=SegmentChange(upsert=[landed], delete=["old"]),
            outputs=[OutputWrite("j1-02", 1, "done"), OutputWrite("j1-01", 2, "again")],
        )
    )
    assert v3.version == 3
    assert (await store.get_job("j1")).state is State.SUCCEED
    assert await store.segments(v1.cube) == [landed]
    assert await store.read_output("j1-02", 1) == "done"
    assert await store.read_output("j1-01", 2) == "again"


async def test_outputs_for_steps_the_job_does_not_have_are_refused(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    with pytest.raises(ValueError, match="j1-07"):
        await store.save_job(JobWrite(v1, v1.version, outputs=[OutputWrite("j1-07", 1, "x")]))
    assert await store.get_job("j1") == v1


async def test_delete_is_a_compare_and_set_and_takes_the_outputs(store: JobStore) -> None:
    v1 = await create(store, make_job("j1", now=1))
    v2 = await store.save_job(
        JobWrite(
            v1, v1.version, outputs=[OutputWrite("j1-00", 1, "a"), OutputWrite("j1-01", 1, "b")]
        )
    )
    other = await create(store, make_job("j2"))
    await store.save_job(JobWrite(other, other.version, outputs=[OutputWrite("j2-00", 1, "keep")]))
    with pytest.raises(ConcurrentModification):
        await store.delete_job("j1", v1.version)
    assert await store.get_job("j1") == v2
    await store.delete_job("j1", v2.version)
    with pytest.raises(JobNotFound):
        await store.get_job("j1")
    assert await store.read_output("j1-00", 1) is None
    assert await store.output_attempts("j1-01") == []
    assert await store.read_output("j2-00", 1) == "keep"
    with pytest.raises(JobNotFound):
        await store.delete_job("j1", v2.version)


async def test_a_deleted_id_can_be_created_again(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    await store.delete_job("j1", v1.version)
    again = await create(store, make_job("j1", cube="second"))
    assert (await store.get_job("j1")).cube == "second"
    assert again.version == 1


# -- listing ----------------------------------------------------------------------------------


async def listing(store: JobStore) -> dict[str, Job]:
    """Six jobs over two projects, three cubes, four states, distinct and equal times."""
    rows = [
        ("a", "learn_kylin", "kylin_sales_cube", State.READY, 100),
        ("b", "learn_kylin", "KYLIN_SALES_CUBE_2", State.RUNNING, 300),
        ("c", "other", "flaky_cube", State.ERROR, 200),
        ("d", "learn_kylin", "flaky_cube", State.SUCCEED, 300),
        ("e", "other", "Ünïcode_Cube", State.READY, 50),
        ("f", "learn_kylin", "kylin_sales_cube", State.DISCARDED, 400),
    ]
    jobs = {}
    for n, (job_id, project, cube, state, modified) in enumerate(rows):
        job = make_job(job_id, cube=cube, project=project, now=1000 + n)
        jobs[job_id] = await store.save_job(
            JobWrite(job.evolve(state=state, last_modified=modified), None)
        )
    return jobs


def ids(jobs: Sequence[Job]) -> list[str]:
    return [job.id for job in jobs]


async def test_list_is_newest_change_first_with_ties_by_id(store: JobStore) -> None:
    jobs = await listing(store)
    found = await store.list_jobs(JobFilter())
    assert ids(found) == ["f", "d", "b", "c", "a", "e"]
    assert found[0] == jobs["f"]
    assert await store.count_jobs(JobFilter()) == 6


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (JobFilter(cube="sales"), ["f", "b", "a"]),
        (JobFilter(cube="Kylin_Sales_Cube_"), ["b"]),
        (JobFilter(cube="ÜNÏCODE"), ["e"]),
        (JobFilter(cube=""), ["f", "d", "b", "c", "a", "e"]),
        (JobFilter(cube="nothing"), []),
        (JobFilter(project="other"), ["c", "e"]),
        (JobFilter(project="OTHER"), []),
        (JobFilter(states=frozenset({State.READY, State.ERROR})), ["c", "a", "e"]),
        (JobFilter(states=frozenset()), []),
        (JobFilter(modified_since=300), ["f", "d", "b"]),
        (JobFilter(project="learn_kylin", cube="cube", states=frozenset({State.SUCCEED})), ["d"]),
        (
            JobFilter(cube="CUBE", modified_since=200, states=frozenset(State) - {State.ERROR}),
            ["f", "d", "b"],
        ),
    ],
)
async def test_list_filters(store: JobStore, query: JobFilter, expected: list[str]) -> None:
    await listing(store)
    assert ids(await store.list_jobs(query)) == expected
    assert await store.count_jobs(query) == len(expected)


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        (0, 2, ["f", "d"]),
        (2, 2, ["b", "c"]),
        (4, 2, ["a", "e"]),
        (5, 10, ["e"]),
        (6, 2, []),
        (3, None, ["c", "a", "e"]),
        (0, 0, []),
        (-3, 1, ["f"]),
        (1, -1, []),
    ],
)
async def test_list_pages(
    store: JobStore, offset: int, limit: int | None, expected: list[str]
) -> None:
    await listing(store)
    query = JobFilter(offset=offset, limit=limit)
    assert ids(await store.list_jobs(query)) == expected
    assert await store.count_jobs(query) == 6  # paging ignored


async def test_count_by_state(store: JobStore) -> None:
    assert not any((await store.count_by_state()).values())
    await listing(store)
    counts = {state: n for state, n in (await store.count_by_state()).items() if n}
    assert counts == {
        State.READY: 2,
        State.RUNNING: 1,
        State.ERROR: 1,
        State.SUCCEED: 1,
        State.DISCARDED: 1,
    }


async def test_jobs_in_states_are_oldest_first(store: JobStore) -> None:
    await listing(store)
    found = await store.jobs_in_states(frozenset({State.READY, State.RUNNING, State.SUCCEED}))
    assert ids(found) == ["a", "b", "d", "e"]  # by submission time
    assert await store.jobs_in_states(frozenset()) == []
    assert await store.jobs_in_states(frozenset({State.STOPPED})) == []


# -- outputs ----------------------------------------------------------------------------------


async def test_outputs_are_kept_per_attempt(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    step = v1.steps[1].id
    assert await store.read_output(step, 1) is None
    assert await store.output_attempts(step) == []
    v2 = await store.save_job(JobWrite(v1, v1.version, outputs=[OutputWrite(step, 2, "second")]))
    v3 = await store.save_job(JobWrite(v2, v2.version, outputs=[OutputWrite(step, 1, "first")]))
    await store.save_job(JobWrite(v3, v3.version, outputs=[OutputWrite(step, 2, "second, more")]))
    assert await store.output_attempts(step) == [1, 2]
    assert await store.read_output(step, 1) == "first"
    assert await store.read_output(step, 2) == "second, more"  # replaced, not appended
    assert await store.output_attempts(v1.steps[0].id) == []


async def test_fifty_megabytes_of_output_stay_bounded(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    block = "".join(f"line {n:09d}\n" for n in range(1000))
    text = block * (50 * 1024 * 1024 // len(block) + 1) + "the very last line\n"
    total = len(text.encode())
    assert total > 50 * 1024 * 1024
    await store.save_job(JobWrite(v1, v1.version, outputs=[OutputWrite("j1-01", 1, text)]))
    stored = await store.read_output("j1-01", 1)
    assert stored is not None
    note, tail = stored.split("\n", 1)
    match = re.fullmatch(
        r"\[kjobs: (\d+) bytes of earlier output were cut to keep the last (\d+)\]", note
    )
    assert match is not None
    assert int(match.group(2)) == LIMIT
    assert int(match.group(1)) == total - len(tail.encode())
    assert len(tail.encode()) <= LIMIT
    assert text.endswith(tail)


async def test_clear_outputs_drops_every_attempt_before_new_outputs(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    v2 = await store.save_job(
        JobWrite(
            v1,
            v1.version,
            outputs=[
                OutputWrite("j1-00", 1, "a1"),
                OutputWrite("j1-01", 1, "b1"),
                OutputWrite("j1-01", 2, "b2"),
                OutputWrite("j1-02", 1, "c1"),
            ],
        )
    )
    await store.save_job(
        JobWrite(
            v2,
            v2.version,
            clear_outputs=["j1-01", "j1-02"],
            outputs=[OutputWrite("j1-02", 1, "c1 again")],
        )
    )
    assert await store.output_attempts("j1-00") == [1]
    assert await store.output_attempts("j1-01") == []
    assert await store.read_output("j1-01", 2) is None
    assert await store.read_output("j1-02", 1) == "c1 again"


async def test_output_with_lone_surrogates_is_stored_as_valid_text(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    await store.save_job(JobWrite(v1, v1.version, outputs=[OutputWrite("j1-00", 1, "a\udcffb")]))
    assert await store.read_output("j1-00", 1) == "a?b"


# -- segments ---------------------------------------------------------------------------------


async def test_segments_upsert_and_delete_per_cube(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    s1 = Segment("s1", "cube_a", "n1", 100, 200)
    s2 = Segment("s2", "cube_a", "n2", 0, 100, "READY")
    full = Segment("s3", "cube_b", "full", 0, 2**63 - 1, "NEW")
    v2 = await store.save_job(
        JobWrite(v1, v1.version, segments=SegmentChange(upsert=[s1, s2, full]))
    )
    assert await store.segments("cube_a") == [s2, s1]  # by range start
    assert await store.segments("cube_b") == [full]
    assert await store.segments("cube_c") == []
    merged = Segment("s4", "cube_a", "m", 0, 200, "READY", ("s2", "s1"))
    ready = Segment("s1", "cube_a", "n1", 100, 200, "READY")
    await store.save_job(
        JobWrite(v2, v2.version, segments=SegmentChange(upsert=[ready, merged], delete=["s2"]))
    )
    assert await store.segments("cube_a") == [merged, ready]
    assert await store.segments("cube_b") == [full]

    await store.delete_segments(["s4", "gone-already"])  # segment management, no job write
    assert await store.segments("cube_a") == [ready]
    await store.delete_segments([])
    assert await store.segments("cube_b") == [full]


async def test_deleted_segments_are_gone_from_the_next_read(store: JobStore) -> None:
    v1 = await create(store, make_job("j1"))
    first = Segment("s1", "cube_a", "n1", 0, 100, "READY")
    last = Segment("s2", "cube_a", "n2", 100, 200, "READY")
    await store.save_job(JobWrite(v1, v1.version, segments=SegmentChange(upsert=[first, last])))
    assert await store.segments("cube_a") == [first, last]  # read once: a store may keep it
    await store.delete_segments(["s1"])
    assert await store.segments("cube_a") == [last]


# -- SQLite: what survives a reopen -----------------------------------------------------------


async def test_a_reopened_sqlite_file_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "kjobs.sqlite"
    first = open_store(str(path), LIMIT)
    assert isinstance(first, SqliteJobStore)
    await first.open()
    jobs = await listing(first)
    rich = await create(first, rich_job())
    seg = Segment("s1", "cube_a", "n1", 100, 200, "READY", ("x",))
    await first.save_job(
        JobWrite(
            rich,
            rich.version,
            outputs=[OutputWrite("rich-01", 3, "tail ✓")],
            segments=SegmentChange(upsert=[seg]),
        )
    )
    await first.close()

    second = SqliteJobStore(path, max_output_bytes=LIMIT)
    await second.open()
    try:
        assert await second.get_job("rich") == rich.evolve(version=rich.version + 1)
        assert await second.read_output("rich-01", 3) == "tail ✓"
        assert await second.segments("cube_a") == [seg]
        assert await second.list_jobs(JobFilter(project="other")) == [jobs["c"], jobs["e"]]
        assert (await second.count_by_state())[State.READY] == 2
    finally:
        await second.close()


def test_open_store_picks_the_adapter(tmp_path: Path) -> None:
    memory = open_store(":memory:", 123)
    assert isinstance(memory, MemoryJobStore)
    assert memory.max_output_bytes == 123
    sqlite = open_store(str(tmp_path / "a" / "b.sqlite"), 456)
    assert isinstance(sqlite, SqliteJobStore)
    assert sqlite.max_output_bytes == 456
    assert (tmp_path / "a").is_dir()
