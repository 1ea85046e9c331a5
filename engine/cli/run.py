"""``kjobs run --cube NAME [--type BUILD|MERGE|REFRESH]``: one job, in process, shown live."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from engine.config import load_config
from engine.core.errors import CatalogNotFound, InvalidRequest
from engine.core.segments import BUILD_TYPES
from engine.core.states import ENDED_STATES, BuildType, State
from engine.events import JobChanged, OutputLine, StepChanged
from engine.facade import Engine

ENDED = ENDED_STATES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` to the CLI."""
    p = sub.add_parser(
        "run",
        help="run one job in process and show its steps live",
        description="Submit one job of a cube to an engine in this process (in-memory store by "
        "default) and print each step as it changes; exit 0 when it FINISHED.",
    )
    p.add_argument("--cube", required=True, help="cube of the shipped (or --config) catalog")
    p.add_argument(
        "--type",
        default=BuildType.BUILD.value,
        type=str.upper,
        choices=BUILD_TYPES,
        help=f"{', '.join(BUILD_TYPES)} (any case; default {BUILD_TYPES[0]})",
    )
    p.add_argument("--start", type=int, default=0, help="segment start, epoch ms")
    p.add_argument("--end", type=int, default=0, help="segment end, epoch ms (0,0 = full)")
    p.add_argument("--config", type=Path, default=None, help="config directory")
    p.add_argument("--store", default=":memory:", help="SQLite file (default: in memory)")
    p.add_argument("--time-scale", type=float, default=None, help="simulated work N x faster")
    p.add_argument("--output", action="store_true", help="also print every output line")
    p.set_defaults(handler=lambda args: anyio.run(_run, args))


async def _run(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {"kjobs.store": args.store}
    if args.time_scale is not None:
        overrides["kjobs.time-scale"] = args.time_scale
    config = load_config(args.config, overrides=overrides)
    try:
        config.catalog.cube(args.cube)
    except CatalogNotFound as exc:  # before the engine starts: one line, the cubes there are
        cubes = ", ".join(cube.name for cube in config.catalog.cubes)
        raise InvalidRequest(f"{exc} (cubes: {cubes})") from exc
    async with Engine(config) as engine, engine.subscribe() as events:
        job = await engine.submit_build(args.cube, args.type, args.start, args.end)
        names = {s.id: s.name for s in job.steps}
        print(f"job {job.id}  {job.name}")
        async for event in events:
            if event.job_id != job.id:
                continue
            match event:
                case StepChanged(step_id=step_id, state=state):
                    print(f"  {step_id[-2:]}  {state:<9}  {names[step_id]}")
                case OutputLine(text=text) if args.output:
                    sys.stdout.write(f"      | {text}")
                case JobChanged(state=state) if state in ENDED:
                    final = await engine.get(job.id)
                    print(f"job {final.state.rest_name} in {final.duration_s(engine.now_ms())} s")
                    return 0 if final.state is State.SUCCEED else 1
    return 1
