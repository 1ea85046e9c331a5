"""The ``kjobs`` command: one sub-command per module in ``engine/cli/``.

The CLI (not the library) configures logging: a console renderer on a terminal, JSON lines
otherwise, at WARNING unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib import metadata

import structlog

from engine.core.errors import KjobsError

#: modules that add sub-commands; each has ``register(subparsers)``
COMMAND_MODULES = (
    "engine.cli.run",
    "engine.cli.serve",
    "engine.cli.client",
    "engine.cli.cubes",
    "engine.cli.nodes",
    "engine.cli.streaming",
    "engine.cli.schedules",
    "engine.cli.simulate",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands registered by their modules)."""
    parser = argparse.ArgumentParser(
        prog="kjobs", description="Run and simulate the Apache Kylin job workflow."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    parser.add_argument("--version", action="version", version=f"kjobs {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command family that is not part of this build
        module.register(sub)
    return parser


def _version() -> str:
    try:
        return metadata.version("kjobs")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; a flag the sub-command does not know shows THAT sub-command's usage."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = _chosen(parser, list(sys.argv[1:] if argv is None else argv))
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _chosen(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The deepest sub-command parser that ``argv`` names."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for at, token in enumerate(argv):
                if token in action.choices:
                    return _chosen(action.choices[token], argv[at + 1 :])
    return parser


def configure_logging(verbose: bool) -> None:
    """Console rendering on a terminal, JSON otherwise."""
    level = logging.INFO if verbose else logging.WARNING
    # the console renderer prints a traceback itself; JSON needs it as a field
    tail: list[structlog.typing.Processor] = (
        [structlog.dev.ConsoleRenderer()]
        if sys.stderr.isatty()
        else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kjobs`` console script."""
    parser = build_parser()
    args = parse(parser, argv)
    configure_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except KjobsError as exc:
        print(f"kjobs: {exc}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:
        # a task group (anyio.run) wraps the error; a user mistake is still one line
        mistake = user_error(group)
        if mistake is None:
            raise
        print(f"kjobs: {mistake}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def user_error(group: BaseExceptionGroup[BaseException]) -> KjobsError | None:
    """The first ``KjobsError`` inside ``group`` (nested groups included), if any."""
    for exc in group.exceptions:
        if isinstance(exc, KjobsError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = user_error(exc)
            if found is not None:
                return found
    return None
