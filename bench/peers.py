"""``make bench-peers``: the shared peer-engine harness and kjobs on the same workload, one run.

The harness (``../shared/bench-peers``, read-only) runs huey, APScheduler 4, Luigi (and Prefect
when installed) and its asyncio baselines, each in its own process. Its engines live in their
own virtualenv, ``.venv-peers/`` at the repository's root, made on first use with
``pip install -r requirements-core.txt`` (never part of kjobs' own environment). Then kjobs
runs the same workload (N jobs × S steps, C at once, noop and 10 ms sleep steps) in this
process, at its default durability (WAL, synchronous=NORMAL) and at FULL (fsync per commit,
what huey, APScheduler and the harness' ``baseline-full``/``-group`` rows use), each the median
of three runs as the harness does for its fast rows. The ratios are kjobs ÷ peer, steps/s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import anyio

from bench.batch import durable_throughput
from bench.common import REPO_ROOT
from engine.store.sqlite.jobs import SqliteJobStore
from steps.base import Profile

Progress = Callable[[str], None]
HARNESS: Final = REPO_ROOT.parent / "shared" / "bench-peers"
VENV: Final = REPO_ROOT / ".venv-peers"
DEFAULT_ENGINES: Final = "baseline huey apscheduler luigi"
REPEATS: Final = 3
#: imported by APScheduler 4.0.0a6 but missing from requirements-core.txt (anyio 4.16 no longer
#: pulls it in); installed at the version requirements-lock.txt pins
MISSING_FROM_CORE: Final = ("sniffio",)
SLEEP_PROFILE: Final = Profile(
    name="bench-sleep-10ms", min_seconds=0.01, max_seconds=0.01, output_lines=0
)


def ensure_venv(progress: Progress) -> Path:
    """``.venv-peers/bin/python``, creating the virtualenv on first use."""
    python = VENV / "bin" / "python"
    if not python.exists():
        progress(f"creating {VENV} (pip install -r requirements-core.txt)")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        _pip(python, "-r", str(HARNESS / "requirements-core.txt"))
    missing = [m for m in MISSING_FROM_CORE if not _importable(python, m)]
    if missing:
        _pip(python, *(_locked(m) for m in missing))
    return python


def _pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "--quiet", *args]
    subprocess.run(command, check=True, stdout=sys.stderr)


def _importable(python: Path, module: str) -> bool:
    probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def _locked(package: str) -> str:
    """``package==version`` as ``requirements-lock.txt`` pins it (else the bare name)."""
    lock = HARNESS / "requirements-lock.txt"
    prefix = f"{package.lower()}=="
    if lock.exists():
        for line in lock.read_text().splitlines():
            if line.strip().lower().startswith(prefix):
                return line.strip()
    return package


def run_harness(workload: Mapping[str, int], progress: Progress) -> list[dict[str, Any]]:
    """``run_all.sh`` with the workload; its JSONL rows (its own lines go to stderr)."""
    python = ensure_venv(progress)
    engines = os.environ.get("ENGINES") or _engines(python)
    with tempfile.TemporaryDirectory(prefix="kjobs-peers-") as tmp:
        out = Path(tmp) / "peers.jsonl"
        env = {
            **os.environ,
            "VENV": str(VENV),
            "OUT": str(out),
            "ENGINES": engines,
            "BENCH_N": str(workload["n"]),
            "BENCH_S": str(workload["s"]),
            "BENCH_C": str(workload["c"]),
            "BENCH_SLEEP_MS": str(workload["sleep_ms"]),
        }
        progress(f"running {HARNESS / 'run_all.sh'} (ENGINES={engines!r})")
        subprocess.run(
            ["bash", str(HARNESS / "run_all.sh")], env=env, stdout=sys.stderr, check=False
        )
        if not out.exists():
            return []
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _engines(python: Path) -> str:
    return DEFAULT_ENGINES + (" prefect" if _importable(python, "prefect") else "")


async def kjobs_rows(workload: Mapping[str, int]) -> list[dict[str, Any]]:
    """kjobs on the workload: noop and sleep, default and FULL durability, median of runs."""
    rows = []
    for variant in ("noop", "sleep"):
        for sync in ("NORMAL", "FULL"):
            runs = [await _kjobs_once(workload, variant, sync) for _ in range(REPEATS)]
            runs.sort(key=lambda r: r["steps_per_s"])
            median = dict(runs[len(runs) // 2])
            median.update(
                engine="kjobs" if sync == "NORMAL" else "kjobs-full",
                variant=variant,
                durability=f"SQLite WAL synchronous={sync}, group commit",
                all_steps_per_s=[round(r["steps_per_s"], 1) for r in runs],
                median_steps_per_s=statistics.median(r["steps_per_s"] for r in runs),
            )
            rows.append(median)
    return rows


async def _kjobs_once(workload: Mapping[str, int], variant: str, sync: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kjobs-peers-") as tmp:
        folder = Path(tmp)
        store = SqliteJobStore(folder / "kjobs.sqlite", synchronous=sync)
        profile = SLEEP_PROFILE if variant == "sleep" else None
        return await durable_throughput(
            folder, workload["n"], workload["s"], workload["c"], store=store, profile=profile
        )


def ratios(kjobs: list[dict[str, Any]], peers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """kjobs ÷ peer in steps/s, per peer row of the same variant (default and FULL kjobs)."""
    mine = {(r["engine"], r["variant"]): r["steps_per_s"] for r in kjobs}
    out = []
    for row in peers:
        if "failed" in row or not row.get("steps_per_s"):
            out.append({"peer": row.get("engine"), "variant": row.get("variant"), "ratio": None,
                        "failed": row.get("failed", "no result")})  # fmt: skip
            continue
        default = mine.get(("kjobs", row["variant"]))
        full = mine.get(("kjobs-full", row["variant"]))
        peer = row["steps_per_s"]
        out.append({
            "peer": row["engine"],
            "variant": row["variant"],
            "n": row["n"], "s": row["s"], "c": row["c"],
            "peer_steps_per_s": round(peer, 1),
            "peer_durability": row.get("durability"),
            "kjobs_steps_per_s": None if default is None else round(default, 1),
            "kjobs_full_steps_per_s": None if full is None else round(full, 1),
            "ratio": None if default is None else round(default / peer, 3),
            "ratio_full": None if full is None else round(full / peer, 3),
        })  # fmt: skip
    return out


def run(workload: Mapping[str, int], progress: Progress) -> dict[str, Any]:
    """The harness, then kjobs, then the ratios: one JSON-ready document."""
    peers = run_harness(workload, progress)
    progress("kjobs on the same workload")
    kjobs = anyio.run(kjobs_rows, workload)
    return {
        "workload": dict(workload),
        "kjobs": kjobs,
        "peers": peers,
        "ratios": ratios(kjobs, peers),
    }


def table(doc: Mapping[str, Any]) -> str:
    """The ratios as a readable table."""
    lines = [
        f"{'peer':<18} {'variant':<6} {'N':>4} {'C':>3} {'peer steps/s':>13} "
        f"{'kjobs':>9} {'ratio':>7} {'kjobs FULL':>11} {'ratio':>7}"
    ]
    for r in doc["ratios"]:
        if r.get("ratio") is None:
            lines.append(f"{r['peer'] or '?':<18} {r['variant'] or '?':<6}  no result")
            continue
        lines.append(
            f"{r['peer']:<18} {r['variant']:<6} {r['n']:>4} {r['c']:>3} "
            f"{r['peer_steps_per_s']:>13,.1f} {r['kjobs_steps_per_s']:>9,.1f} "
            f"{r['ratio']:>7.2f} {r['kjobs_full_steps_per_s']:>11,.1f} {r['ratio_full']:>7.2f}"
        )
    return "\n".join(lines)
