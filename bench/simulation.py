"""The 24-hour scenario on the virtual clock: ``config/scenarios/perf_24h.toml``.

1,000 builds of the sample cube (one every 86.4 s) and 100 streaming models at 30 s
micro-batches over 24 simulated hours, run as ``kjobs simulate`` does (in-memory stores,
``events.jsonl``, ``summary.json`` and ``timeline.svg`` written to a temporary folder), in a
child process of its own. The figure is the run's own wall time (``SimulationResult.wall_s``:
plan to last output written, interpreter start-up and imports excluded).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from bench.common import REPO_ROOT
from bench.profile import sampled
from bench.server import clean_env
from engine.clock import monotonic

SCENARIO: Final = REPO_ROOT / "config" / "scenarios" / "perf_24h.toml"
RESULT_PREFIX: Final = "kjobs-bench-result "
TIMEOUT_S: Final = 540.0

SIMULATE: Final = f"""\
import json, logging, sys
from pathlib import Path
import structlog
from engine.simulation import load_scenario, prepare, simulate

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
)
scenario = load_scenario(Path(sys.argv[1]))
plan = prepare(scenario, None, seed=None, hours=float(sys.argv[3]) if len(sys.argv) > 3 else None)
result = simulate(plan, out_dir=Path(sys.argv[2]))
summary = result.summary
out = {{
    "wall_s": result.wall_s,
    "events": result.events,
    "jobs": summary.get("jobs", {{}}),
    "streaming": {{k: v for k, v in summary.get("streaming", {{}}).items()
                  if not isinstance(v, (dict, list))}},
    "sha256": result.sha256,
}}
print({RESULT_PREFIX!r} + json.dumps(out), flush=True)
"""


def scenario_wall(
    workdir: Path, scenario: Path = SCENARIO, hours: float | None = None
) -> dict[str, Any]:
    """Run ``scenario`` (optionally cut to ``hours``) in a child process; its wall time."""
    command = [sys.executable, "-c", SIMULATE, str(scenario), str(workdir / "sim-out")]
    if hours is not None:
        command.append(str(hours))
    started = monotonic()
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    with sampled(child.pid) as profile:
        try:
            stdout, stderr = child.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            stdout, stderr = child.communicate()
    process_s = monotonic() - started
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            result["process_s"] = process_s
            result["scenario"] = scenario.name
            result["profile"] = profile
            return result
    tail = "\n".join(stderr.strip().splitlines()[-10:])
    raise RuntimeError(f"the simulation failed (exit {child.returncode}):\n{tail}")
