"""One run of a streaming job, and what its build or merge loop may do to the job.

A ``Run`` is the task of one job (its cancel scope, the graceful-stop flag, the retry count);
``RunHandle`` is the ``loops.LoopHandle`` a loop gets: wait, write an event, count, draw ids.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from engine.core.streaming import BatchStats, StreamingSegment
from engine.store.ports import Lease
from engine.streaming.loops import Decide

if TYPE_CHECKING:
    from engine.streaming.runtime import StreamingRuntime


@dataclass(eq=False)
class Run:
    """What runs for one job: its task's cancel scope and the graceful-stop flag."""

    job_id: str
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    stop_requested: bool = False
    #: what a graceful stop cancels while ``waiting``: the launch's wait, or the whole loop (one
    #: scope per attempt, not one per wait: the loop returns anyway once a wait is interrupted)
    wait_scope: anyio.CancelScope | None = None
    waiting: bool = False  #: sleeping in a wait that a graceful stop interrupts
    retries: int = 0  #: automatic retries since the last success or user action
    #: on a shared store: the run's lease on its job (every write of the run carries it)
    lease: Lease | None = None
    lost: bool = False  #: the lease was lost: the run ends without another write


class RunHandle:
    """What a loop may do to its own job (``loops.LoopHandle``)."""

    def __init__(self, runtime: StreamingRuntime, run: Run) -> None:
        self._runtime = runtime
        self._run = run

    @property
    def stop_requested(self) -> bool:
        """Whether a graceful stop was asked."""
        return self._run.stop_requested

    async def wait(self, simulated_s: float) -> bool:
        """Wait between batches; True when a graceful stop was asked (at once or meanwhile).

        A stop meanwhile may instead end the loop by cancellation (``loop_wait``)."""
        return await self._runtime.loop_wait(self._run, simulated_s)

    async def write(
        self,
        decide: Decide,
        *,
        stats: Sequence[BatchStats] = (),
        add_segments: Sequence[StreamingSegment] = (),
        remove_segments: Sequence[str] = (),
    ) -> bool:
        """Store an event of this job with what goes with it; False if the run was replaced."""
        return await self._runtime.event(
            self._run,
            decide,
            stats=stats,
            add_segments=add_segments,
            remove_segments=remove_segments,
        )

    def succeeded(self) -> None:
        """A batch or pass went through: the retry delay starts over."""
        self._run.retries = 0

    def count(self, name: str, n: int = 1) -> None:
        """Add to a counter."""
        self._runtime.counts[name] += n

    def new_id(self) -> str:
        """A seeded uuid for a segment."""
        return uuid4_text(self.rng().getrandbits(128))

    def rng(self) -> random.Random:
        """The job's seeded random source."""
        return self._runtime.rng(self._run.job_id)


_VERSION_4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))  #: variant and version bits
_VERSION_4_SET = (0x8000 << 48) | (4 << 76)


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))``, without building the UUID (a segment each)."""
    h = f"{(bits & _VERSION_4_CLEAR) | _VERSION_4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
