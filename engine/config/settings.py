"""Typed settings the engine runs with. ``engine.config.load`` loads and validates them from TOML.

Defaults here are Kylin's defaults; the shipped ``config/engine.toml`` states them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.core.streaming_params import StreamingSettings

__all__ = ["EngineSettings", "OpsSettings", "StreamingSettings", "User"]


@dataclass(frozen=True)
class User:
    """A user of the REST server (HTTP Basic)."""

    name: str
    password: str
    authorities: tuple[str, ...] = ("ROLE_ADMIN",)


@dataclass(frozen=True)
class OpsSettings:
    """Notifications and retention (SPEC §11; ``engine.ops``)."""

    notifier_url: str = ""  #: kylin.job.finished-notifier-url; empty = no notifications
    notifier_max_retries: int = 5  #: kylin.job.notifier-max-retries: retries after the first try
    notifier_retry_interval_ms: int = 1000  #: kylin.job.notifier-retry-interval: first backoff
    notifier_timeout_s: float = 10.0  #: kjobs.notifier.timeout: one POST's limit
    retention_days: int = 30  #: kylin.job.retention-days; 0 = keep forever
    sweep_interval_s: int = 3600  #: kjobs.retention.sweep-interval


@dataclass(frozen=True)
class EngineSettings:
    """Everything the engine's runtime needs besides the catalog."""

    max_concurrent_jobs: int = 10  #: kylin.job.max-concurrent-jobs
    retry: int = 0  #: kylin.job.retry
    retry_interval_ms: int = 30_000  #: kylin.job.retry-interval
    retry_exception_classes: frozenset[str] = frozenset()  #: kylin.job.retry-exception-classes
    max_output_bytes: int = 10 * 1024 * 1024  #: kylin.job.execute-output.max-size
    grace_seconds: float = 5.0  #: kjobs.job.kill-grace-period: SIGTERM -> SIGKILL
    shell_timeout_s: float | None = None  #: kjobs.job.shell-timeout: default per-step timeout
    time_scale: float = 1.0  #: kjobs.time-scale: simulated work runs N times faster
    store: str = ""  #: kjobs.store: SQLite file, ``postgresql://`` URL, or ":memory:"
    node_id: str = ""  #: kjobs.node-id: build_instance; empty = "{pid}@{host}"
    lease_seconds: float = 30.0  #: kjobs.cluster.lease-seconds: a runner's lease on its job
    poll_seconds: float = 1.0  #: kjobs.cluster.poll-interval: fallback look for work elsewhere
    pool_size: int = 10  #: kjobs.postgres.pool-size: connections to a PostgreSQL store
    workdir: str = ""  #: kjobs.workdir: root of per-job working directories (default: temp)
    seed: int = 0  #: kjobs.seed: seeds simulated behaviour
    version: str = "4.0.0.0"  #: kjobs.version: the ``version`` shown in JSON
    users: tuple[User, ...] = (User("ADMIN", "KYLIN"),)
    metrics_public: bool = False  #: kjobs.metrics.public: serve /metrics without credentials
    gc_threshold: int = 20_000  #: kjobs.gc-threshold: young collections while running; 0 = off
    #: kjobs.server.max-request-head: bytes of a request line and headers ``kjobs serve`` reads
    max_request_head_bytes: int = 16 * 1024
    env: tuple[tuple[str, str], ...] = ()  #: kjobs.job.env: environment for real shell steps
    streaming: StreamingSettings = field(default_factory=StreamingSettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    config_dir: Path | None = None  #: where the settings came from (for messages)
