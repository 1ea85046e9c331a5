"""Shared helpers of the simulation tests: quiet logs, small scenarios written to ``tmp_path``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

HERE = Path(__file__).parent
ScenarioFile = Callable[[str], Path]


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """Thousands of simulated steps log at INFO: keep only warnings, restore afterwards."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.configure(**saved)


@pytest.fixture
def scenario_file(tmp_path: Path) -> ScenarioFile:
    """``scenario_file(text)``: a scenario file with ``text`` in ``tmp_path``."""
    count = 0

    def write(text: str) -> Path:
        nonlocal count
        count += 1
        path = tmp_path / f"scenario{count}.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
