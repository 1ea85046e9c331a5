"""Client commands that talk to a running ``kjobs serve`` (SPEC §8).

``kjobs jobs``, ``status ID [--watch]``, ``submit CUBE [--wait]``, ``resume|discard|pause ID``,
``rollback ID STEP``, ``drop ID``, ``output STEP_ID [--follow]``. Every command takes ``--url``
(default ``$KJOBS_URL`` or http://127.0.0.1:7070) and ``--user``/``--password`` (default
``$KJOBS_USER``/``$KJOBS_PASSWORD``, else ADMIN/KYLIN). An error prints one line, the server's
message, and exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from engine.cli.http import (
    ENDED,
    ApiClient,
    ApiError,
    add_connection_args,
    job_status_line,
    jobs_table,
    progress_bar,
    set_handler,
    steps_table,
)
from engine.core.jobs import split_step_id
from engine.core.segments import BUILD_TYPES
from engine.core.states import MOVING_STATUSES, SHOWN_STATUSES, STATUS_CODES, BuildType, JobStatus

FINISHED = JobStatus.FINISHED.value
MOVING = frozenset(s.value for s in MOVING_STATUSES)
SHOWN = sorted(s.value for s in SHOWN_STATUSES)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the client commands to the CLI."""
    conn = argparse.ArgumentParser(add_help=False)
    add_connection_args(conn)

    p = sub.add_parser("jobs", parents=[conn], help="list jobs (newest change first)")
    p.add_argument("--cube", help="cube name contains this (case-insensitive)")
    p.add_argument("--project", help="project name")
    p.add_argument("--status", action="append", choices=SHOWN, help="repeatable")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the job ids")
    set_handler(p, _jobs)

    p = sub.add_parser("status", parents=[conn], help="a job and its steps")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--watch", action="store_true", help="refresh until the job ends")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    set_handler(p, _status)

    p = sub.add_parser("submit", parents=[conn], help="build, merge or refresh a cube")
    p.add_argument("cube", metavar="CUBE")
    p.add_argument("--type", default=BuildType.BUILD.value, choices=BUILD_TYPES)
    p.add_argument("--start", type=int, default=0, help="segment start, epoch ms")
    p.add_argument("--end", type=int, default=0, help="segment end, epoch ms (0 0 = full build)")
    p.add_argument("--priority-offset", type=int, default=0)
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the new job's id")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    p.add_argument("--timeout", type=float, default=None, help="give up waiting after N s")
    set_handler(p, _submit)

    for name, path, text in (
        ("resume", "resume", "resume an ERROR or STOPPED job"),
        ("discard", "cancel", "discard (cancel) a job"),
        ("pause", "pause", "pause a PENDING or RUNNING job"),
    ):
        p = sub.add_parser(name, parents=[conn], help=text)
        p.add_argument("job_id", metavar="ID")
        p.set_defaults(action_path=path)
        set_handler(p, _action)

    p = sub.add_parser("rollback", parents=[conn], help="re-run a job from one of its steps")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("step", metavar="STEP", help="step id ({jobId}-NN) or sequence number")
    set_handler(p, _rollback)

    p = sub.add_parser("drop", parents=[conn], help="delete a FINISHED or DISCARDED job")
    p.add_argument("job_id", metavar="ID")
    set_handler(p, _drop)

    p = sub.add_parser("output", parents=[conn], help="a step's output")
    p.add_argument("step_id", metavar="STEP_ID", help="{jobId}-NN")
    p.add_argument("--follow", action="store_true", help="keep printing while the step runs")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    set_handler(p, _output)


# -- commands ---------------------------------------------------------------------------------


def _jobs(client: ApiClient, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"offset": args.offset, "limit": args.limit}
    if args.cube:
        params["cubeName"] = args.cube
    if args.project:
        params["projectName"] = args.project
    if args.status:
        params["status"] = [STATUS_CODES[s] for s in args.status]
    jobs = client.get("/jobs", params=params)
    if args.quiet:
        print("\n".join(job["uuid"] for job in jobs))
    else:
        print(jobs_table(jobs) if jobs else "no jobs")
    return 0


def _status(client: ApiClient, args: argparse.Namespace) -> int:
    job = client.get(f"/jobs/{args.job_id}")
    if not args.watch:
        print(_describe(job))
        return 0
    shown = ""
    tty = sys.stdout.isatty()
    while True:
        text = _describe(job)
        if text != shown:
            print(("\x1b[H\x1b[2J" if tty else "") + text, flush=True)
            shown = text
        if job["job_status"] in ENDED:
            return 0 if job["job_status"] == FINISHED else 1
        time.sleep(args.interval)
        job = client.get(f"/jobs/{args.job_id}")


def _describe(job: dict[str, Any]) -> str:
    return f"{job_status_line(job)}\n{steps_table(job['steps'])}"


def _submit(client: ApiClient, args: argparse.Namespace) -> int:
    body = {
        "startTime": args.start,
        "endTime": args.end,
        "buildType": args.type,
        "priorityOffset": args.priority_offset,
    }
    job = client.put(f"/cubes/{args.cube}/build", json=body)
    print(job["uuid"] if args.quiet else f"submitted {job['uuid']}  {job['name']}", flush=True)
    if not args.wait:
        return 0
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    last = ""
    tty = sys.stderr.isatty()
    while job["job_status"] not in ENDED:
        if deadline is not None and time.monotonic() > deadline:
            print(f"kjobs: still {job['job_status']} after {args.timeout:g} s", file=sys.stderr)
            return 1
        bar = progress_bar(job)
        if tty:
            print(f"\r{bar}\x1b[K", end="", file=sys.stderr, flush=True)
        elif bar != last:
            print(bar, file=sys.stderr, flush=True)
        last = bar
        time.sleep(args.interval)
        job = client.get(f"/jobs/{job['uuid']}")
    if tty:
        print(f"\r{progress_bar(job)}\x1b[K", file=sys.stderr, flush=True)
    print(f"job {job['uuid']} {job['job_status']} in {job['duration']} s")
    return 0 if job["job_status"] == FINISHED else 1


def _action(client: ApiClient, args: argparse.Namespace) -> int:
    job = client.put(f"/jobs/{args.job_id}/{args.action_path}")
    print(job_status_line(job))
    return 0


def _rollback(client: ApiClient, args: argparse.Namespace) -> int:
    step = args.step
    if step.isdigit():
        step = f"{args.job_id}-{int(step):02d}"
    job = client.put(f"/jobs/{args.job_id}/steps/{step}/rollback")
    print(job_status_line(job))
    return 0


def _drop(client: ApiClient, args: argparse.Namespace) -> int:
    job = client.delete(f"/jobs/{args.job_id}/drop")
    print(f"dropped {job['uuid']}  {job['name']}")
    return 0


def _output(client: ApiClient, args: argparse.Namespace) -> int:
    parsed = split_step_id(args.step_id)
    if parsed is None:
        raise ApiError(f"'{args.step_id}' is not a step id ({{jobId}}-NN)")
    job_id, sequence = parsed
    path = f"/jobs/{job_id}/steps/{args.step_id}/output"
    printed = ""
    while True:
        text = client.get(path)["cmd_output"] or ""
        printed = _print_new(printed, text)
        if not args.follow or _step_done(client.get(f"/jobs/{job_id}"), sequence):
            if args.follow:  # the last lines landed with the step's final state
                _print_new(printed, client.get(path)["cmd_output"] or "")
            return 0
        time.sleep(args.interval)


def _print_new(printed: str, text: str) -> str:
    """Print what ``text`` adds to what was printed; all of it when the head was cut."""
    new = text[len(printed) :] if text.startswith(printed) else text
    if new:
        sys.stdout.write(new)
        sys.stdout.flush()
    return text


def _step_done(job: dict[str, Any], sequence: int) -> bool:
    steps = job["steps"]
    if not 0 <= sequence < len(steps):
        return True
    state = steps[sequence]["step_status"]
    return state not in MOVING or job["job_status"] in ENDED
