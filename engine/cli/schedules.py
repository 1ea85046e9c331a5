"""``kjobs schedules``: scheduled builds on a running ``kjobs serve`` (SPEC §11).

``kjobs schedules list``, ``create NAME CUBE (--cron EXPR | --interval SECONDS) [--overlap
skip|queue] [--catch-up none|last|all] [--build-type BUILD] [--paused]``, ``pause NAME``,
``resume NAME``, ``delete NAME``. Connection options as every client command; an error prints
one line (the server's message) and exits 1.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Final

from engine.cli.http import ApiClient, table, when
from engine.cli.subcommands import Command, SubParsers, add_group, arg
from engine.core.states import BuildType


def register(sub: SubParsers) -> None:
    """Add ``kjobs schedules ...`` to the CLI."""
    add_group(
        sub,
        "schedules",
        "schedules_command",
        COMMANDS,
        help="scheduled builds on a running server",
        description="List, create, pause, resume and delete the scheduled builds of a server.",
    )


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


# -- the command table ------------------------------------------------------------------------

BUILD_TYPES: Final = (BuildType.BUILD, BuildType.REFRESH, BuildType.MERGE)
COMMANDS: Final = (
    Command("list", "list schedules", "List the schedules.", _list),
    Command(
        "create",
        "create a schedule",
        "Create a schedule that builds a cube by --cron (UTC) or every --interval s.",
        _create,
        (
            arg("name", help="the schedule's name (letters, digits, _ . -)"),
            arg("cube", help="the cube it builds"),
            arg("--cron", help="cron expression in UTC, e.g. '0 2 * * *'"),
            arg("--interval", type=int, dest="interval_s", help="seconds between runs"),
            arg(
                "--build-type",
                default=BUILD_TYPES[0].value,
                choices=[t.value for t in BUILD_TYPES],
                help="the job each run submits (default BUILD)",
            ),
            arg(
                "--overlap",
                default="skip",
                choices=("skip", "queue"),
                help="when the previous run's job is still going (default skip)",
            ),
            arg(
                "--catch-up",
                default="none",
                choices=("none", "last", "all"),
                help="runs missed while the server was down (default none)",
            ),
            arg("--paused", action="store_true", help="create it paused"),
        ),
    ),
    *(
        Command(
            name,
            text,
            f"{text.capitalize()}.",
            _act,
            (arg("name", help="the schedule's name"),),
            {"schedule_action": name},
        )
        for name, text in (
            ("pause", "pause a schedule"),
            ("resume", "resume a schedule"),
            ("delete", "delete a schedule (its jobs stay)"),
        )
    ),
)
