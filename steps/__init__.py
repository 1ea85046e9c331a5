"""Executor families behind one ``StepExecutor`` protocol, and the registry that picks them.

``executor_for(spec)`` chooses by ``spec.family`` and ``spec.mode`` from a process-wide default
``Executors``; an engine that wants its own simulated YARN cluster (its own application ids)
makes its own ``Executors`` and asks it instead.
"""

from __future__ import annotations

from engine.core.errors import StepFailure
from engine.core.jobs import Family, Mode, StepSpec
from steps.base import InfoSink, OutputSink, Profile, StepContext, StepExecutor, StepResult
from steps.bulkload import BulkLoadExecutor, SimulatedBulkLoadExecutor
from steps.mapreduce import MapReduceExecutor, SimulatedYarn
from steps.metadata import MetadataExecutor
from steps.quoting import substitute
from steps.shell import ShellExecutor, SimulatedShellExecutor

__all__ = [
    "BulkLoadExecutor",
    "Executors",
    "InfoSink",
    "MapReduceExecutor",
    "MetadataExecutor",
    "OutputSink",
    "Profile",
    "ShellExecutor",
    "SimulatedBulkLoadExecutor",
    "SimulatedShellExecutor",
    "SimulatedYarn",
    "StepContext",
    "StepExecutor",
    "StepResult",
    "UnsupportedExecutor",
    "executor_for",
    "substitute",
    "supports",
]

#: (family, mode) pairs that have no executor
_UNSUPPORTED = frozenset({(Family.MAPREDUCE, Mode.REAL)})


def supports(family: Family, mode: Mode) -> bool:
    """Whether a step of ``family`` can run in ``mode`` (for validating templates early)."""
    return (family, mode) not in _UNSUPPORTED


class UnsupportedExecutor:
    """Stands in for a (family, mode) with no executor: every run fails, saying why."""

    def __init__(self, family: Family, mode: Mode) -> None:
        self.family = family
        self.mode = mode

    async def run(self, ctx: StepContext) -> StepResult:
        """Fail at once with a message naming the step, family and mode."""
        raise StepFailure(
            f"Step '{ctx.step.spec.name}': the {self.family} family cannot run in {self.mode} "
            f"mode (there is no cluster to submit to); make the step simulated",
            kind="UnsupportedMode",
        )


class Executors:
    """One executor per (family, mode); stateless ones are shared, MR shares one YARN."""

    def __init__(self, yarn: SimulatedYarn | None = None) -> None:
        self.yarn = yarn if yarn is not None else SimulatedYarn()
        self._table: dict[tuple[Family, Mode], StepExecutor] = {
            (Family.SHELL, Mode.REAL): ShellExecutor(),
            (Family.SHELL, Mode.SIMULATED): SimulatedShellExecutor(),
            (Family.MAPREDUCE, Mode.SIMULATED): MapReduceExecutor(self.yarn),
            (Family.MAPREDUCE, Mode.REAL): UnsupportedExecutor(Family.MAPREDUCE, Mode.REAL),
            (Family.BULKLOAD, Mode.REAL): BulkLoadExecutor(),
            (Family.BULKLOAD, Mode.SIMULATED): SimulatedBulkLoadExecutor(),
            (Family.METADATA, Mode.REAL): MetadataExecutor(simulated=False),
            (Family.METADATA, Mode.SIMULATED): MetadataExecutor(simulated=True),
        }

    def executor_for(self, spec: StepSpec) -> StepExecutor:
        """The executor for ``spec``'s family and mode."""
        return self._table[(spec.family, spec.mode)]


_DEFAULT = Executors()


def executor_for(spec: StepSpec) -> StepExecutor:
    """The process-wide default executor for ``spec``'s family and mode."""
    return _DEFAULT.executor_for(spec)
