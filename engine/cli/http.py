"""The HTTP side of the client commands: connection options, a small API client, rendering.

Shared by ``engine.cli.client`` and any other command family that talks to a running
``kjobs serve`` (``add_connection_args`` + ``client_from``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import httpx

from engine.core.states import ENDED_STATUSES, JobStatus
from engine.core.timefmt import format_utc

DEFAULT_URL: Final = "http://127.0.0.1:7070"
API_PREFIX: Final = "/kylin/api"
ENDED: Final = frozenset(s.value for s in ENDED_STATUSES)
FINISHED: Final = JobStatus.FINISHED.value
TIMEOUT_S: Final = 30.0


class ApiError(Exception):
    """A request that failed; the message is what the user sees (the server's ``msg``)."""


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--user``, ``--password`` (defaults from ``KJOBS_URL/USER/PASSWORD``)."""
    parser.add_argument(
        "--url", default=None, help=f"server URL (default $KJOBS_URL or {DEFAULT_URL})"
    )
    parser.add_argument("--user", default=None, help="user (default $KJOBS_USER or ADMIN)")
    parser.add_argument(
        "--password", default=None, help="password (default $KJOBS_PASSWORD or KYLIN)"
    )


class ApiClient:
    """Synchronous JSON calls to ``{url}/kylin/api``; every failure is an ``ApiError``."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            auth=(user, password),
            timeout=TIMEOUT_S,
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path``: the decoded JSON body."""
        return self.request("GET", path, params=params)

    def put(self, path: str, json: Any = None) -> Any:
        """PUT ``path`` (no body unless ``json`` is given)."""
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        """DELETE ``path``."""
        return self.request("DELETE", path)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call; the server's error ``msg`` (or a transport problem) as ``ApiError``."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach {self.url}: {exc}") from exc
        if response.is_success:
            return response.json()
        raise ApiError(_message(response))


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("msg"), str) and body["msg"]:
        return str(body["msg"])
    return f"HTTP {response.status_code} {response.reason_phrase}"


@contextmanager
def client_from(args: argparse.Namespace) -> Iterator[ApiClient]:
    """The client the command line (or the environment) describes."""
    client = ApiClient(
        args.url or os.environ.get("KJOBS_URL") or DEFAULT_URL,
        args.user or os.environ.get("KJOBS_USER") or "ADMIN",
        args.password or os.environ.get("KJOBS_PASSWORD") or "KYLIN",
    )
    try:
        yield client
    finally:
        client.close()


# -- rendering --------------------------------------------------------------------------------


Handler = Callable[["ApiClient", argparse.Namespace], int]


def set_handler(parser: argparse.ArgumentParser, handler: Handler) -> None:
    """Run ``handler`` with a client for the sub-command: API errors print one line, exit 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            with client_from(args) as client:
                return handler(client, args)
        except ApiError as exc:
            print(f"kjobs: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:  # the reader left early (`kjobs jobs | head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    parser.set_defaults(handler=run)


def when(epoch_ms: int) -> str:
    """``yyyy-MM-dd HH:mm:ss`` UTC (the zone of job names), "-" for 0."""
    return format_utc(epoch_ms) if epoch_ms else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    )


def jobs_table(jobs: Sequence[dict[str, Any]]) -> str:
    """One line per job."""
    rows = [
        [
            job["uuid"],
            job["related_cube"],
            job["job_status"],
            f"{job['progress']:.0f}%",
            f"{job['duration']} s",
            job["submitter"],
            when(job["last_modified"]),
        ]
        for job in jobs
    ]
    headers = ["JOB ID", "CUBE", "STATUS", "PROGRESS", "DURATION", "SUBMITTER", "LAST MODIFIED"]
    return table(headers, rows)


def job_status_line(job: dict[str, Any]) -> str:
    """``{uuid}  {status}  {progress}%  {duration} s  {name}``."""
    return (
        f"{job['uuid']}  {job['job_status']}  {job['progress']:.0f}%  "
        f"{job['duration']} s  {job['name']}"
    )


def steps_table(steps: Sequence[dict[str, Any]]) -> str:
    """One line per step: sequence, status, name, start, end, MR wait."""
    rows = [
        [
            f"{step['sequence_id']:02d}",
            step["step_status"],
            step["name"],
            when(step["exec_start_time"]),
            when(step["exec_end_time"]),
            f"{step['exec_wait_time']} s" if step["run_async"] else "",
        ]
        for step in steps
    ]
    return table(["STEP", "STATUS", "NAME", "STARTED", "ENDED", "MR WAIT"], rows)


def progress_bar(job: dict[str, Any], width: int = 30) -> str:
    """``[#########.....]  45%  06 Build Base Cuboid  RUNNING``."""
    done = round(width * job["progress"] / 100)
    current = next((s for s in job["steps"] if s["step_status"] != FINISHED), None)
    step = f"{current['sequence_id']:02d} {current['name']}" if current else "all steps done"
    bar = "#" * done + "." * (width - done)
    return f"[{bar}] {job['progress']:5.1f}%  {step}  {job['job_status']}"
