"""Deterministic simulations of the Kylin workflow on a virtual clock (``kjobs simulate``).

``load_scenario`` reads a scenario file, ``prepare`` checks it against a config and makes the
run's ``Plan``, ``simulate`` runs a plan and writes ``events.jsonl``, ``summary.json`` and
``timeline.svg``.
"""

from engine.simulation.plan import Plan, prepare
from engine.simulation.runner import Runner, SimulationResult, id_generator, simulate
from engine.simulation.scenario import Scenario, load_scenario, parse_duration

__all__ = [
    "Plan",
    "Runner",
    "Scenario",
    "SimulationResult",
    "id_generator",
    "load_scenario",
    "parse_duration",
    "prepare",
    "simulate",
]
