"""Prometheus metrics of one engine (SPEC §10): ``engine.metrics.registry``.

The server answers ``GET /metrics`` from this registry; a service that embeds kjobs can serve
or merge the same one (``prometheus_client.generate_latest(engine.metrics.registry)``).

Collection stays off the step hot path: job writes feed counters and histograms through a
synchronous hook of the event bus (a few comparisons per write, no I/O), gauges read the
engine's in-memory state when they are scraped, and ``refresh`` re-reads the per-status job
counts from the store (the server calls it on every scrape; other nodes' writes and deletions
that bypass this engine are then counted too). No job or step id is ever a label: labels are
REST statuses, results, command types and model aliases, all small closed sets.

The cluster's (SPEC §9): ``kjobs_leases_lost_total`` and ``kjobs_jobs_rescued_total`` read this
node's scheduler counters at scrape time; ``kjobs_nodes`` (live nodes on the store) is re-read
by ``refresh`` with the job counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.core.jobs import Job
from engine.core.states import STATUS_CODES, State

if TYPE_CHECKING:
    from engine.streaming.service import StreamingService

#: seconds: simulated steps take milliseconds at a high time scale, real MR steps minutes
DURATION_BUCKETS = (0.005, 0.05, 0.25, 1, 5, 15, 60, 180, 600, 1800, 3600, 4 * 3600)
WRITE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5)
#: the job results ``kjobs_jobs_finished_total`` counts
RESULTS = (State.SUCCEED, State.ERROR, State.DISCARDED)
#: step states that end a run of a step (``kjobs_step_duration_seconds``)
STEP_ENDS = frozenset({State.SUCCEED, State.ERROR})

Slots = Callable[[], tuple[int, int]]  #: () -> (used, capacity)
Leases = Callable[[], tuple[int, int]]  #: () -> (leases lost, jobs rescued) by this node
_Labelled = TypeVar("_Labelled", Gauge, Counter, Histogram)


class EngineMetrics:
    """The metrics of SPEC §10 on their own registry (one per engine)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.jobs = Gauge(
            "kjobs_jobs", "Jobs in the store, per REST status", ["status"], registry=reg
        )
        self.finished = Counter(
            "kjobs_jobs_finished", "Jobs that ended, per result", ["result"], registry=reg
        )
        self.step_duration = Histogram(
            "kjobs_step_duration_seconds",
            "Duration of step runs that ended (FINISHED or ERROR), per command type",
            ["command_type"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.job_wait = Histogram(
            "kjobs_job_wait_seconds",
            "Time from submission to the first step running",
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.store_write = Histogram(
            "kjobs_store_write_seconds",
            "Duration of job writes to the store",
            buckets=WRITE_BUCKETS,
            registry=reg,
        )
        self.store_retries = Counter(
            "kjobs_store_write_retries",
            "Writes of running jobs and streaming loops the store refused and that were tried "
            "again (disk full, I/O error, locked too long)",
            registry=reg,
        )
        self.events_dropped = Counter(
            "kjobs_events_dropped",
            "Live events (SSE) not delivered to a client that fell behind",
            registry=reg,
        )
        self.event_clients = Gauge(
            "kjobs_event_clients", "Open live event streams (SSE)", registry=reg
        )
        self.nodes = Gauge(
            "kjobs_nodes", "Live nodes on this engine's store (this one included)", registry=reg
        )
        for rest in STATUS_CODES:
            self.jobs.labels(rest)
        for result in RESULTS:
            self.finished.labels(result.rest_name)
        self._children: dict[tuple[object, str], Any] = {}
        self._slots: Slots = lambda: (0, 0)
        self._leases: Leases = lambda: (0, 0)
        self._streaming: StreamingService | None = None
        reg.register(_LiveGauges(self))

    def watch(
        self, slots: Slots, streaming: StreamingService | None, leases: Leases | None = None
    ) -> None:
        """Where the scrape-time gauges read the engine's state (set once by the engine)."""
        self._slots = slots
        self._streaming = streaming
        if leases is not None:
            self._leases = leases

    def live_leases(self) -> tuple[int, int]:
        """(leases lost, jobs rescued) by this node since it started."""
        return self._leases()

    def live_slots(self) -> tuple[int, int]:
        """(used, capacity) of the batch slots right now."""
        return self._slots()

    def live_latencies(self) -> list[tuple[str, int]]:
        """(model alias, data latency ms) of every streaming build job that ran a batch."""
        jobs = self._streaming.all_jobs() if self._streaming is not None else []
        return [(j.model_alias, j.data_latency) for j in jobs if j.data_latency is not None]

    def job_written(self, old: Job | None, new: Job) -> None:
        """Account one stored job write (the event bus calls this on every write)."""
        if old is None or old.state is not new.state:
            if old is not None:
                self._of(self.jobs, old.state.rest_name).dec()
            self._of(self.jobs, new.state.rest_name).inc()
            if new.state in RESULTS:
                self._of(self.finished, new.state.rest_name).inc()
        if old is None:
            return
        if not old.start_time and new.start_time:
            self.job_wait.observe(max(0, new.start_time - new.create_time) / 1000)
        for before, step in zip(old.steps, new.steps, strict=False):
            if step is not before and step.state is not before.state and step.state in STEP_ENDS:
                seconds = max(0, step.end_time - step.start_time) / 1000
                self._of(self.step_duration, step.spec.cmd_type).observe(seconds)

    def _of(self, metric: _Labelled, label: str) -> _Labelled:
        """``metric.labels(label)``, kept: ``labels`` takes a lock and builds a key each time."""
        child: _Labelled | None = self._children.get((metric, label))
        if child is None:
            child = self._children[(metric, label)] = metric.labels(label)
        return child

    def job_dropped(self, job: Job) -> None:
        """A job was deleted."""
        self.jobs.labels(job.state.rest_name).dec()

    def set_counts(self, counts: Mapping[str, int]) -> None:
        """The number of stored jobs per REST status, as the store counted them."""
        for rest in STATUS_CODES:
            self.jobs.labels(rest).set(counts.get(rest, 0))


class _LiveGauges(Collector):
    """Gauges read at scrape time: slots and the streaming jobs' data latency."""

    def __init__(self, metrics: EngineMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        used, capacity = self._metrics.live_slots()
        slots = GaugeMetricFamily(
            "kjobs_slots", "Batch job slots (kylin.job.max-concurrent-jobs)", labels=["state"]
        )
        slots.add_metric(["used"], used)
        slots.add_metric(["free"], max(0, capacity - used))
        yield slots
        latency = GaugeMetricFamily(
            "kjobs_streaming_data_latency_seconds",
            "Data latency of a streaming model's latest micro-batch",
            labels=["model"],
        )
        for alias, ms in self._metrics.live_latencies():
            latency.add_metric([alias], ms / 1000)
        yield latency
        lost, rescued = self._metrics.live_leases()
        yield CounterMetricFamily(
            "kjobs_leases_lost",
            "Runners stopped because another node took their job (its lease ran out here)",
            value=lost,
        )
        yield CounterMetricFamily(
            "kjobs_jobs_rescued",
            "RUNNING jobs of dead nodes (or of this node's crash) taken over by this node",
            value=rescued,
        )
