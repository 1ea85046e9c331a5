"""``kjobs.gc-threshold``: a running engine collects young garbage less often, then restores it."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import pytest

from engine.collector import collector_threshold
from engine.config import Config, load_config
from engine.core.errors import ConfigError
from engine.facade import Engine


@pytest.fixture(autouse=True)
def python_default() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


async def test_an_engine_raises_the_threshold_while_it_runs(
    make_config: Callable[..., Config],
) -> None:
    async with Engine(make_config()) as engine:
        assert engine.settings.gc_threshold == 20_000  # the shipped default
        assert gc.get_threshold() == (20_000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


async def test_zero_leaves_the_collector_alone(make_config: Callable[..., Config]) -> None:
    async with Engine(make_config(**{"kjobs.gc-threshold": 0})):
        assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_is_kept_and_restored() -> None:
    gc.set_threshold(50_000, 10, 10)
    with collector_threshold(20_000):
        assert gc.get_threshold() == (50_000, 10, 10)
    with collector_threshold(100_000):
        assert gc.get_threshold() == (100_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ConfigError, match="gc-threshold"):
        load_config(environ={}, overrides={"kjobs.gc-threshold": -1})
    env = load_config(environ={"KJOBS_GC_THRESHOLD": "5000"})
    assert env.engine.gc_threshold == 5000
