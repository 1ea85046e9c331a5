"""The summary of a simulated run, computed from its event log records (and only from them).

``SummaryBuilder`` is a sink of the ``EventLog``: it folds each record in as it is made, so a
run of millions of records needs no memory for them, and anyone can recompute the same numbers
from ``events.jsonl`` (the test suite does). Step durations are those of runs that ended
SUCCEED: from the step's RUNNING record to its SUCCEED record, automatic retries included.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from engine.core.states import ENDED_STATES, REST_NAMES, Operation, State
from engine.simulation.events_log import Record, elapsed

_ENDED = ENDED_STATES


def percentile(values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of ``values`` (0 when empty)."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class SummaryBuilder:
    """Folds log records into the numbers of ``summary.json``."""

    def __init__(self) -> None:
        self.header: dict[str, Any] = {}
        self.events = 0
        self.end_t = 0
        self._jobs: dict[str, str] = {}  #: batch job -> latest state
        self._actions: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._retries = 0
        self._running: dict[tuple[str, int], int] = {}  #: (job, step) -> RUNNING since
        self._durations: dict[str, list[int]] = {}  #: step name -> ms of SUCCEED runs
        self._mr_wait_ms = 0
        self._scheduled = 0  #: jobs created by schedules
        self._swept = 0  #: jobs deleted by the retention sweep
        self._streaming: dict[str, str] = {}  #: streaming job -> latest status
        self._stream = Counter[str]()
        self._max_latency_ms = 0
        self._handlers: dict[str, Callable[[Record], None]] = {
            name.removeprefix("_on_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("_on_")
        }

    def __call__(self, record: Record) -> None:
        """Fold one record in."""
        self.events += 1
        handler = self._handlers.get(record["kind"])
        if handler is not None:
            handler(record)

    def _on_simulation(self, r: Record) -> None:
        self.header = {k: r[k] for k in ("scenario", "seed", "start", "end")}

    def _on_end(self, r: Record) -> None:
        self.end_t = r["t"]

    def _on_action(self, r: Record) -> None:
        self._actions[r["action"]] += 1

    def _on_refused(self, r: Record) -> None:
        self._refused[r["action"]] += 1

    def _on_job(self, r: Record) -> None:
        if r["job"] not in self._jobs and "schedule" in r:
            self._scheduled += 1
        self._jobs[r["job"]] = r["state"]

    def _on_swept(self, r: Record) -> None:
        self._jobs.pop(r["job"], None)
        self._swept += 1

    def _on_step(self, r: Record) -> None:
        key = (r["job"], r["step"])
        state = r["state"]
        self._mr_wait_ms += r.get("wait_ms", 0)
        if state == State.RUNNING:
            self._running[key] = r["t"]
        elif state in _ENDED:
            since = self._running.pop(key, None)
            if state == State.SUCCEED and since is not None:
                self._durations.setdefault(r["name"], []).append(r["t"] - since)

    def _on_retry(self, r: Record) -> None:
        self._retries += 1
        self._mr_wait_ms += r.get("wait_ms", 0)

    def _on_dropped(self, r: Record) -> None:
        self._jobs.pop(r["job"], None)

    def _on_streaming(self, r: Record) -> None:
        self._streaming[r["job"]] = r["state"]

    def _on_batch(self, r: Record) -> None:
        self._stream["batches"] += 1
        self._stream["rows"] += r["rows"]
        self._stream["segments" if r["rows"] else "empty_batches"] += 1
        self._max_latency_ms = max(self._max_latency_ms, r["latency_ms"])

    def _on_merge(self, r: Record) -> None:
        self._stream["merges"] += 1
        self._stream["merged_segments"] += r["segments"]

    def result(self) -> dict[str, Any]:
        """The summary as a JSON-able dict with a stable key order."""
        by_status = Counter(self._jobs.values())
        steps = {
            name: {
                "runs": len(ms),
                "p50_s": percentile(ms, 0.50) / 1000,
                "p95_s": percentile(ms, 0.95) / 1000,
            }
            for name, ms in self._durations.items()
        }
        s = self._stream
        return {
            **self.header,
            "events": self.events,
            "jobs": {
                "submitted": self._actions["SUBMIT"] - self._refused["SUBMIT"],
                "by_status": {st.value: by_status[st.value] for st in State if by_status[st.value]},
                "scheduled": self._scheduled,
                "swept": self._swept,
            },
            "retries": self._retries,
            "resumes": self._actions[Operation.RESUME] - self._refused[Operation.RESUME],
            "actions": dict(sorted(self._actions.items())),
            "refused": dict(sorted(self._refused.items())),
            "steps": steps,
            "mr_queue_wait_s": self._mr_wait_ms / 1000,
            "streaming": {
                "jobs": len(self._streaming),
                "by_status": dict(sorted(Counter(self._streaming.values()).items())),
                "batches": s["batches"],
                "empty_batches": s["empty_batches"],
                "rows": s["rows"],
                "segments": s["segments"],
                "merges": s["merges"],
                "merged_segments": s["merged_segments"],
                "segments_at_end": s["segments"] - s["merged_segments"] + s["merges"],
                "max_data_latency_s": self._max_latency_ms / 1000,
            },
        }


def _hms(seconds: float) -> str:
    return elapsed(round(seconds * 1000)).split(".")[0]


def _ops_counts(jobs: dict[str, Any]) -> str:
    """`` · N by schedules · M swept`` when a schedule or the retention sweep did anything."""
    text = ""
    if jobs.get("scheduled"):
        text += f" · {jobs['scheduled']} by schedules"
    if jobs.get("swept"):
        text += f" · {jobs['swept']} swept by retention"
    return text


def format_table(summary: dict[str, Any], wall_s: float | None = None) -> str:
    """The summary as the text table ``kjobs simulate`` prints."""
    jobs, stream = summary["jobs"], summary["streaming"]
    took = f" in {wall_s:.1f} s of wall time" if wall_s is not None else ""
    lines = [
        f'Simulated "{summary.get("scenario", "?")}" (seed {summary.get("seed", "?")}) from '
        f"{summary.get('start', '?')} to {summary.get('end', '?')}{took}",
        "",
        f"Batch jobs: {jobs['submitted']} submitted{_ops_counts(jobs)}",
    ]
    for state, n in jobs["by_status"].items():
        rest = REST_NAMES[State(state)]
        label = state if rest == state else f"{state} ({rest})"
        lines.append(f"  {label:<22}{n:>7}")
    refused = sum(summary["refused"].values())
    lines += [
        f"  retries {summary['retries']} · resumes {summary['resumes']} · actions "
        f"{sum(summary['actions'].values())} ({refused} refused)",
        f"  MR queue wait, total  {_hms(summary['mr_queue_wait_s'])}",
    ]
    if summary["steps"]:
        width = max(len(name) for name in summary["steps"])
        lines += [
            "",
            f"  {'step (runs that succeeded)':<{width}}  {'runs':>6}  {'p50':>8}  {'p95':>8}",
        ]
        for name, row in summary["steps"].items():
            lines.append(
                f"  {name:<{width}}  {row['runs']:>6}  {row['p50_s']:>7.1f}s  {row['p95_s']:>7.1f}s"
            )
    if stream["jobs"]:
        statuses = ", ".join(f"{n} {st}" for st, n in stream["by_status"].items())
        lines += [
            "",
            f"Streaming jobs: {stream['jobs']} ({statuses})",
            f"  micro-batches {stream['batches']} ({stream['empty_batches']} empty), "
            f"{stream['rows']} rows",
            f"  segments {stream['segments']} made · merges {stream['merges']} "
            f"({stream['merged_segments']} segments merged) · {stream['segments_at_end']} at end",
            f"  max data latency {stream['max_data_latency_s']:.1f} s",
        ]
    return "\n".join(lines)
