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
from typing import Any, Final

from engine.cli import ids
from engine.cli.http import (
    ENDED,
    ApiClient,
    ApiError,
    job_status_line,
    jobs_table,
    progress_bar,
    steps_table,
)
from engine.cli.subcommands import Command, SubParsers, add_commands, arg
from engine.core.segments import BUILD_TYPES
from engine.core.states import (
    MOVING_STATUSES,
    SHOWN_STATUSES,
    STATUS_CODES,
    BuildType,
    JobStatus,
    Operation,
    State,
)

FINISHED: Final = JobStatus.FINISHED.value
MOVING: Final = frozenset(s.value for s in MOVING_STATUSES)
STATUSES: Final = tuple(sorted(s.value for s in SHOWN_STATUSES))
STATUS_HELP: Final = f"REST status, repeatable: {', '.join(STATUSES)} (any case)"
TYPE_HELP: Final = f"{', '.join(BUILD_TYPES)} (any case; default {BUILD_TYPES[0]})"
ID_HELP: Final = "job id, or a unique prefix of one"
#: (command, Kylin 5 bulk action, help)
ACTIONS: Final = (
    ("resume", Operation.RESUME, "resume ERROR or STOPPED jobs"),
    ("discard", Operation.DISCARD, "discard (cancel) jobs"),
    ("pause", Operation.PAUSE, "pause PENDING or RUNNING jobs"),
    ("restart", Operation.RESTART, "run jobs again from their first step (Kylin 5 restart)"),
)

#: the Kylin 3 endpoint of each action that has one (restart is a Kylin 5 bulk action only)
ONE_JOB_PATHS: Final = {
    Operation.RESUME: "resume",
    Operation.DISCARD: "cancel",
    Operation.PAUSE: "pause",
}


def register(sub: SubParsers) -> None:
    """Add the client commands to the CLI."""
    add_commands(sub, COMMANDS)


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
    args.job_id = ids.job_id(client, args.job_id)
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
    tty = sys.stderr.isatty()
    try:
        job = _wait(client, job, args, tty)
    except KeyboardInterrupt:
        if tty:
            print(file=sys.stderr)  # close the bar's line
        print(
            f"kjobs: job {job['uuid']} keeps running; `kjobs status {job['uuid']}`",
            file=sys.stderr,
        )
        return 130
    if job is None:
        return 1
    print(f"job {job['uuid']} {job['job_status']} in {job['duration']} s")
    failed = _failed_step(job)
    if failed is not None:
        print(
            f"step {failed['sequence_id']:02d} {failed['name']} is {failed['step_status']}: "
            f"`kjobs output {failed['id']}` shows its output; `kjobs resume {job['uuid']}` "
            "runs it again",
            file=sys.stderr,
        )
    return 0 if job["job_status"] == FINISHED else 1


def _wait(
    client: ApiClient, job: dict[str, Any], args: argparse.Namespace, tty: bool
) -> dict[str, Any] | None:
    """Poll until the job ends (a bar on stderr); None after ``--timeout``."""
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    last = ""
    while job["job_status"] not in ENDED:
        if deadline is not None and time.monotonic() > deadline:
            if tty:
                print(file=sys.stderr)
            print(f"kjobs: still {job['job_status']} after {args.timeout:g} s", file=sys.stderr)
            return None
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
    return job


def _failed_step(job: dict[str, Any]) -> dict[str, Any] | None:
    """The step a job that did not finish stopped at (ERROR or STOPPED), if any."""
    stuck = {State.ERROR.rest_name, State.STOPPED.rest_name}
    return next((s for s in job["steps"] if s["step_status"] in stuck), None)


def _bulk_ids(client: ApiClient, args: argparse.Namespace) -> list[str]:
    """The jobs an action applies to: the ids given (prefixes resolved), or every job in
    ``--status`` (of ``--project``)."""
    if args.job_ids and args.status:
        raise ApiError("give job ids or --status, not both")
    if args.job_ids:
        return [ids.job_id(client, text) for text in args.job_ids]
    if not args.status:
        raise ApiError(f"give job ids, or --status STATUS for every job in it ({ID_HELP})")
    params: dict[str, Any] = {**ids.EVERY_JOB, "status": [STATUS_CODES[args.status]]}
    if args.project:
        params["projectName"] = args.project
    return [job["uuid"] for job in client.get("/jobs", params=params)]


def _action(client: ApiClient, args: argparse.Namespace) -> int:
    """Each job's own endpoint, or one bulk ``PUT /jobs/status`` for ``--status`` and restart
    (the first refusal stops the rest, as in Kylin)."""
    job_ids = _bulk_ids(client, args)
    if not job_ids:
        print(f"no {args.status} jobs")
        return 0
    path = ONE_JOB_PATHS.get(args.bulk_action)
    if path is not None and not args.status:  # one answer per job: its state right after
        for job_id in job_ids:
            print(job_status_line(client.put(f"/jobs/{job_id}/{path}")))
        return 0
    body: dict[str, Any] = {"action": str(args.bulk_action), "job_ids": job_ids}
    if args.project:
        body["project"] = args.project
    client.put("/jobs/status", json=body)
    for job_id in job_ids:
        print(job_status_line(client.get(f"/jobs/{job_id}")))
    return 0


def _rollback(client: ApiClient, args: argparse.Namespace) -> int:
    job_id = ids.job_id(client, args.job_id)
    step = args.step
    if step.isdigit():
        step = f"{job_id}-{int(step):02d}"
    else:
        step = f"{job_id}-{ids.step_id(client, step)[1]:02d}"
    job = client.put(f"/jobs/{job_id}/steps/{step}/rollback")
    print(job_status_line(job))
    return 0


def _drop(client: ApiClient, args: argparse.Namespace) -> int:
    job = client.delete(f"/jobs/{ids.job_id(client, args.job_id)}/drop")
    print(f"dropped {job['uuid']}  {job['name']}")
    return 0


def _output(client: ApiClient, args: argparse.Namespace) -> int:
    job_id, sequence = ids.step_id(client, args.step_id)
    path = f"/jobs/{job_id}/steps/{job_id}-{sequence:02d}/output"
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


# -- the command table ------------------------------------------------------------------------

JOB_ID: Final = arg("job_id", metavar="ID", help=ID_HELP)
COMMANDS: Final = (
    Command(
        "jobs",
        "list jobs (newest change first)",
        "List batch jobs, newest change first, filtered like GET /kylin/api/jobs.",
        _jobs,
        (
            arg("--cube", help="cube name contains this (case-insensitive)"),
            arg("--project", help="project name"),
            arg("--status", action="append", type=str.upper, choices=STATUSES, help=STATUS_HELP),
            arg("--limit", type=int, default=30, help="at most this many jobs (default 30)"),
            arg("--offset", type=int, default=0, help="skip this many jobs first"),
            arg("-q", "--quiet", action="store_true", help="print only the job ids"),
        ),
    ),
    Command(
        "status",
        "a job and its steps",
        "Show a job and a table of its steps; --watch refreshes until it ends "
        "(exit 0 when it FINISHED, 1 otherwise).",
        _status,
        (
            JOB_ID,
            arg("--watch", action="store_true", help="refresh until the job ends"),
            arg("--interval", type=float, default=1.0, help="seconds between refreshes"),
        ),
    ),
    Command(
        "submit",
        "build, merge or refresh a cube",
        "Submit a BUILD, MERGE or REFRESH of a cube over [--start, --end) (epoch "
        "ms; 0 0 = a full build); --wait shows its progress until it ends.",
        _submit,
        (
            arg("cube", metavar="CUBE", help="cube name (`kjobs cubes` lists them)"),
            arg(
                "--type",
                default=BuildType.BUILD.value,
                type=str.upper,
                choices=BUILD_TYPES,
                help=TYPE_HELP,
            ),
            arg("--start", type=int, default=0, help="segment start, epoch ms"),
            arg("--end", type=int, default=0, help="segment end, epoch ms (0 0 = full build)"),
            arg(
                "--priority-offset",
                type=int,
                default=0,
                help="added to the job's priority (default 0)",
            ),
            arg("--wait", action="store_true", help="show progress until the job ends"),
            arg("-q", "--quiet", action="store_true", help="print only the new job's id"),
            arg("--interval", type=float, default=0.5, help="seconds between polls"),
            arg("--timeout", type=float, default=None, help="give up waiting after N s"),
        ),
    ),
    *(
        Command(
            name,
            text,
            f"{text[0].upper()}{text[1:]}. With --status (and --project) instead "
            "of ids: every job in that status, in one bulk PUT /kylin/api/jobs/status.",
            _action,
            (
                arg("job_ids", metavar="ID", nargs="*", help=ID_HELP),
                arg("--status", type=str.upper, choices=STATUSES, help="every job in it"),
                arg("--project", help="with --status: only this project's jobs"),
            ),
            {"bulk_action": action},
        )
        for name, action, text in ACTIONS
    ),
    Command(
        "rollback",
        "re-run a job from one of its steps",
        "Reset a job's steps from STEP on; a FINISHED job runs again from there, "
        "an ERROR or STOPPED one needs a resume.",
        _rollback,
        (JOB_ID, arg("step", metavar="STEP", help="step id ({jobId}-NN) or sequence number")),
    ),
    Command(
        "drop",
        "delete a FINISHED or DISCARDED job",
        "Delete a FINISHED or DISCARDED job with its steps and outputs.",
        _drop,
        (JOB_ID,),
    ),
    Command(
        "output",
        "a step's output",
        "Print a step's latest output; --follow keeps printing while it runs.",
        _output,
        (
            arg("step_id", metavar="STEP_ID", help="{jobId}-NN (a job-id prefix will do)"),
            arg("--follow", action="store_true", help="keep printing while the step runs"),
            arg("--interval", type=float, default=0.5, help="seconds between polls"),
        ),
    ),
)
