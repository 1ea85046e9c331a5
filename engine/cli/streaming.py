"""``kjobs streaming``: Kylin 5 streaming jobs on a running ``kjobs serve`` (SPEC §5, §8).

``kjobs streaming list [filters]`` (a table), ``start|stop|force-stop|restart JOB_ID...``,
``records JOB_ID`` and ``stats JOB_ID [--minutes N]`` (consumption rate, data latency and
processing time as terminal sparklines). Connection options as every client command
(``--url``, ``--user``, ``--password``); an error prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, Final

from engine.cli.http import ApiClient, ApiError, table, when
from engine.cli.subcommands import Command, SubParsers, add_group, arg
from engine.core.states import STREAMING_LISTED, StreamingAction, StreamingJobType
from engine.core.streaming_jobs import SORT_KEYS

STATUSES: Final = tuple(STREAMING_LISTED)
#: ``--type`` names: build, merge, and the job types themselves in lower case
JOB_TYPES: Final = {
    **{t.value.lower(): t.value for t in StreamingJobType},
    **{t.value.lower().removeprefix("streaming_"): t.value for t in StreamingJobType},
}
ACTIONS: Final = {
    "start": (StreamingAction.START.value, "start streaming jobs"),
    "stop": (
        StreamingAction.STOP.value,
        "stop streaming jobs once the current batch or merge pass ends",
    ),
    "force-stop": (
        StreamingAction.FORCE_STOP.value,
        "stop streaming jobs at once (a running batch is lost)",
    ),
    "restart": (StreamingAction.RESTART.value, "force stop, then start streaming jobs"),
}
SPARKS: Final = " ▁▂▃▄▅▆▇█"  #: level 0 (a zero) is blank; any other value shows at least ▁
ASCII_SPARKS: Final = " .:-=+*#%@"
CHART_WIDTH: Final = 60


def register(sub: SubParsers) -> None:
    """Add ``kjobs streaming ...`` to the CLI."""
    add_group(
        sub,
        "streaming",
        "streaming_command",
        COMMANDS,
        help="Kylin 5 streaming jobs on a running server",
        description="List, start, stop and chart the streaming jobs of a running kjobs serve.",
    )


def _data(body: Any) -> Any:
    """The ``data`` of a Kylin 5 envelope."""
    if not isinstance(body, dict) or body.get("code") != "000" or "data" not in body:
        raise ApiError(f"unexpected answer: {str(body)[:200]}")
    return body["data"]


# -- list ---------------------------------------------------------------------------------------


def _list(client: ApiClient, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"page_offset": args.page, "page_size": args.page_size}
    if args.model_name:
        params["model_name"] = args.model_name
    if args.model:
        params["model_names"] = args.model
    if args.status:
        params["statuses"] = args.status
    if args.type:
        params["job_types"] = [JOB_TYPES[t] for t in args.type]
    if args.project:
        params["project"] = args.project
    if args.sort_by:
        params["sort_by"] = args.sort_by
    if args.reverse is not None:
        params["reverse"] = "true" if args.reverse else "false"
    page = _data(client.get("/streaming_jobs", params=params))
    jobs = page["value"]
    if not jobs:
        print(f"no streaming jobs ({page['total_size']} match)")
        return 0
    print(jobs_table(jobs))
    first = page["offset"] * page["limit"] + 1
    print(f"jobs {first}-{first + len(jobs) - 1} of {page['total_size']}")
    return 0


def jobs_table(jobs: Sequence[dict[str, Any]]) -> str:
    """One line per streaming job."""
    rows = [
        [
            job["uuid"],
            job["model_alias"],
            job["job_type"].removeprefix("STREAMING_"),
            job["job_status"] + (" (launch)" if job["launching_error"] else ""),
            _count(job["last_batch_count"]),
            _millis(job["data_latency"]),
            _millis(job["last_status_duration"]),
            job["last_update_time"] or "-",
        ]
        for job in jobs
    ]
    headers = [
        "JOB ID", "MODEL", "TYPE", "STATUS", "LAST BATCH", "LATENCY", "IN STATUS", "LAST UPDATE",
    ]  # fmt: skip
    return table(headers, rows)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _millis(value: int | None) -> str:
    """A duration in ms, readable: ``850 ms``, ``32.0 s``, ``4 min``, ``2 h 5 min``."""
    if value is None:
        return "-"
    if value < 1000:
        return f"{value} ms"
    seconds = value / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


# -- actions and records ------------------------------------------------------------------------


def _act(client: ApiClient, args: argparse.Namespace) -> int:
    job_ids = [job for name in args.job_ids for job in _jobs_named(client, name, args)]
    body: dict[str, Any] = {"action": args.streaming_action, "job_ids": job_ids}
    if args.project:
        body["project"] = args.project
    _data(client.put("/streaming_jobs/status", json=body))
    for job_id in job_ids:
        print(f"{job_id}  {args.streaming_action}")
    return 0


def _jobs_named(client: ApiClient, name: str, args: argparse.Namespace) -> list[str]:
    """``name`` when it is a job id, else the jobs of the model so called (``--type``)."""
    if name.endswith(("_build", "_merge")):
        return [name]
    params: dict[str, Any] = {"model_names": name, "page_size": 1000}
    if args.type:
        params["job_types"] = [JOB_TYPES[t] for t in args.type]
    if args.project:
        params["project"] = args.project
    found = _data(client.get("/streaming_jobs", params=params))["value"]
    if not found:
        raise ApiError(f"no streaming model is called '{name}' (`kjobs streaming list`)")
    return sorted(job["uuid"] for job in found)


def _records(client: ApiClient, args: argparse.Namespace) -> int:
    params = {"job_id": args.job_id}
    if args.project:
        params["project"] = args.project
    records = _data(client.get("/streaming_jobs/records", params=params))
    if not records:
        print("no records")
        return 0
    rows = [[r["action"], when(r["create_time"])] for r in records]
    print(table(["ACTION", "TIME"], rows))
    return 0


# -- stats --------------------------------------------------------------------------------------


def _stats(client: ApiClient, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"time_filter": args.minutes}
    if args.project:
        params["project"] = args.project
    stats = _data(client.get(f"/streaming_jobs/stats/{args.job_id}", params=params))
    print(stats_chart(args.job_id, args.minutes, stats, width=args.width, ramp=_ramp()))
    return 0


def _ramp() -> str:
    """Unicode blocks where stdout can show them, ASCII otherwise."""
    try:
        SPARKS.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII_SPARKS
    return SPARKS


def stats_chart(
    job_id: str, minutes: int, stats: dict[str, list[int]], *, width: int, ramp: str = SPARKS
) -> str:
    """Sparklines of the stats endpoint's series, oldest on the left."""
    times = stats["create_time"]
    if not times:
        return f"{job_id}: no micro-batches in the last {minutes} min"
    lines = [
        f"{job_id}: {len(times)} micro-batches, {when(times[-1])} .. {when(times[0])} UTC",
    ]
    series = (
        ("consumption rate", "rows/s", stats["consumption_rate_hist"]),
        ("data latency", "ms", stats["data_latency_hist"]),
        ("processing time", "ms", stats["processing_time_hist"]),
    )
    label = max(len(name) for name, _, _ in series)
    for name, unit, newest_first in series:
        values = list(reversed(newest_first))
        line = sparkline(buckets(values, max(1, width)), ramp)
        lines.append(
            f"{name.ljust(label)}  {line}  last {values[-1]:,} {unit}, "
            f"min {min(values):,}, max {max(values):,}"
        )
    return "\n".join(lines)


def buckets(values: Sequence[int], width: int) -> list[float]:
    """At most ``width`` points: consecutive values averaged when there are more."""
    if len(values) <= width:
        return [float(v) for v in values]
    size = len(values) / width
    out: list[float] = []
    for i in range(width):
        part = values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)]
        out.append(sum(part) / len(part))
    return out


def sparkline(values: Sequence[float], ramp: str = SPARKS) -> str:
    """One character per value, scaled from 0 to the largest value."""
    top = max(values, default=0.0)
    levels = len(ramp) - 1
    chars = []
    for value in values:
        if value <= 0 or top <= 0:
            chars.append(ramp[0])
        else:
            chars.append(ramp[max(1, round(value / top * levels))])
    return "".join(chars)


# -- the command table ------------------------------------------------------------------------

PROJECT: Final = arg("--project", help="project the job must belong to")
COMMANDS: Final = (
    Command(
        "list",
        "list streaming jobs",
        "List streaming jobs, filtered, sorted and paged like GET /kylin/api/streaming_jobs.",
        _list,
        (
            arg("--model-name", help="model alias contains this (case-insensitive)"),
            arg("--model", action="append", help="exact model alias (repeatable)"),
            arg("--status", action="append", type=str.upper, choices=STATUSES, help="repeatable"),
            arg(
                "--type",
                action="append",
                type=str.lower,
                choices=sorted(JOB_TYPES),
                help="repeatable",
            ),
            arg("--project", help="project name"),
            arg("--sort-by", choices=SORT_KEYS, default=None, help="default last_modified"),
            arg(
                "--reverse",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="descending order (the default); --no-reverse for ascending",
            ),
            arg("--page", type=int, default=0, help="page index (default 0)"),
            arg("--page-size", type=int, default=10, help="jobs per page (default 10)"),
        ),
    ),
    *(
        Command(
            name,
            text,
            f"{text[0].upper()}{text[1:]}: by job id, or by model name (both of "
            "its jobs, or those --type names).",
            _act,
            (
                arg(
                    "job_ids",
                    metavar="JOB_OR_MODEL",
                    nargs="+",
                    help="{model_id}_build or _merge, or a model name (sales_stream_model)",
                ),
                arg("--project", help="project the jobs must belong to"),
                arg(
                    "--type",
                    action="append",
                    type=str.lower,
                    choices=sorted(JOB_TYPES),
                    help="with a model name: only its build or merge job (repeatable)",
                ),
            ),
            {"streaming_action": action},
        )
        for name, (action, text) in ACTIONS.items()
    ),
    Command(
        "records",
        "a job's START/STOP/ERROR records",
        "A streaming job's START, STOP and ERROR records, newest first.",
        _records,
        (arg("job_id", metavar="JOB_ID", help="{model_id}_build or _merge"), PROJECT),
    ),
    Command(
        "stats",
        "a job's rate and latency, charted",
        "Sparklines of a streaming job's consumption rate, data latency and "
        "processing time over its recent micro-batches.",
        _stats,
        (
            arg("job_id", metavar="JOB_ID", help="{model_id}_build"),
            arg("--minutes", type=int, default=30, help="the last N minutes (default 30)"),
            arg("--width", type=int, default=CHART_WIDTH, help="chart columns (default 60)"),
            PROJECT,
        ),
    ),
)
