"""The bodies of the build and merge loops (SPEC §5), run by ``engine.streaming.service``'s runs.

A loop returns when a graceful stop was asked (at once while it waits, else after the current
micro-batch or merge pass); it is cancelled by FORCE_STOP (a batch in progress is lost: its
offsets are read again by the next run); it raises when it fails.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine.clock import Clock
from engine.config.settings import StreamingSettings
from engine.core import streaming as core
from engine.core.streaming import (
    BatchStats,
    StreamingDecision,
    StreamingJob,
    StreamingSegment,
)
from engine.core.streaming_params import (
    StreamingParams,
    batch_stats,
    effective_params,
    merge_segments,
    plan_merge,
    settled,
)
from engine.store.ports import StreamingStore
from engine.streaming.source import SimulatedSource, SourceBatch, StreamingModelSpec

Decide = Callable[[StreamingJob, int], StreamingDecision]


class SimulatedFailure(RuntimeError):
    """A micro-batch or merge pass the model's ``fail_at_batches`` makes fail."""


class LoopHandle(Protocol):
    """What a loop may do to its own job (``engine.streaming.service`` provides it)."""

    @property
    def stop_requested(self) -> bool:
        """Whether a graceful stop was asked."""

    async def wait(self, simulated_s: float) -> bool:
        """Wait between batches; True when a graceful stop was asked.

        A stop that comes during the wait may instead cancel the loop where it waits, so a
        loop must return at once on True and never catch cancellation."""

    async def write(
        self,
        decide: Decide,
        *,
        stats: Sequence[BatchStats] = (),
        add_segments: Sequence[StreamingSegment] = (),
        remove_segments: Sequence[str] = (),
    ) -> bool:
        """Store an event of the job; False when the run was replaced meanwhile."""

    def succeeded(self) -> None:
        """A batch or pass went through."""

    def count(self, name: str, n: int = 1) -> None:
        """Add to a counter."""

    def new_id(self) -> str:
        """A seeded uuid."""

    def rng(self) -> random.Random:
        """The job's seeded random source."""


@dataclass
class RunContext:
    """What loops share: the clock, settings, store, and each model's simulated source."""

    clock: Clock
    settings: StreamingSettings
    time_scale: float
    store: StreamingStore
    seed: int = 0
    sources: dict[str, SimulatedSource] = field(default_factory=dict)
    numbers: Counter[str] = field(default_factory=Counter)  #: batches / passes per job

    async def source(self, spec: StreamingModelSpec) -> SimulatedSource:
        """The model's source; a new one resumes after the model's last segment."""
        source = self.sources.get(spec.model_id)
        if source is None:
            segments = await self.store.segments(spec.model_id)
            source = self.sources[spec.model_id] = SimulatedSource(
                rate_per_s=spec.rate_per_s,
                lag_ms=round(spec.lag_s * 1000),
                jitter=spec.rate_jitter,
                rng=random.Random(f"{self.seed}:{spec.model_id}:source"),
                committed=max((s.end_offset for s in segments), default=0),
                now=self.clock.now_ms(),
                time_scale=self.time_scale,
            )
        return source

    def next_number(self, job_id: str) -> int:
        """1-based number of the job's next batch or pass in this process."""
        self.numbers[job_id] += 1
        return self.numbers[job_id]

    async def work(self, simulated_s: float, rng: random.Random, jitter: float) -> None:
        """Spend ``simulated_s`` (± jitter) of work on the clock."""
        factor = 1.0 + (rng.uniform(-jitter, jitter) if jitter > 0 else 0.0)
        await self.clock.sleep(max(0.0, simulated_s * factor) / self.time_scale)


async def build_loop(
    ctx: RunContext, handle: LoopHandle, job: StreamingJob, spec: StreamingModelSpec
) -> None:
    """Every ``kylin.streaming.duration``: read the source, write a segment and a stats row."""
    params = effective_params(job.params, ctx.settings)
    source = await ctx.source(spec)
    interval = params.duration_ms / ctx.time_scale  # clock ms between triggers
    next_at = ctx.clock.now_ms() + interval
    while True:
        remaining_s = max(0.0, next_at - ctx.clock.now_ms()) * ctx.time_scale / 1000
        if await handle.wait(remaining_s):
            return
        if not await _micro_batch(ctx, handle, job, spec, params, source):
            return
        handle.succeeded()
        if handle.stop_requested:
            return
        # a batch longer than the interval delays the next trigger, as Spark's ProcessingTime
        next_at = max(next_at + interval, ctx.clock.now_ms())


async def _micro_batch(
    ctx: RunContext,
    handle: LoopHandle,
    job: StreamingJob,
    spec: StreamingModelSpec,
    params: StreamingParams,
    source: SimulatedSource,
) -> bool:
    number = ctx.next_number(job.uuid)
    started = ctx.clock.now_ms()
    batch = source.poll(started, params.max_offsets_per_trigger)
    processing_ms = 0
    if batch.rows:
        await ctx.work(spec.processing_s, handle.rng(), spec.rate_jitter)
        processing_ms = round((ctx.clock.now_ms() - started) * ctx.time_scale)
    if number in spec.fail_at_batches:
        raise SimulatedFailure(f"micro-batch {number} of {job.uuid} failed (simulated)")
    ended = ctx.clock.now_ms()
    stats = batch_stats(
        job.uuid,
        job.project,
        rows=batch.rows,
        min_event_time=batch.min_event_time,
        max_event_time=batch.max_event_time,
        duration_ms=params.duration_ms,
        processing_ms=processing_ms,
        now=ended,
    )
    segments = (_segment(handle.new_id(), job, spec, batch, ended),) if batch.rows else ()

    def decide(current: StreamingJob, _now: int) -> StreamingDecision:
        return core.batch_done(current, stats, ended)

    if not await handle.write(decide, stats=(stats,), add_segments=segments):
        return False
    source.commit(batch)
    handle.count("batches")
    handle.count("segments" if batch.rows else "empty_batches")
    return True


def _segment(
    segment_id: str, job: StreamingJob, spec: StreamingModelSpec, batch: SourceBatch, now: int
) -> StreamingSegment:
    return StreamingSegment(
        id=segment_id,
        model_id=job.model_id,
        project=job.project,
        start_offset=batch.start_offset,
        end_offset=batch.end_offset,
        min_event_time=batch.min_event_time,
        max_event_time=batch.max_event_time,
        row_count=batch.rows,
        size_bytes=batch.rows * spec.bytes_per_row,
        create_time=now,
    )


async def merge_loop(
    ctx: RunContext, handle: LoopHandle, job: StreamingJob, spec: StreamingModelSpec
) -> None:
    """Every merge interval: one merge pass over the model's READY segments."""
    params = effective_params(job.params, ctx.settings)
    skipped = _Skipped()
    while True:
        if await handle.wait(params.merge_interval_ms / 1000):
            return
        number = ctx.next_number(job.uuid)
        if number in spec.fail_at_batches:
            raise SimulatedFailure(f"merge pass {number} of {job.uuid} failed (simulated)")
        if not await _merge_pass(ctx, handle, job, spec, params, skipped):
            return
        handle.succeeded()
        if handle.stop_requested:
            return


async def _merge_pass(
    ctx: RunContext,
    handle: LoopHandle,
    job: StreamingJob,
    spec: StreamingModelSpec,
    params: StreamingParams,
    skipped: _Skipped,
) -> bool:
    """Merge while the planner finds a group; False when the run was replaced.

    The plan looks only at the segments after those that can no longer merge (``settled``):
    with a day of segments at the size limit, re-planning over all of them was most of a pass.
    """
    stored = await ctx.store.segments(job.model_id)
    segments = stored[skipped.count(stored, params.max_size_bytes) :]
    for _ in range(len(segments)):  # every merge removes at least one segment
        group = plan_merge(
            segments, threshold=params.merge_threshold, max_size_bytes=params.max_size_bytes
        )
        if not group:
            break
        await ctx.work(spec.merge_s, handle.rng(), spec.rate_jitter)
        merged = merge_segments(group, handle.new_id(), ctx.clock.now_ms())
        gone = tuple(s.id for s in group)
        if not await handle.write(core.merge_done, add_segments=(merged,), remove_segments=gone):
            return False
        handle.count("merges")
        handle.count("merged_segments", len(group))
        members = frozenset(gone)
        segments = [s for s in segments if s.id not in members]
        segments.append(merged)
    return True


class _Skipped:
    """What a merge loop knows from its previous pass: how many leading segments are settled.

    Kept by the loop (its params fixed), checked against the segment it ended on: only the
    loops write segments and they never remove a settled one, but a store that changed under
    them (another process) is counted again from the start rather than trusted.
    """

    def __init__(self) -> None:
        self._known = 0
        self._last_id = ""  #: the id of the last settled segment

    def count(self, segments: Sequence[StreamingSegment], max_size_bytes: int) -> int:
        """Leading ``segments`` (by offset) the plan can skip."""
        known = self._known
        if known and (known > len(segments) or segments[known - 1].id != self._last_id):
            known = 0
        known = settled(segments, max_size_bytes=max_size_bytes, known=known)
        self._known = known
        self._last_id = segments[known - 1].id if known else ""
        return known
