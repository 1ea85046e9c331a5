"""What the streaming loops simulate: a model's description and its Kafka-like source.

``SimulatedSource`` is one topic partition that receives ``rate_per_s`` messages per simulated
second, each with an event time ``lag_s`` behind its arrival. It is deterministic: the same
seed and the same clock readings give the same offsets and event times.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.catalog import StreamingModel


@dataclass(frozen=True, slots=True)
class StreamingModelSpec:
    """A streaming model as the streaming service needs it (catalog fields + simulation knobs)."""

    model_id: str
    alias: str
    project: str
    owner: str = "ADMIN"
    fact_table: str | None = None  #: SCHEMA.TABLE
    topic: str | None = None  #: ``subscribe``
    partition_column: str | None = None  #: ALIAS.COLUMN
    partition_date_format: str = "yyyy-MM-dd HH:mm:ss"
    params: Mapping[str, str] = field(default_factory=dict)  #: over the defaults, both jobs
    rate_per_s: float = 100.0  #: messages per simulated second
    lag_s: float = 0.0  #: event time trails arrival by this much
    broken: bool = False  #: ``model_broken``: START is refused
    fail_first_launches: int = 0  #: the first N launches of each job fail (LAUNCHING_ERROR)
    model_indexes: int = 1
    rate_jitter: float = 0.1  #: ± relative noise on the arrival rate and processing time
    launch_s: float = 2.0  #: simulated seconds a launch takes
    processing_s: float = 1.0  #: simulated seconds a non-empty micro-batch takes
    merge_s: float = 1.0  #: simulated seconds one merge takes
    bytes_per_row: int = 128  #: segment size per row
    #: 1-based numbers of the micro-batches / merge passes (per job and process) that raise
    fail_at_batches: frozenset[int] = frozenset()


def spec_from_catalog(model: StreamingModel) -> StreamingModelSpec:
    """The spec of a catalog ``StreamingModel`` (simulation knobs keep their defaults)."""
    return StreamingModelSpec(
        model_id=model.model_id,
        alias=model.alias,
        project=model.project,
        owner=model.owner,
        fact_table=model.fact_table,
        topic=model.topic,
        partition_column=model.partition.column,
        partition_date_format=model.partition.date_format,
        params=dict(model.params),
        rate_per_s=model.rate_per_s,
        lag_s=model.lag_s,
        broken=model.broken,
        fail_first_launches=model.fail_first_launches,
        model_indexes=model.model_indexes,
    )


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """Offsets ``[start_offset, end_offset)`` read by one micro-batch and their event times."""

    start_offset: int
    end_offset: int
    min_event_time: int = 0
    max_event_time: int = 0

    @property
    def rows(self) -> int:
        """Messages in the batch."""
        return self.end_offset - self.start_offset


@dataclass(frozen=True, slots=True)
class _Arrival:
    """Messages ``[start, end)`` arrived evenly over ``(t_start, t_end]`` (clock ms)."""

    start: int
    end: int
    t_start: int
    t_end: int

    def time_of(self, offset: int) -> int:
        return self.t_start + (offset - self.start + 1) * (self.t_end - self.t_start) // (
            self.end - self.start
        )


class SimulatedSource:
    """One partition of a simulated topic; consumption resumes at the committed offset."""

    def __init__(
        self,
        *,
        rate_per_s: float,
        lag_ms: int,
        jitter: float,
        rng: random.Random,
        committed: int,
        now: int,
        time_scale: float = 1.0,
    ) -> None:
        self._rate_per_ms = rate_per_s * time_scale / 1000
        self._lag_ms = lag_ms
        self._jitter = max(0.0, jitter)
        self._rng = rng
        self._arrivals: deque[_Arrival] = deque()
        self._carry = 0.0  # fractions of a message, so low rates lose nothing
        self.end_offset = committed  #: next offset to arrive
        self.committed = committed  #: next offset to consume
        self._arrived_until = now

    def _arrive(self, now: int) -> None:
        elapsed = now - self._arrived_until
        if elapsed <= 0:
            return
        factor = 1.0
        if self._jitter:
            factor += self._rng.uniform(-self._jitter, self._jitter)
        exact = self._rate_per_ms * elapsed * max(0.0, factor) + self._carry
        count = int(exact)
        self._carry = exact - count
        if count > 0:
            end = self.end_offset + count
            self._arrivals.append(_Arrival(self.end_offset, end, self._arrived_until, now))
            self.end_offset = end
        self._arrived_until = now

    def poll(self, now: int, max_offsets: int = 0) -> SourceBatch:
        """What a micro-batch at ``now`` reads (at most ``max_offsets`` if > 0); not committed."""
        self._arrive(now)
        stop = self.end_offset
        if max_offsets > 0:
            stop = min(stop, self.committed + max_offsets)
        if stop <= self.committed:
            return SourceBatch(self.committed, self.committed)
        first = self._time_of(self.committed) - self._lag_ms
        last = self._time_of(stop - 1) - self._lag_ms
        return SourceBatch(self.committed, stop, first, last)

    def commit(self, batch: SourceBatch) -> None:
        """The batch's results are durable: the next one starts after it."""
        self.committed = max(self.committed, batch.end_offset)
        while self._arrivals and self._arrivals[0].end <= self.committed:
            self._arrivals.popleft()

    def _time_of(self, offset: int) -> int:
        for arrival in self._arrivals:
            if arrival.start <= offset < arrival.end:
                return arrival.time_of(offset)
        raise LookupError(f"offset {offset} has not arrived")  # pragma: no cover - a bug
