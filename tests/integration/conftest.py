"""Engines for integration tests: the shipped config, fast simulated time, real stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from engine.config import Config, load_config
from engine.facade import Engine

EngineFactory = Callable[..., AbstractAsyncContextManager[Engine]]


def fast_config(tmp_path: Path, **overrides: object) -> Config:
    """The shipped config, simulated work 20,000x faster, work dirs under ``tmp_path``."""
    base: dict[str, object] = {
        "kjobs.time-scale": 20_000,
        "kjobs.workdir": str(tmp_path / "work"),
        "kjobs.job.kill-grace-period": 0.5,
    }
    base.update(overrides)
    return load_config(overrides=base)


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Run the test on the in-memory store and on a real SQLite file."""
    return str(request.param)


@pytest.fixture
def make_engine(tmp_path: Path, store_kind: str) -> EngineFactory:
    """Open an engine on this test's store kind, with optional setting overrides."""

    @asynccontextmanager
    async def factory(**overrides: object) -> AsyncIterator[Engine]:
        store = ":memory:" if store_kind == "memory" else str(tmp_path / "kjobs.sqlite")
        config = fast_config(tmp_path, **{"kjobs.store": store, **overrides})
        async with Engine(config) as engine:
            yield engine

    return factory
