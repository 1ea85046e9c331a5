"""Profile-driven behaviour shared by the simulated modes: durations, failures, chatter.

Every simulated family draws from ``ctx.rng`` in a fixed order (duration first, then the
failure decision, then family specifics) so a seeded run replays exactly. Work is spent only
through ``ctx.simulate`` so that a virtual clock can drive it. The zero-duration, zero-chatter
path does no string building and yields exactly once: benchmarks run it at >10,000 steps/s.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from types import MappingProxyType
from typing import Final

from engine.core.errors import StepFailure
from engine.core.jobs import Step
from steps.base import Profile, StepContext, StepResult

#: the info every successful shell and metadata step reports
OK_INFO: Final = MappingProxyType({"exit_code": "0"})
OK_RESULT: Final = StepResult(info=OK_INFO)
#: the profile's failure kind when a profile does not name its own
GENERIC_FAILURE_KIND: Final = Profile.failure_kind


def duration(profile: Profile, rng: random.Random) -> float:
    """Seconds of simulated work: uniform in ``[min_seconds, max_seconds]``."""
    low, high = profile.min_seconds, profile.max_seconds
    if high <= low:
        return max(0.0, low)
    return rng.uniform(max(0.0, low), high)


def queue_wait(profile: Profile, rng: random.Random) -> float:
    """Seconds an MR application waits ACCEPTED in the queue."""
    low, high = profile.queue_min_seconds, profile.queue_max_seconds
    if high <= low:
        return max(0.0, low)
    return rng.uniform(max(0.0, low), high)


def should_fail(profile: Profile, step: Step, rng: random.Random) -> bool:
    """Whether this attempt fails.

    ``always_fail``; else the first ``fail_first_attempts`` runs of the step in its job (
    ``step.attempts`` counts every run started, retries and resumes included); else a draw
    against ``failure_rate``. The rng is drawn only for a rate strictly between 0 and 1.
    """
    if profile.always_fail or step.attempts <= profile.fail_first_attempts:
        return True
    rate = profile.failure_rate
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    return rng.random() < rate


def failure_kind(profile: Profile, family_kind: str | None = None) -> str:
    """The kind a simulated failure reports: the profile's own, else the family's, if any."""
    if family_kind is not None and profile.failure_kind == GENERIC_FAILURE_KIND:
        return family_kind
    return profile.failure_kind


def simulated_failure(
    ctx: StepContext, message: str, family_kind: str | None = None
) -> StepFailure:
    """The ``StepFailure`` of a simulated shell or metadata step (exit code 1)."""
    return StepFailure(
        f"{message} (simulated failure, attempt {ctx.step.attempts})",
        kind=failure_kind(ctx.profile, family_kind),
        info={"exit_code": "1"},
    )


async def spend(ctx: StepContext, seconds: float, lines: Sequence[str] = ()) -> None:
    """Spend ``seconds`` writing ``lines`` spread evenly over it (each line written, then a wait).

    Zero seconds writes everything and yields once; nothing is split.
    """
    if seconds <= 0.0 or len(lines) <= 1:
        for line in lines:
            ctx.output.write(line)
        await ctx.simulate(seconds)
        return
    share = seconds / len(lines)
    for line in lines:
        ctx.output.write(line)
        await ctx.simulate(share)


async def simulate_step(ctx: StepContext, seconds: float, header: str, failure: str) -> bool:
    """The simulated life of a simple step: ``header`` and the chatter lines over ``seconds``;
    then, when the profile says it fails, ``failure`` written and raised as ``StepFailure``.

    Returns whether lines were written (a caller may add a closing one)."""
    failing = should_fail(ctx.profile, ctx.step, ctx.rng)
    lines: list[str] = []
    if ctx.profile.output_lines > 0:
        lines = [header, *chatter(ctx, ctx.step.spec.name)]
    await spend(ctx, seconds, lines)
    if failing:
        if lines:
            ctx.output.write(f"{failure}\n")
        raise simulated_failure(ctx, failure)
    return bool(lines)


def chatter(ctx: StepContext, what: str) -> list[str]:
    """``profile.output_lines`` lines of progress talk about ``what`` (none when it is 0)."""
    count = ctx.profile.output_lines
    if count <= 0:
        return []
    return [f"{what}: working ({i}/{count}) ...\n" for i in range(1, count + 1)]
