"""The ``stream_api`` fixture of the streaming API tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.streaming.kit import OpenApi, api_opener


@pytest.fixture
def stream_api(tmp_path: Path) -> OpenApi:
    """``async with stream_api(extended=False) as (engine, client)``: fast, in memory."""
    return api_opener(tmp_path)
