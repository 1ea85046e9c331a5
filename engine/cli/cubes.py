"""Cube and segment commands against a running ``kjobs serve`` (SPEC §6.1).

``kjobs cubes`` (every cube with its segment count and range), ``kjobs segments CUBE``,
``kjobs delete-segment CUBE NAME`` (the first or last segment) and ``kjobs purge CUBE`` (every
segment). The server refuses (409) while a job uses the segments; the message says why.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Final

from engine.cli.http import ApiClient, ApiError, table
from engine.cli.subcommands import Command, SubParsers, add_commands, arg


def register(sub: SubParsers) -> None:
    """Add the cube commands to the CLI."""
    add_commands(sub, COMMANDS)


def _range(segments: Sequence[dict[str, Any]]) -> str:
    """``first start _ last end`` in Kylin's segment-name format, "-" without segments."""
    if not segments:
        return "-"
    return f"{segments[0]['name'].split('_')[0]}_{segments[-1]['name'].split('_')[-1]}"


def _cubes(client: ApiClient, args: argparse.Namespace) -> int:
    params = {"projectName": args.project} if args.project else None
    cubes = client.get("/cubes", params=params)
    rows = [
        [c["name"], c["project"], c["status"], str(len(c["segments"])), _range(c["segments"])]
        for c in cubes
    ]
    print(table(["CUBE", "PROJECT", "STATUS", "SEGMENTS", "RANGE"], rows) if rows else "no cubes")
    return 0


def _segments_table(cube: dict[str, Any]) -> str:
    segments = cube["segments"]
    if not segments:
        return f"cube {cube['name']} has no segments"
    rows = [
        [s["name"], s["status"], str(s["date_range_start"]), str(s["date_range_end"]), s["uuid"]]
        for s in segments
    ]
    return table(["SEGMENT", "STATUS", "START", "END", "UUID"], rows)  # not-a-kylin-name


def _find(client: ApiClient, name: str) -> dict[str, Any]:
    found = client.get("/cubes", params={"cubeName": name})
    if not found:
        raise ApiError(f"Cannot find cube '{name}' (`kjobs cubes` lists them)")
    return dict(found[0])


def _segments(client: ApiClient, args: argparse.Namespace) -> int:
    print(_segments_table(_find(client, args.cube)))
    return 0


def _delete_segment(client: ApiClient, args: argparse.Namespace) -> int:
    cube = client.delete(f"/cubes/{args.cube}/segs/{args.segment}")
    print(f"deleted segment {args.segment} of {cube['name']}")
    print(_segments_table(cube))
    return 0


def _purge(client: ApiClient, args: argparse.Namespace) -> int:
    before = len(_find(client, args.cube)["segments"])
    cube = client.put(f"/cubes/{args.cube}/purge")
    print(f"purged {cube['name']}: {before} segment(s) deleted")
    return 0


# -- the command table ------------------------------------------------------------------------

CUBE: Final = arg("cube", metavar="CUBE", help="cube name")
COMMANDS: Final = (
    Command(
        "cubes",
        "list cubes with their segment counts and ranges",
        "List the cubes of the catalog with how many segments each has and the range they cover.",
        _cubes,
        (arg("--project", help="only the cubes of this project"),),
    ),
    Command(
        "segments",
        "list a cube's segments",
        "List a cube's segments (NEW while a build runs, READY once built).",
        _segments,
        (CUBE,),
    ),
    Command(
        "delete-segment",
        "delete a cube's first or last segment",
        "Delete the first or the last segment of a cube (Kylin allows no other); "
        "refused while a job builds, merges or refreshes it.",
        _delete_segment,
        (
            CUBE,
            arg("segment", metavar="NAME", help="segment name, e.g. 20240101000000_20240102000000"),
        ),
    ),
    Command(
        "purge",
        "delete every segment of a cube",
        "Delete every segment of a cube, to build it again from scratch; refused "
        "while one of its jobs is unfinished (discard them first).",
        _purge,
        (CUBE,),
    ),
)
