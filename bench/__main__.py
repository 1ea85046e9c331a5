"""``python -m bench``: every figure of issue 6 as ONE JSON document on stdout.

::

    python -m bench                   # the full run (make bench), a few minutes
    python -m bench --quick           # tiny sizes: checks the harness, figures mean nothing
    python -m bench --only durable,latency
    python -m bench --peers           # the peer-engine harness beside kjobs (make bench-peers)

Progress and, when stderr is a terminal, a readable table go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import structlog

from bench import peers, profile, report
from bench.common import machine
from bench.run import FULL, QUICK, STAGES, run_all
from engine.clock import monotonic


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--peers", action="store_true", help="run ../shared/bench-peers beside kjobs")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a check, not figures)")
    p.add_argument("--no-profile", action="store_true", help="no py-spy profile per figure")
    p.add_argument(
        "--only", default=None, help=f"comma-separated stages out of: {', '.join(STAGES)}"
    )
    p.add_argument("--n", type=int, default=200, help="--peers: jobs (default 200)")
    p.add_argument("--s", type=int, default=10, help="--peers: steps per job (default 10)")
    p.add_argument("--c", type=int, default=20, help="--peers: jobs at once (default 20)")
    args = p.parse_args(argv)
    if args.only is not None:
        names = frozenset(n.strip() for n in args.only.split(",") if n.strip())
        unknown = sorted(names - set(STAGES))
        if unknown:
            p.error(f"unknown stages {unknown}; choose from {', '.join(STAGES)}")
        args.only = names
    return args


def quiet_logging() -> None:
    """Warnings and errors only, on stderr: stdout carries the JSON document alone."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def progress(text: str) -> None:
    """A progress line on stderr (terminals only: logs stay clean)."""
    if sys.stderr.isatty():
        print(f"bench: {text} ...", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench; 0 unless it could not run at all."""
    args = parse_args(argv)
    quiet_logging()
    started = monotonic()
    if args.peers:
        workload = {"n": args.n, "s": args.s, "c": args.c, "sleep_ms": 10}
        doc = peers.run(workload, progress)
        doc["machine"] = machine()
        doc["bench_wall_s"] = round(monotonic() - started, 1)
        report.write_json(doc, sys.stdout)
        print(peers.table(doc), file=sys.stderr)
        return 0
    profile.ENABLED["on"] = not args.no_profile
    results = run_all(QUICK if args.quick else FULL, args.only, progress)
    doc = report.document(results.figures, results.details, machine(), monotonic() - started)
    if args.quick:
        doc["note"] = "--quick: tiny sizes, the figures are not comparable with the targets"
    report.write_json(doc, sys.stdout)
    if sys.stderr.isatty():
        print(report.table(doc), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
