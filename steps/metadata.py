"""The metadata family: Kylin's in-process steps (Build Dimension Dictionary, Update Cube Info …).

There is no external system behind them, so both modes do the same: a few output lines and the
profile's failure rules; simulated mode also spends the profile's (short) duration, real mode
none. The step's metadata ``action`` (e.g. making the new segment READY) is the engine's to apply
once the step succeeds.
"""

from __future__ import annotations

from steps.base import StepContext, StepResult
from steps.simulated import OK_RESULT, duration, simulate_step


class MetadataExecutor:
    """In-process metadata steps; ``simulated=False`` takes no time."""

    def __init__(self, simulated: bool = True) -> None:
        self.simulated = simulated

    async def run(self, ctx: StepContext) -> StepResult:
        """Write the step's lines, spend its time, and succeed with exit code 0 (or fail)."""
        seconds = duration(ctx.profile, ctx.rng) if self.simulated else 0.0
        name = ctx.step.spec.name
        if await simulate_step(ctx, seconds, f"Start to execute {name}\n", f"{name} failed"):
            ctx.output.write(f"{name} finished\n")
        return OK_RESULT
