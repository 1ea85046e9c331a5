"""``kjobs simulate`` (a scenario on the virtual clock) and ``kjobs demo`` (what ``make run`` runs).

``simulate`` shows a progress bar of simulated time on stderr (on a terminal), prints the
summary table, writes ``events.jsonl``, ``summary.json`` and ``timeline.svg`` into ``--out``
and prints the sha256 of ``events.jsonl``: the same scenario, config and seed give the same
hash on any machine.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog

from engine.config import SHIPPED_CONFIG_DIR
from engine.core.errors import ConfigError
from engine.simulation import SimulationResult, load_scenario, prepare, simulate
from engine.simulation.events_log import elapsed
from engine.simulation.summary import format_table

DEFAULT_SCENARIO = SHIPPED_CONFIG_DIR / "scenarios" / "default.toml"
DEMO_HOURS = 4.0
BAR_WIDTH = 30


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate`` and ``demo`` to the CLI."""
    p = sub.add_parser(
        "simulate",
        help="run a scenario on a virtual clock: hours of workflow in seconds",
        description="Run a scenario on a virtual clock; write events.jsonl, summary.json and "
        "timeline.svg.",
    )
    p.add_argument(
        "scenario",
        nargs="?",
        type=Path,
        default=DEFAULT_SCENARIO,
        help="scenario file (default: the shipped config/scenarios/default.toml)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    p.add_argument(
        "--hours", type=float, default=None, help="simulated hours (default: the scenario's)"
    )
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    p.add_argument(
        "--store", type=Path, default=None, help="also keep the jobs in this new SQLite file"
    )
    p.add_argument("--config", type=Path, default=None, help="config directory (default: shipped)")
    p.set_defaults(handler=run_simulate)

    d = sub.add_parser(
        "demo",
        help="simulate a few hours of the sample project, then show how to serve it",
        description="Simulate a few hours of the sample project learn_kylin on a virtual clock "
        "(what `make run` runs), then show how to try the REST server.",
    )
    d.add_argument("--hours", type=float, default=DEMO_HOURS, help=f"default {DEMO_HOURS:g}")
    d.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    d.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    d.set_defaults(handler=run_demo)


def run_simulate(args: argparse.Namespace) -> int:
    """``kjobs simulate``."""
    _quiet(args)
    result = _run(args.scenario, args.config, args.seed, args.hours, args.out, args.store)
    print(format_table(result.summary, result.wall_s))
    print()
    _print_outputs(result)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """``kjobs demo``: the default scenario for a few hours, then how to try the server."""
    _quiet(args)
    hours = f"{args.hours:g} hour{'' if args.hours == 1 else 's'}"
    print(f"kjobs demo: {hours} of the sample project learn_kylin on a virtual clock")
    print()
    result = _run(DEFAULT_SCENARIO, None, args.seed, args.hours, args.out, None)
    print(format_table(result.summary, result.wall_s))
    print()
    _print_outputs(result)
    print(f"\nOpen {result.timeline_path} in a browser: one row per job, a bar per step.")
    print(NEXT_STEPS)
    return 0


def _quiet(args: argparse.Namespace) -> None:
    """Simulated failures are the point of a simulation (the log has them): no warnings."""
    if not getattr(args, "verbose", False):
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def _run(
    scenario_path: Path,
    config: Path | None,
    seed: int | None,
    hours: float | None,
    out: Path,
    store: Path | None,
) -> SimulationResult:
    if not scenario_path.is_file():
        raise ConfigError(str(scenario_path), ConfigError.WHOLE_FILE, _no_scenario())
    scenario = load_scenario(scenario_path)
    plan = prepare(scenario, config, seed=seed, hours=hours)
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        result = simulate(plan, out_dir=out, store_path=store, progress=bar)
    except BaseException:
        if bar is not None:
            bar.done()
        raise
    if bar is not None:
        bar.finish()
    return result


def _no_scenario() -> str:
    """What to say for a scenario file that is not there: which ones are shipped, where."""
    shipped = SHIPPED_CONFIG_DIR / "scenarios"
    names = ", ".join(sorted(p.name for p in shipped.glob("*.toml")))
    return f"scenario file not found (the shipped ones, in {shipped}: {names})"


def _print_outputs(result: SimulationResult) -> None:
    print(f"events    {result.events_path}  ({result.events} records)")
    print(f"sha256    {result.sha256}")
    print(f"summary   {result.summary_path}")
    print(f"timeline  {result.timeline_path}  ({result.rows} job rows)")


class ProgressBar:
    """``[#####.....]  42%  02:31:00 / 06:00:00 simulated``, redrawn when the percent moves."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = -1
        self.total_ms = 0

    def __call__(self, done_ms: int, total_ms: int) -> None:
        """Redraw if the whole percent changed."""
        self.total_ms = total_ms
        percent = min(100, done_ms * 100 // max(1, total_ms))
        if percent == self.shown:
            return
        self.shown = percent
        filled = percent * BAR_WIDTH // 100
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        when = f"{elapsed(done_ms)[:-4]} / {elapsed(total_ms)[:-4]} simulated"
        self.stream.write(f"\r[{bar}] {percent:3d}%  {when}")
        self.stream.flush()

    def finish(self) -> None:
        """The run got to its end: 100% (its last callback came before the end), end the line."""
        if self.shown >= 0:
            self(self.total_ms, self.total_ms)
        self.done()

    def done(self) -> None:
        """End the bar's line."""
        if self.shown >= 0:
            self.stream.write("\n")
            self.stream.flush()


NEXT_STEPS = """
Next: the REST server with the engine embedded (Kylin's API, user ADMIN / KYLIN)
  make serve        (or: . .venv/bin/activate; kjobs serve)   # http://127.0.0.1:7070
In another terminal:
  curl -s -u ADMIN:KYLIN -X PUT -H 'Content-Type: application/json' \\
       -d '{"startTime": 0, "endTime": 86400000, "buildType": "BUILD"}' \\
       http://127.0.0.1:7070/kylin/api/cubes/kylin_sales_cube/rebuild
  curl -s -u ADMIN:KYLIN http://127.0.0.1:7070/kylin/api/jobs/JOB_UUID     # uuid from above
  curl -s -u ADMIN:KYLIN 'http://127.0.0.1:7070/kylin/api/jobs?projectName=learn_kylin'
  kjobs jobs                                    # the same, as a table
Simulate more: kjobs simulate --hours 24 --seed 7 ; config/scenarios/ has the scenarios."""
