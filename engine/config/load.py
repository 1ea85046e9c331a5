"""Configuration (SPEC §7): ``engine.toml`` settings, ``KJOBS_*`` environment overrides, explicit
overrides (CLI flags), and the catalog (``engine.catalog.load``), all validated at start-up.

Precedence, lowest first: the dataclass defaults (Kylin's), ``engine.toml``, the environment,
``overrides``. Every bad value is ONE ``ConfigError`` naming the file (or "environment" /
"overrides"), the dotted key and the reason. ``SETTINGS`` is the one table of settings: key,
where it lands, its type, its check and its environment variable (the README lists them).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from engine.config.settings import EngineSettings, OpsSettings, StreamingSettings, User
from engine.config.toml import (
    Check,
    Reader,
    non_empty,
    non_negative,
    one_of,
    positive,
    read_toml,
    type_name,
)
from engine.core.errors import ConfigError
from engine.logging import get_logger
from steps.base import Profile

if TYPE_CHECKING:  # the catalog reads its files with engine.config.toml: import it late
    from engine.catalog import Catalog
    from engine.catalog.templates import Template

log = get_logger()

#: the ``config/`` folder shipped with kjobs (the project is installed editable)
SHIPPED_CONFIG_DIR: Final = Path(__file__).resolve().parents[2] / "config"
ENV_PREFIX: Final = "KJOBS_"
#: KJOBS_* variables that belong to the CLI client or to running steps, not to settings
NOT_SETTINGS: Final = frozenset({"KJOBS_URL", "KJOBS_USER", "KJOBS_PASSWORD", "KJOBS_STEP_PGID"})


@dataclass(frozen=True, slots=True)
class LogSettings:
    """``kjobs.log.*``: how the CLI renders logs (the library never configures logging)."""

    level: str = "info"
    format: str = "auto"  #: auto (console on a terminal, JSON otherwise), console, json


@dataclass(frozen=True)
class Config:
    """Everything loaded from a config folder."""

    engine: EngineSettings
    catalog: Catalog
    logging: LogSettings = field(default_factory=LogSettings)
    config_dir: Path | None = None

    @property
    def profiles(self) -> Mapping[str, Profile]:
        """The executor profiles by name."""
        return self.catalog.profiles

    @property
    def templates(self) -> Mapping[str, Template]:
        """The job templates by name."""
        return self.catalog.templates


# -- the settings table -----------------------------------------------------------------------

_SIZE = re.compile(r"^[1-9][0-9]*[kmgt]?b?$", re.IGNORECASE)


def _size(value: str) -> str | None:
    return None if _SIZE.match(value) else f"{value!r} is not a size like 32m, 512k or 1g"


def _at_least(low: int) -> Check:
    def check(value: int) -> str | None:
        return None if value >= low else f"must be at least {low}, got {value}"

    return check


def _between(low: int, high: int) -> Check:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"must be from {low} to {high}, got {value}"

    return check


def _http_url(value: str) -> str | None:
    if not value or value.startswith(("http://", "https://")):
        return None
    return f"{value!r} is not an http:// or https:// URL (empty = no notifications)"


def _lease(value: float) -> str | None:
    # renewed every third of it, checked twice a second: shorter leases would flap
    return None if value >= 1 else f"must be at least 1 second, got {value}"


@dataclass(frozen=True, slots=True)
class Setting:
    """One key of ``engine.toml``."""

    key: str  #: dotted TOML key
    target: str  #: "engine", "streaming", "ops" or "logging": the dataclass it sets
    field: str  #: the field of that dataclass
    kind: str  #: int, float, bool, str, strings, timeout, env, users
    check: Check | None = None
    env: str | None = None  #: the KJOBS_* variable that overrides it


_LEVELS = one_of(("debug", "info", "warning", "error"), "level")

#: the settings of ``engine.toml``, in the order the shipped file lists them
SETTINGS: Final[tuple[Setting, ...]] = (
    Setting("kylin.job.max-concurrent-jobs", "engine", "max_concurrent_jobs", "int",
            _at_least(1), "KJOBS_MAX_CONCURRENT_JOBS"),
    Setting("kylin.job.retry", "engine", "retry", "int", non_negative, "KJOBS_RETRY"),
    Setting("kylin.job.retry-interval", "engine", "retry_interval_ms", "int", positive,
            "KJOBS_RETRY_INTERVAL"),
    Setting("kylin.job.retry-exception-classes", "engine", "retry_exception_classes", "strings",
            None, "KJOBS_RETRY_EXCEPTION_CLASSES"),
    Setting("kylin.job.execute-output.max-size", "engine", "max_output_bytes", "int",
            _at_least(1024), "KJOBS_MAX_OUTPUT_BYTES"),
    Setting("kylin.streaming.duration", "streaming", "duration_s", "int", positive,
            "KJOBS_STREAMING_DURATION"),
    Setting("kylin.streaming.segment-merge-threshold", "streaming", "segment_merge_threshold",
            "int", _at_least(2), "KJOBS_STREAMING_SEGMENT_MERGE_THRESHOLD"),
    Setting("kylin.streaming.segment-max-size", "streaming", "segment_max_size", "str", _size,
            "KJOBS_STREAMING_SEGMENT_MAX_SIZE"),
    Setting("kylin.streaming.kafka-conf.maxOffsetsPerTrigger", "streaming",
            "max_offsets_per_trigger", "int", non_negative,
            "KJOBS_STREAMING_MAX_OFFSETS_PER_TRIGGER"),
    Setting("kylin.streaming.job-retry-enabled", "streaming", "job_retry_enabled", "bool", None,
            "KJOBS_STREAMING_JOB_RETRY_ENABLED"),
    Setting("kylin.streaming.job-retry-interval", "streaming", "job_retry_interval_s", "int",
            positive, "KJOBS_STREAMING_JOB_RETRY_INTERVAL"),
    Setting("kylin.streaming.job-retry-max-interval", "streaming", "job_retry_max_interval_s",
            "int", positive, "KJOBS_STREAMING_JOB_RETRY_MAX_INTERVAL"),
    Setting("kjobs.streaming.merge-interval", "streaming", "merge_interval_s", "int", positive,
            "KJOBS_STREAMING_MERGE_INTERVAL"),
    Setting("kylin.job.finished-notifier-url", "ops", "notifier_url", "str", _http_url,
            "KJOBS_FINISHED_NOTIFIER_URL"),
    Setting("kylin.job.notifier-max-retries", "ops", "notifier_max_retries", "int",
            _between(0, 100), "KJOBS_NOTIFIER_MAX_RETRIES"),
    Setting("kylin.job.notifier-retry-interval", "ops", "notifier_retry_interval_ms", "int",
            positive, "KJOBS_NOTIFIER_RETRY_INTERVAL"),
    Setting("kjobs.notifier.timeout", "ops", "notifier_timeout_s", "float", positive,
            "KJOBS_NOTIFIER_TIMEOUT"),
    Setting("kylin.job.retention-days", "ops", "retention_days", "int", non_negative,
            "KJOBS_RETENTION_DAYS"),
    Setting("kjobs.retention.sweep-interval", "ops", "sweep_interval_s", "int", positive,
            "KJOBS_RETENTION_SWEEP_INTERVAL"),
    Setting("kjobs.time-scale", "engine", "time_scale", "float", positive, "KJOBS_TIME_SCALE"),
    Setting("kjobs.store", "engine", "store", "str", None, "KJOBS_STORE"),
    Setting("kjobs.postgres.pool-size", "engine", "pool_size", "int", _at_least(1),
            "KJOBS_POSTGRES_POOL_SIZE"),
    Setting("kjobs.node-id", "engine", "node_id", "str", None, "KJOBS_NODE_ID"),
    Setting("kjobs.cluster.lease-seconds", "engine", "lease_seconds", "float", _lease,
            "KJOBS_CLUSTER_LEASE_SECONDS"),
    Setting("kjobs.cluster.poll-interval", "engine", "poll_seconds", "float", positive,
            "KJOBS_CLUSTER_POLL_INTERVAL"),
    Setting("kjobs.workdir", "engine", "workdir", "str", None, "KJOBS_WORKDIR"),
    Setting("kjobs.seed", "engine", "seed", "int", None, "KJOBS_SEED"),
    Setting("kjobs.version", "engine", "version", "str", non_empty, "KJOBS_VERSION"),
    Setting("kjobs.job.kill-grace-period", "engine", "grace_seconds", "float", non_negative,
            "KJOBS_KILL_GRACE_PERIOD"),
    Setting("kjobs.job.shell-timeout", "engine", "shell_timeout_s", "timeout", non_negative,
            "KJOBS_SHELL_TIMEOUT"),
    Setting("kjobs.job.env", "engine", "env", "env"),
    Setting("kjobs.users", "engine", "users", "users"),
    Setting("kjobs.metrics.public", "engine", "metrics_public", "bool", None,
            "KJOBS_METRICS_PUBLIC"),
    Setting("kjobs.gc-threshold", "engine", "gc_threshold", "int", non_negative,
            "KJOBS_GC_THRESHOLD"),
    Setting("kjobs.server.max-request-head", "engine", "max_request_head_bytes", "int",
            _at_least(1024), "KJOBS_SERVER_MAX_REQUEST_HEAD"),
    Setting("kjobs.log.level", "logging", "level", "str", _LEVELS, "KJOBS_LOG_LEVEL"),
    Setting("kjobs.log.format", "logging", "format", "str",
            one_of(("auto", "console", "json"), "format"), "KJOBS_LOG_FORMAT"),
)  # fmt: skip

BY_KEY: Final = {s.key: s for s in SETTINGS}
BY_ENV: Final = {s.env: s for s in SETTINGS if s.env}
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_SCALARS: Final[Mapping[str, tuple[tuple[type, ...], str]]] = {
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "timeout": ((int, float), "a number of seconds (0 = no timeout)"),
    "bool": ((bool,), "a boolean"),
    "str": ((str,), "a string"),
}


def load_config(
    config_dir: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Load and validate ``config_dir`` (default: the shipped ``config/``).

    ``environ`` (default ``os.environ``) supplies ``KJOBS_*`` overrides; ``overrides`` maps
    dotted keys to values (CLI flags; None values are skipped). Raises ``ConfigError``.
    """
    folder = Path(config_dir) if config_dir is not None else SHIPPED_CONFIG_DIR
    if not folder.is_dir():
        raise ConfigError(
            str(folder),
            ConfigError.WHOLE_FILE,
            f"config folder not found (the shipped one is {SHIPPED_CONFIG_DIR})",
        )
    engine_file = str(folder / "engine.toml")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def put(key: str, value: Any, source: str) -> None:
        values[key] = value
        sources[key] = source

    for key, raw in _flatten(engine_file, read_toml(folder / "engine.toml"), "").items():
        put(key, _typed(BY_KEY[key], raw, engine_file, key), engine_file)
    for setting, text in _environment(os.environ if environ is None else environ):
        where = f"{setting.env} ({setting.key})"
        put(setting.key, _from_text(setting, text, "environment", where), "environment")
    for key, value in (overrides or {}).items():
        if value is not None:
            put(key, _override(key, value), "overrides")
    settings, log_settings = _build(values, sources, folder)
    from engine.catalog.load import load_catalog

    return Config(settings, load_catalog(folder), log_settings, folder)


def _hint(key: str) -> str:
    close = difflib.get_close_matches(key, list(BY_KEY), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _flatten(file: str, data: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``{"kylin": {"job": {"retry": 1}}}`` -> ``{"kylin.job.retry": 1}``, unknown keys refused."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        if key in BY_KEY:
            out[key] = value
        elif isinstance(value, dict) and any(k.startswith(f"{key}.") for k in BY_KEY):
            out.update(_flatten(file, value, key))
        else:
            raise ConfigError(file, key, f"unknown key{_hint(key)}")
    return out


def _typed(setting: Setting, value: Any, file: str, key: str) -> Any:
    """A value as TOML gives it, type-checked and checked; ``ConfigError(file, key, ...)``."""
    if setting.kind == "env":
        return tuple(Reader(file, "", {key: value}).string_map(key).items())
    if setting.kind == "users":
        return _users(file, key, value)
    if setting.kind == "strings":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(file, key, f"must be an array of strings, got {value!r}")
        return frozenset(value)
    kinds, wanted = _SCALARS[setting.kind]
    if isinstance(value, bool) is not (setting.kind == "bool") or not isinstance(value, kinds):
        raise ConfigError(file, key, f"must be {wanted}, got {type_name(value)} {value!r}")
    if setting.check is not None and (reason := setting.check(value)) is not None:
        raise ConfigError(file, key, reason)
    if setting.kind == "timeout":
        return float(cast(float, value)) or None
    return float(cast(float, value)) if setting.kind == "float" else value


def _from_text(setting: Setting, text: str, source: str, key: str) -> Any:
    """A value written as text (environment, command line), converted then checked."""
    raw = text.strip()
    value: Any
    try:
        if setting.kind == "int":
            value = int(raw)
        elif setting.kind in ("float", "timeout"):
            value = float(raw)
        elif setting.kind == "bool":
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError(raw)
            value = raw.lower() in _TRUE
        elif setting.kind == "strings":
            value = [part.strip() for part in raw.split(",") if part.strip()]
        elif setting.kind == "str":
            value = text
        else:
            raise ConfigError(source, key, "cannot be set from text")
    except ValueError:
        wanted = _SCALARS[setting.kind][1]
        raise ConfigError(source, key, f"must be {wanted}, got {text!r}") from None
    return _typed(setting, value, source, key)


def _override(key: str, value: object) -> Any:
    setting = BY_KEY.get(key)
    if setting is None:
        raise ConfigError("overrides", key, f"unknown key{_hint(key)}")
    if isinstance(value, str) and setting.kind not in ("str", "env", "users"):
        return _from_text(setting, value, "overrides", key)
    if isinstance(value, int | float) and not isinstance(value, bool) and setting.kind == "float":
        value = float(value)
    return _typed(setting, value, "overrides", key)


def _environment(environ: Mapping[str, str]) -> list[tuple[Setting, str]]:
    """The ``KJOBS_*`` variables that set something; the others are logged and ignored."""
    found = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        setting = BY_ENV.get(name)
        if setting is None:
            log.warning("kjobs.config.unknown_env", variable=name)
            continue
        found.append((setting, environ[name]))
    return found


def _users(file: str, key: str, value: Any) -> tuple[User, ...]:
    readers = Reader(file, "", {key: value}).tables(key)
    users: list[User] = []
    for r in readers:
        user = User(
            r.string("name", check=non_empty),
            r.string("password", check=non_empty),
            r.strings("authorities", ("ROLE_ADMIN",)),
        )
        r.done()
        if any(u.name == user.name for u in users):
            raise r.error("name", f"user {user.name!r} is defined twice")
        users.append(user)
    if not users:
        raise ConfigError(file, key, "at least one user is needed to use the REST server")
    return tuple(users)


def _build(
    values: Mapping[str, Any], sources: Mapping[str, str], folder: Path
) -> tuple[EngineSettings, LogSettings]:
    fields: dict[str, dict[str, Any]] = {"engine": {}, "streaming": {}, "ops": {}, "logging": {}}
    for key, value in values.items():
        setting = BY_KEY[key]
        fields[setting.target][setting.field] = value
    streaming = StreamingSettings(**fields["streaming"])
    if streaming.job_retry_max_interval_s < streaming.job_retry_interval_s:
        key = "kylin.streaming.job-retry-max-interval"
        other = sources.get(key) or sources.get("kylin.streaming.job-retry-interval", "defaults")
        raise ConfigError(
            other,
            key,
            f"must not be less than kylin.streaming.job-retry-interval "
            f"({streaming.job_retry_interval_s})",
        )
    settings = EngineSettings(
        **fields["engine"], streaming=streaming, ops=OpsSettings(**fields["ops"]), config_dir=folder
    )
    return settings, LogSettings(**fields["logging"])


def settings_table() -> list[dict[str, str]]:
    """The settings as rows (key, environment variable, default) for the README and the CLI."""
    defaults = {
        "engine": EngineSettings(),
        "streaming": StreamingSettings(),
        "ops": OpsSettings(),
        "logging": LogSettings(),
    }
    return [
        {
            "key": s.key,
            "env": s.env or "",
            "default": repr(getattr(defaults[s.target], s.field)),
        }
        for s in SETTINGS
    ]
