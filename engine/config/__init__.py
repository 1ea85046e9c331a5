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
from engine.config.settings import EngineSettings, StreamingSettings, User

__all__ = [
    "BY_KEY",
    "SETTINGS",
    "SHIPPED_CONFIG_DIR",
    "Config",
    "EngineSettings",
    "LogSettings",
    "StreamingSettings",
    "User",
    "load_config",
    "settings_table",
]
