"""``kjobs schedules``: scheduled builds on a running ``kjobs serve`` (SPEC §11).

``kjobs schedules list``, ``create NAME CUBE (--cron EXPR | --interval SECONDS) [--overlap
skip|queue] [--catch-up none|last|all] [--build-type BUILD] [--paused]``, ``pause NAME``,
``resume NAME``, ``delete NAME``. Connection options as every client command; an error prints
one line (the server's message) and exits 1.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from engine.cli.http import ApiClient, add_connection_args, set_handler, table, when
from engine.core.states import BuildType


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``kjobs schedules ...`` to the CLI."""
    conn = argparse.ArgumentParser(add_help=False)
    add_connection_args(conn)
    parser = sub.add_parser(
        "schedules",
        help="scheduled builds on a running server",
        description="List, create, pause, resume and delete the scheduled builds of a server.",
    )
    commands = parser.add_subparsers(dest="schedules_command", metavar="COMMAND", required=True)

    p = commands.add_parser(
        "list", parents=[conn], help="list schedules", description="List the schedules."
    )
    set_handler(p, _list)

    p = commands.add_parser(
        "create",
        parents=[conn],
        help="create a schedule",
        description="Create a schedule that builds a cube by --cron (UTC) or every --interval s.",
    )
    p.add_argument("name", help="the schedule's name (letters, digits, _ . -)")
    p.add_argument("cube", help="the cube it builds")
    p.add_argument("--cron", help="cron expression in UTC, e.g. '0 2 * * *'")
    p.add_argument("--interval", type=int, dest="interval_s", help="seconds between runs")
    types = (BuildType.BUILD, BuildType.REFRESH, BuildType.MERGE)
    p.add_argument(
        "--build-type",
        default=types[0].value,
        choices=[t.value for t in types],
        help="the job each run submits (default BUILD)",
    )
    p.add_argument(
        "--overlap",
        default="skip",
        choices=("skip", "queue"),
        help="when the previous run's job is still going (default skip)",
    )
    p.add_argument(
        "--catch-up",
        default="none",
        choices=("none", "last", "all"),
        help="runs missed while the server was down (default none)",
    )
    p.add_argument("--paused", action="store_true", help="create it paused")
    set_handler(p, _create)

    for name, text in (("pause", "pause a schedule"), ("resume", "resume a schedule"),
                       ("delete", "delete a schedule (its jobs stay)")):  # fmt: skip
        p = commands.add_parser(
            name, parents=[conn], help=text, description=f"{text.capitalize()}."
        )
        p.add_argument("name", help="the schedule's name")
        p.set_defaults(schedule_action=name)
        set_handler(p, _act)


def schedules_table(schedules: Sequence[dict[str, Any]]) -> str:
    """One line per schedule."""
    rows = [
        [
            s["name"],
            s["cube"],
            s["cron"] or f"every {s['interval_s']} s",
            s["overlap"],
            s["catch_up"],
            "paused" if s["paused"] else when(s["next_fire_time"] or 0),
            s["last_job_id"] or "-",
        ]
        for s in schedules
    ]
    headers = ["NAME", "CUBE", "WHEN", "OVERLAP", "CATCH-UP", "NEXT (UTC)", "LAST JOB"]
    return table(headers, rows)


def _list(client: ApiClient, args: argparse.Namespace) -> int:
    found = client.get("/schedules")
    print(schedules_table(found) if found else "no schedules")
    return 0


def _create(client: ApiClient, args: argparse.Namespace) -> int:
    body = {
        "name": args.name,
        "cube": args.cube,
        "cron": args.cron,
        "interval_s": args.interval_s,
        "build_type": args.build_type,
        "overlap": args.overlap,
        "catch_up": args.catch_up,
        "paused": args.paused,
    }
    print(schedules_table([client.request("POST", "/schedules", json=body)]))
    return 0


def _act(client: ApiClient, args: argparse.Namespace) -> int:
    path = f"/schedules/{args.name}"
    if args.schedule_action == "delete":
        done = client.delete(path)
    else:
        done = client.put(f"{path}/{args.schedule_action}")
    print(schedules_table([done]))
    return 0
