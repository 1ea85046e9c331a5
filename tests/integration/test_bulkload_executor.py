"""Real bulk loads: staged files moved atomically into the target, idempotently."""

from __future__ import annotations

import os
import random
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import anyio
import pytest

from engine.clock import SystemClock
from engine.core.errors import StepFailure
from engine.core.jobs import Family, Mode, Step, StepSpec
from steps import BulkLoadExecutor, executor_for
from steps.base import StepContext
from steps.bulkload import MANIFEST

HFILES = {"F1/hfile-a": b"a" * 1000, "F1/hfile-b": b"bb" * 700, "F2/hfile-c": b"ccc" * 11}
TOTAL = sum(len(data) for data in HFILES.values())


class Lines:
    """An output sink that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)


class Info:
    """An info sink that keeps the merged info."""

    def __init__(self) -> None:
        self.merged: dict[str, str] = {}

    async def update(self, info: Mapping[str, str], wait_time_ms: int | None = None) -> None:
        self.merged.update(info)


def load_ctx(workdir: Path, source: str | Path, target: str | Path) -> StepContext:
    spec = StepSpec(
        name="Load HFile to HBase Table",
        cmd_type="JAVA_CMD_HADOOP_NO_MR_BULKLOAD",
        family=Family.BULKLOAD,
        mode=Mode.REAL,
        options={"source": str(source), "target": str(target)},
    )
    return StepContext(
        job_id="j",
        step=Step(job_id="j", sequence=9, spec=spec, attempts=1),
        params={},
        output=Lines(),
        info=Info(),
        clock=SystemClock(),
        rng=random.Random(0),
        workdir=workdir,
    )


def stage(source: Path) -> None:
    for rel, data in HFILES.items():
        path = source / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def load(ctx: StepContext) -> dict[str, str]:
    with anyio.fail_after(20):
        return dict((await BulkLoadExecutor().run(ctx)).info)


async def test_registry_picks_the_real_bulkload_executor(tmp_path: Path) -> None:
    assert isinstance(executor_for(load_ctx(tmp_path, "s", "t").step.spec), BulkLoadExecutor)


async def test_staged_files_are_moved_into_the_target(tmp_path: Path) -> None:
    stage(tmp_path / "staging")
    info = await load(load_ctx(tmp_path, tmp_path / "staging", tmp_path / "hbase"))
    assert info == {"hfile_count": "3", "bytes_loaded": str(TOTAL)}
    assert files_under(tmp_path / "hbase") == HFILES
    assert files_under(tmp_path / "staging").keys() == {MANIFEST}


async def test_a_second_run_changes_nothing_and_reports_the_same(tmp_path: Path) -> None:
    stage(tmp_path / "staging")
    first = await load(load_ctx(tmp_path, "staging", "hbase"))  # relative: under the workdir
    second = await load(load_ctx(tmp_path, "staging", "hbase"))
    assert first == second == {"hfile_count": "3", "bytes_loaded": str(TOTAL)}
    assert files_under(tmp_path / "hbase") == HFILES


async def test_a_retry_after_a_partial_load_finishes_it(tmp_path: Path) -> None:
    stage(tmp_path / "staging")
    first = await load(load_ctx(tmp_path, "staging", "hbase"))
    # put one file back, as if the attempt had died before moving it
    os.replace(tmp_path / "hbase" / "F2/hfile-c", tmp_path / "staging" / "F2/hfile-c")
    assert await load(load_ctx(tmp_path, "staging", "hbase")) == first
    assert files_under(tmp_path / "hbase") == HFILES


async def test_an_empty_staging_directory_loads_nothing(tmp_path: Path) -> None:
    (tmp_path / "staging").mkdir()
    info = await load(load_ctx(tmp_path, "staging", "hbase"))
    assert info == {"hfile_count": "0", "bytes_loaded": "0"}


async def test_a_missing_staging_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(StepFailure, match="staging directory does not exist") as failure:
        await load(load_ctx(tmp_path, "nowhere", "hbase"))
    assert failure.value.kind == "BulkLoadFailed"


async def test_missing_options_fail_clearly(tmp_path: Path) -> None:
    ctx = load_ctx(tmp_path, "", "hbase")
    with pytest.raises(StepFailure, match="source") as failure:
        await load(ctx)
    assert failure.value.kind == "InvalidStep"


@pytest.fixture
def other_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A directory on another filesystem than ``tmp_path`` (tmpfs), when there is one."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem to load across")
    path = shm / f"kjobs-test-{uuid.uuid4()}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_loading_across_filesystems_copies_then_replaces(
    tmp_path: Path, other_filesystem: Path
) -> None:
    stage(other_filesystem)
    info = await load(load_ctx(tmp_path, other_filesystem, tmp_path / "hbase"))
    assert info == {"hfile_count": "3", "bytes_loaded": str(TOTAL)}
    assert files_under(tmp_path / "hbase") == HFILES  # no temporary files left behind
    assert files_under(other_filesystem).keys() == {MANIFEST}
    assert await load(load_ctx(tmp_path, other_filesystem, tmp_path / "hbase")) == info
