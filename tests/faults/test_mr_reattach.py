"""No orphan YARN applications, with a real process: a real ``kjobs serve`` (SQLite file, real
HTTP) is SIGKILLed while a simulated MR step's application runs; the server restarted on the
same store re-attaches to that application (same id, same timeline, only the rest waited out)
instead of submitting a second one, and the job finishes; one that ended while the server was
down ends its step at once with its recorded status (SPEC §2.3)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from engine.config.load import SHIPPED_CONFIG_DIR
from tests.cluster.nodes import start_node, statuses, submit_builds, wait_until
from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow

#: the application's run on the clock (time scale 1): long enough to outlive a slow restart
RUN_S = 30
_TEMPLATE = """description = "one long simulated MR step"

[[steps]]
name = "Build Base Cuboid"
cmd_type = "JAVA_CMD_HADOOP_BASECUBOID"
profile = "long_mr"

[[steps]]
name = "Update Cube Info"
cmd_type = "SHELL_CMD_HADOOP"
family = "metadata"
profile = "instant"
action = "update_cube_info"
"""
_PROFILE = """
[long_mr]
min_seconds = {run_s}.0
max_seconds = {run_s}.0
queue_min_seconds = 1.0
queue_max_seconds = 1.0
output_lines = 2
"""


def _config(folder: Path, run_s: int) -> Path:
    """The shipped config with the cube of ``submit_builds`` building one MR step of
    ``run_s`` s (after 1 s in the queue)."""
    target = folder / "config"
    shutil.copytree(SHIPPED_CONFIG_DIR, target)
    (target / "templates" / "shell_demo.toml").write_text(_TEMPLATE)
    with (target / "profiles.toml").open("a") as profiles:
        profiles.write(_PROFILE.format(run_s=run_s))
    return target


def _step(node: ServerProcess, job_id: str) -> dict[str, Any]:
    with node.client() as client:
        step: dict[str, Any] = client.get(f"/jobs/{job_id}").json()["steps"][0]
        return step


def _output(node: ServerProcess, job_id: str) -> str:
    with node.client() as client:
        text: str = client.get(f"/jobs/{job_id}/steps/{job_id}-00/output").json()["cmd_output"]
        return text


def _kill_while_running(folder: Path, run_s: int) -> tuple[str, dict[str, str], Path, str]:
    """Submit a build whose MR step runs ``run_s`` s, SIGKILL the server once the step's
    application is recorded; (job id, the recorded info, config, store)."""
    config, store = _config(folder, run_s), str(folder / "kjobs.sqlite")
    first = start_node(folder, store, "a", config)
    try:
        (job_id,) = submit_builds(first, 1)

        def submitted() -> dict[str, str] | None:
            step = _step(first, job_id)
            running = step["step_status"] == "RUNNING" and "yarn_application_id" in step["info"]
            return dict(step["info"]) if running else None

        recorded = wait_until("the application is recorded", submitted)
        assert isinstance(recorded, dict)
        first.process.kill()  # SIGKILL: nothing is cleaned up, the application "runs on"
        first.process.wait(timeout=10)
    finally:
        first.stop()
    return job_id, recorded, config, store


def _finish(folder: Path, job_id: str, store: str, config: Path) -> tuple[ServerProcess, Any]:
    """Restart on ``store``; the server and the step once the job FINISHED."""
    node = start_node(folder, store, "a", config)
    try:
        wait_until("FINISHED", lambda: statuses(node, [job_id])[job_id] == "FINISHED", 120)
        return node, _step(node, job_id)
    except BaseException:
        node.stop()
        raise


def _same_application(after: dict[str, str], recorded: dict[str, str]) -> None:
    for key in ("yarn_application_id", "mr_job_id", "yarn_expected_finish"):
        assert after[key] == recorded[key], key
    # it ended at the application's recorded end or later, never before
    assert int(after["endTime"]) >= int(recorded["yarn_expected_finish"])


def test_a_server_killed_during_an_mr_step_reattaches_to_its_application(tmp_path: Path) -> None:
    job_id, recorded, config, store = _kill_while_running(tmp_path, RUN_S)
    restarted, step = _finish(tmp_path, job_id, store, config)
    try:
        _same_application(step["info"], recorded)
        text = _output(restarted, job_id)  # the latest attempt's output
        assert f"Re-attached to application {recorded['yarn_application_id']}\n" in text
        assert "Submitted application" not in text  # the resumed attempt submitted nothing
    finally:
        restarted.stop()


def test_an_application_that_ended_while_the_server_was_down_ends_its_step(
    tmp_path: Path,
) -> None:
    job_id, recorded, config, store = _kill_while_running(tmp_path, 2)
    finish = int(recorded["yarn_expected_finish"])
    wait_until("the application's end", lambda: time.time() * 1000 > finish + 500, 30)
    restarted, step = _finish(tmp_path, job_id, store, config)
    try:
        _same_application(step["info"], recorded)
        text = _output(restarted, job_id)
        app_id = recorded["yarn_application_id"]
        assert f"Application {app_id} ended SUCCEEDED while no engine watched it\n" in text
        assert "Submitted application" not in text
    finally:
        restarted.stop()
