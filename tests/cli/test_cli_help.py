"""Every command has a description and every argument a help text; mistakes show the right
usage; ``--version``; one case convention for enumerated values."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

from engine.cli import build_parser


def commands(
    parser: argparse.ArgumentParser, path: str = "kjobs"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub-)command parser with its name."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{path} {name}")


def test_every_command_has_a_description_and_every_argument_help() -> None:
    missing = []
    for path, parser in commands(build_parser()):
        if not parser.description:
            missing.append(f"{path}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_wrong_flag_shows_the_sub_commands_usage() -> None:
    done = run("jobs", "--bogus")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: kjobs jobs ")
    assert "unrecognized arguments: --bogus" in done.stderr
    nested = run("streaming", "list", "--bogus")
    assert nested.stderr.startswith("usage: kjobs streaming list ")


def test_version() -> None:
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith("kjobs ")


def test_enumerated_values_take_any_case() -> None:
    parser = build_parser()
    args = parser.parse_args(["submit", "kylin_sales_cube", "--type", "merge"])
    assert args.type == "MERGE"
    args = parser.parse_args(["jobs", "--status", "finished"])
    assert args.status == ["FINISHED"]
    assert parser.parse_args(["run", "--cube", "x", "--type", "Refresh"]).type == "REFRESH"
