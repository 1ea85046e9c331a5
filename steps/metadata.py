"""The metadata family: Kylin's in-process steps (Build Dimension Dictionary, Update Cube Info …).

There is no external system behind them, so both modes do the same: a few output lines and the
profile's failure rules; simulated mode also spends the profile's (short) duration, real mode
none. The step's metadata ``action`` (e.g. making the new segment READY) is the engine's to apply
once the step succeeds.
"""

from __future__ import annotations

from steps.base import StepContext, StepResult
from steps.simulated import OK_RESULT, chatter, duration, should_fail, simulated_failure, spend


class MetadataExecutor:
    """In-process metadata steps; ``simulated=False`` takes no time."""

    def __init__(self, simulated: bool = True) -> None:
        self.simulated = simulated

    async def run(self, ctx: StepContext) -> StepResult:
        """Write the step's lines, spend its time, and succeed with exit code 0 (or fail)."""
        seconds = duration(ctx.profile, ctx.rng) if self.simulated else 0.0
        failing = should_fail(ctx.profile, ctx.step, ctx.rng)
        lines: list[str] = []
        if ctx.profile.output_lines > 0:
            spec = ctx.step.spec
            lines = [f"Start to execute {spec.name}\n", *chatter(ctx, spec.name)]
        await spend(ctx, seconds, lines)
        if failing:
            if lines:
                ctx.output.write(f"{ctx.step.spec.name} failed\n")
            raise simulated_failure(ctx, f"{ctx.step.spec.name} failed")
        if lines:
            ctx.output.write(f"{ctx.step.spec.name} finished\n")
        return OK_RESULT
