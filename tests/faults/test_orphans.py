"""No orphans, with real processes: a real ``kjobs serve`` is SIGKILLed (or frozen past its
lease) while a real shell step sleeps between its start and end markers; the step is run again
by the next incarnation (or the node that takes the job over) only once the first copy is dead.

Each copy of the step appends ``start`` (and, if it lives, ``end``) to the ledger
(``tests.cluster.nodes``); at its start it also writes ``overlap PID`` to ``overlaps.txt`` for
every earlier copy of the step that is still running: that file must stay empty.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.cluster.nodes import (
    Mark,
    ledger_config,
    read_ledger,
    start_node,
    statuses,
    submit_builds,
    wait_until,
)
from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow

#: for every earlier start of this job's step 0 whose process still runs (not a zombie): a line
_OVERLAPS = (
    'for p in $(awk -v j={job_id} \'$1 == j && $3 == "start" {print $5}\' "$TEST_LEDGER"); '
    'do [ "$p" != $$ ] && [ -r /proc/$p/stat ] && ! grep -q ") Z" /proc/$p/stat '
    '&& echo "overlap $p" >> "$TEST_LEDGER.overlaps"; done; '
)


_FIRST_COPY_SLOW = (
    'n=$(awk -v j={job_id} \'$1 == j && $3 == "start"\' "$TEST_LEDGER" | wc -l); '
    'if [ "$n" -gt 1 ]; then sleep 1; else sleep 60; fi'
)


def _config(folder: Path, sleep: str) -> Path:
    return ledger_config(folder, 1, sleep=_OVERLAPS + sleep)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return ") Z" not in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


def _check_one_copy_finished(folder: Path, job_id: str, first: Mark) -> list[Mark]:
    """The first copy never ended and is dead; the second is the only complete pair; no two
    copies ran at once."""
    marks = [m for m in read_ledger(folder) if m.job_id == job_id]
    starts = [m for m in marks if m.kind == "start"]
    ends = [m for m in marks if m.kind == "end"]
    assert [m.pid for m in starts] == [first.pid, starts[-1].pid] and len(starts) == 2, marks
    assert [m.pid for m in ends] == [starts[-1].pid], "only the second copy ran to its end"
    assert not _running(first.pid)
    overlaps = folder / "ledger.txt.overlaps"
    assert not overlaps.exists(), overlaps.read_text()
    return marks


def test_a_server_killed_during_a_step_leaves_no_copy_running_after_restart(
    tmp_path: Path,
) -> None:
    # the first copy would sleep a minute (it must outlive the restart, however slow), the
    # copy the restarted server runs a second
    config = _config(tmp_path, _FIRST_COPY_SLOW)
    store = str(tmp_path / "kjobs.sqlite")
    a = start_node(tmp_path, store, "a", config)
    restarted: ServerProcess | None = None
    try:
        (job_id,) = submit_builds(a, 1)
        marks = wait_until("the step started", lambda: read_ledger(tmp_path))
        first = marks[0]  # type: ignore[index]
        a.process.kill()  # SIGKILL: the step's own session lives on
        a.process.wait(timeout=10)
        assert _running(first.pid), "the orphan outlived its server"
        restarted = start_node(tmp_path, store, "a", config)
        wait_until("FINISHED", lambda: statuses(restarted, [job_id])[job_id] == "FINISHED")
        _check_one_copy_finished(tmp_path, job_id, first)
        assert restarted.stderr is not None
        log = restarted.stderr.read_text()
        assert "kjobs.orphans.killed" in log and "dead_node" in log
    finally:
        for node in (a, restarted):
            if node is not None:
                node.stop()


def test_a_takeover_on_this_host_kills_the_frozen_nodes_step_first(tmp_path: Path) -> None:
    # node a's copy would sleep a minute: it is frozen (SIGSTOP) past its lease, so it can
    # neither renew nor kill its own step; b takes the job over on the same host
    config = _config(tmp_path, 'if [ "$KJOBS_NODE_ID" = a ]; then sleep 60; else sleep 1; fi')
    store = str(tmp_path / "kjobs.sqlite")
    a = start_node(tmp_path, store, "a", config)
    b: ServerProcess | None = None
    try:
        (job_id,) = submit_builds(a, 1)
        marks = wait_until("a runs the step", lambda: read_ledger(tmp_path))
        first = marks[0]  # type: ignore[index]
        b = start_node(tmp_path, store, "b", config)
        assert _running(first.pid), "b's start-up left a live neighbour's step alone"
        os.kill(a.process.pid, signal.SIGSTOP)
        try:
            wait_until("b finishes the job", lambda: statuses(b, [job_id])[job_id] == "FINISHED")
        finally:
            os.kill(a.process.pid, signal.SIGCONT)
        marks = _check_one_copy_finished(tmp_path, job_id, first)
        assert marks[-1].node == "b"
        assert b.stderr is not None
        assert "takeover" in b.stderr.read_text()
    finally:
        for node in (a, b):
            if node is not None:
                node.stop()
