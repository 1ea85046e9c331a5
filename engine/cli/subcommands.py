"""Client sub-commands as data: one ``Command`` row per sub-command, registered by one loop.

Every command family that talks to a running ``kjobs serve`` (jobs, cubes, nodes, streaming,
schedules) describes its sub-commands as ``Command`` rows; ``add_commands`` gives each the
connection options (``--url``, ``--user``, ``--password``) and its handler, so the argparse
calls are written once.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from engine.cli.http import Handler, add_connection_args, set_handler

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@dataclass(frozen=True, slots=True)
class Arg:
    """One ``add_argument`` call: the names (``"cube"``, ``"-q", "--quiet"``) and its options."""

    names: tuple[str, ...]
    options: Mapping[str, Any]


def arg(*names: str, **options: Any) -> Arg:
    """``Arg`` with ``add_argument``'s own signature."""
    return Arg(names, options)


@dataclass(frozen=True, slots=True)
class Command:
    """A client sub-command: its name, one-line help, description, arguments and handler.

    ``defaults``: extra namespace values (the action a shared handler carries out)."""

    name: str
    help: str
    description: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)


def add_commands(sub: SubParsers, commands: Iterable[Command]) -> None:
    """Add each of ``commands`` to ``sub`` with the connection options and its handler."""
    conn = argparse.ArgumentParser(add_help=False)
    add_connection_args(conn)
    for command in commands:
        parser = sub.add_parser(
            command.name, parents=[conn], help=command.help, description=command.description
        )
        for argument in command.args:
            parser.add_argument(*argument.names, **argument.options)
        parser.set_defaults(**command.defaults)
        set_handler(parser, command.handler)


def add_group(
    sub: SubParsers,
    name: str,
    dest: str,
    commands: Iterable[Command],
    *,
    help: str,
    description: str,
) -> None:
    """``kjobs NAME COMMAND ...``: a family of ``commands`` under one sub-command; ``dest`` names
    the chosen command in the parsed arguments."""
    parser = sub.add_parser(name, help=help, description=description)
    group = parser.add_subparsers(dest=dest, metavar="COMMAND", required=True)
    add_commands(group, commands)
