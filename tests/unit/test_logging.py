"""kjobs is quiet by default for library users; one call routes or silences its records."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

import engine.logging as kjobs_logging

SCRIPT = """
import engine.logging
from engine.logging import get_logger
log = get_logger()
{setup}
log.debug("kjobs.step.started", job_id="j1")
log.info("kjobs.job.submitted", job_id="j1")
log.warning("kjobs.test.warned", job_id="j1")
print("program output")
"""


def run(setup: str = "") -> subprocess.CompletedProcess[str]:
    """A fresh interpreter (structlog not configured) logging at three levels."""
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_by_default_only_warnings_reach_stderr_and_stdout_is_the_programs() -> None:
    done = run()
    assert done.stdout == "program output\n"
    assert done.stderr == "kjobs WARNING kjobs.test.warned job_id=j1\n"


def test_silence_drops_everything() -> None:
    assert run("engine.logging.silence()").stderr == ""


def test_quiet_at_info_lets_info_through_but_not_debug() -> None:
    lines = run("engine.logging.quiet('INFO')").stderr.splitlines()
    assert [line.split()[2] for line in lines] == ["kjobs.job.submitted", "kjobs.test.warned"]


@pytest.fixture
def restored() -> Iterator[None]:
    yield
    kjobs_logging.reset()


@pytest.mark.usefixtures("restored")
def test_to_stdlib_hands_records_to_the_kjobs_logger(caplog: pytest.LogCaptureFixture) -> None:
    kjobs_logging.to_stdlib("INFO")
    log = kjobs_logging.get_logger()
    with caplog.at_level(logging.DEBUG, logger="kjobs"):
        log.debug("kjobs.step.started", job_id="j1")
        log.info("kjobs.job.submitted", job_id="j1")
    assert [r.getMessage() for r in caplog.records] == ["kjobs.job.submitted job_id=j1"]
    assert caplog.records[0].kjobs == {"job_id": "j1"}  # type: ignore[attr-defined]


def test_the_commands_json_log_carries_the_traceback_of_a_logged_exception() -> None:
    setup = """
from engine.cli import configure_logging
configure_logging(verbose=False)  # stderr is a pipe here: JSON lines
try:
    raise ValueError("the cause")
except ValueError:
    log.exception("kjobs.step.crashed", job_id="j1")
"""
    done = run(setup)
    first = json.loads(done.stderr.splitlines()[0])
    assert first["event"] == "kjobs.step.crashed" and first["level"] == "error"
    assert "Traceback" in first["exception"] and "ValueError: the cause" in first["exception"]
