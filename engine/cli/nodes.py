"""``kjobs nodes``: the live nodes of the cluster a server belongs to (SPEC §9)."""

from __future__ import annotations

import argparse

from engine.cli.http import ApiClient, add_connection_args, set_handler, table, when


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``nodes`` to the CLI."""
    conn = argparse.ArgumentParser(add_help=False)
    add_connection_args(conn)
    p = sub.add_parser(
        "nodes",
        parents=[conn],
        help="the live nodes on the server's store",
        description="List the live nodes (kjobs serve processes) that share the server's store, "
        "with their host, pid, start, last heartbeat and running jobs.",
    )
    set_handler(p, _nodes)


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
