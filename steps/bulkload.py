"""The bulk-load family: move staged HFiles into the target directory (real), or simulate it.

Real mode takes ``options["source"]`` (the staging directory) and ``options["target"]``
(relative paths are under the job's working directory). Each staged file, with its path relative
to the source, is moved into the target atomically: ``os.replace`` on one filesystem; across
filesystems a copy to a temporary name in the target directory, fsync, ``os.replace``, then the
staged file is removed. Readers of the target never see a partial file.

It is idempotent: the staged set (path and size of every file) is written to a manifest in the
source directory before anything moves, so a retry after a crash, or a second run, moves only
what is still staged and reports the same ``hfile_count`` and ``bytes_loaded``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Final

import anyio
import anyio.to_thread

from engine.core.errors import StepFailure
from steps.base import StepContext, StepResult
from steps.simulated import chatter, duration, should_fail, simulated_failure, spend

MANIFEST: Final = ".kjobs-bulkload.json"
_TMP_SUFFIX: Final = ".kjobs-tmp"
FAILURE_KIND: Final = "BulkLoadFailed"


class BulkLoadExecutor:
    """Real bulk loads: staged files moved atomically into the target, idempotently."""

    async def run(self, ctx: StepContext) -> StepResult:
        """Move every staged file; report ``hfile_count`` and ``bytes_loaded``."""
        source, target = _dirs(ctx)
        try:
            staged = await anyio.to_thread.run_sync(_stage, source)
            ctx.output.write(f"Loading {len(staged)} HFiles from {source} into {target}\n")
            for rel in staged:
                # one thread hop per file: cancellation lands between files, and a retry
                # finishes the job
                if await anyio.to_thread.run_sync(_move, source / rel, target / rel):
                    ctx.output.write(f"Loaded {rel}\n")
        except OSError as exc:
            raise StepFailure(f"Bulk load failed: {exc}", kind=FAILURE_KIND) from exc
        total = sum(staged.values())
        ctx.output.write(f"Loaded {len(staged)} HFiles, {total} bytes\n")
        return StepResult(info={"hfile_count": str(len(staged)), "bytes_loaded": str(total)})


class SimulatedBulkLoadExecutor:
    """Simulated bulk loads: a duration, counts and failures from the profile."""

    async def run(self, ctx: StepContext) -> StepResult:
        """Spend the profile's duration; report made-up ``hfile_count`` and ``bytes_loaded``."""
        profile, rng = ctx.profile, ctx.rng
        seconds = duration(profile, rng)
        failing = should_fail(profile, ctx.step, rng)
        lines = chatter(ctx, ctx.step.spec.name)
        await spend(ctx, seconds, lines)
        if failing:
            raise simulated_failure(ctx, "Bulk load failed", FAILURE_KIND)
        files = rng.randint(1, 64)
        size = rng.randint(profile.records_min, max(profile.records_min, profile.records_max))
        loaded = size * rng.randint(40, 400)
        if lines:
            ctx.output.write(f"Loaded {files} HFiles, {loaded} bytes\n")
        return StepResult(info={"hfile_count": str(files), "bytes_loaded": str(loaded)})


def _dirs(ctx: StepContext) -> tuple[Path, Path]:
    """The source and target directories of the step (relative ones under the workdir)."""
    options = ctx.step.spec.options
    missing = [key for key in ("source", "target") if not options.get(key)]
    if missing:
        raise StepFailure(
            f"Bulk-load step '{ctx.step.spec.name}' needs option(s) {', '.join(missing)}",
            kind="InvalidStep",
        )
    base = ctx.workdir or Path.cwd()
    return base / options["source"], base / options["target"]


def _stage(source: Path) -> dict[str, int]:
    """The staged set: relative path -> size, from the manifest plus whatever is staged now."""
    manifest = source / MANIFEST
    staged: dict[str, int] = {}
    if manifest.exists():
        staged.update(json.loads(manifest.read_text(encoding="utf-8")))
    elif not source.is_dir():
        raise FileNotFoundError(errno.ENOENT, "staging directory does not exist", str(source))
    current = {
        path.relative_to(source).as_posix(): path.stat().st_size
        for path in sorted(source.rglob("*"))
        if path.is_file() and path.name != MANIFEST and not path.name.endswith(_TMP_SUFFIX)
    }
    merged = dict(sorted({**staged, **current}.items()))
    if merged != staged or not manifest.exists():
        _write_atomically(manifest, json.dumps(merged).encode())
    return merged


def _move(src: Path, dst: Path) -> bool:
    """Move one staged file into place; False when it was moved already."""
    if not src.exists():
        if dst.exists():
            return False
        raise FileNotFoundError(errno.ENOENT, "staged file vanished before it was loaded", str(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with src.open("rb") as data:
            _write_atomically(dst, data)
        src.unlink()
    return True


def _write_atomically(path: Path, data: bytes | BinaryIO) -> None:
    """Write ``data`` (bytes or a binary file) to ``path`` via a synced temporary file."""
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    with tmp.open("wb") as out:
        if isinstance(data, bytes):
            out.write(data)
        else:
            shutil.copyfileobj(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
