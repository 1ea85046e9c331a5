"""Configuration (SPEC §7): typed settings (``settings.py``), their loading and validation
(``load.py``) and the typed TOML reader behind every clear error (``toml.py``)."""

from engine.config.load import (
    BY_KEY,
    SETTINGS,
    SHIPPED_CONFIG_DIR,
    Config,
    LogSettings,
    load_config,
    settings_table,
)
from engine.config.settings import EngineSettings, OpsSettings, StreamingSettings, User

__all__ = [
    "BY_KEY",
    "SETTINGS",
    "SHIPPED_CONFIG_DIR",
    "Config",
    "EngineSettings",
    "LogSettings",
    "OpsSettings",
    "StreamingSettings",
    "User",
    "load_config",
    "settings_table",
]
