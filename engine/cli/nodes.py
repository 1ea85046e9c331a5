"""``kjobs nodes``: the live nodes of the cluster a server belongs to (SPEC §9)."""

from __future__ import annotations

import argparse
from typing import Final

from engine.cli.http import ApiClient, table, when
from engine.cli.subcommands import Command, SubParsers, add_commands


def register(sub: SubParsers) -> None:
    """Add ``nodes`` to the CLI."""
    add_commands(sub, [COMMAND])


def _nodes(client: ApiClient, args: argparse.Namespace) -> int:
    nodes = client.get("/cluster/nodes")
    rows = [
        [
            n["node_id"],
            n["host"],
            str(n["pid"]),
            when(n["started"]),
            when(n["last_heartbeat"]),
            str(n["running_jobs"]),
        ]
        for n in nodes
    ]
    print(table(["NODE", "HOST", "PID", "STARTED", "LAST HEARTBEAT", "RUNNING JOBS"], rows))
    return 0


COMMAND: Final = Command(
    "nodes",
    "the live nodes on the server's store",
    "List the live nodes (kjobs serve processes) that share the server's store, "
    "with their host, pid, start, last heartbeat and running jobs.",
    _nodes,
)
