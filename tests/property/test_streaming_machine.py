"""Hypothesis stateful test of the pure streaming machine against the tables of SPEC §5.

Rules are user actions (START, STOP, FORCE_STOP, RESTART, repeated at will) and the events the
runtime reports (launch success or failure, graceful stop done, loop failure, a micro-batch,
engine recovery) on a healthy and a broken model's jobs. After each rule the test checks that
only table transitions happened, that refused actions and impossible events changed nothing,
that every record matches an effective transition, and that mvcc grows with every write only.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.core import streaming as core
from engine.core.errors import IllegalTransition, ModelBroken, StreamingActionNotAllowed
from engine.core.states import (
    STREAMING_ACTIONS,
    STREAMING_EVENTS,
    STREAMING_TRANSITIONS,
    StreamingAction,
    StreamingEvent,
    StreamingJobType,
    StreamingStatus,
)
from engine.core.streaming import (
    BatchStats,
    RecordAction,
    StreamingDecision,
    StreamingJob,
    StreamingRecord,
)

JOBS = ("good_build", "good_merge", "bad_build")
BROKEN = frozenset({"bad"})
RECORD_FOR = {
    StreamingStatus.RUNNING: RecordAction.START,
    StreamingStatus.STOPPED: RecordAction.STOP,
    StreamingStatus.ERROR: RecordAction.ERROR,
}
EVENTS: dict[StreamingEvent, Callable[[StreamingJob, int], StreamingDecision]] = {
    StreamingEvent.LAUNCHED: core.launched,
    StreamingEvent.LAUNCH_FAILED: core.launch_failed,
    StreamingEvent.LOOP_STOPPED: core.loop_stopped,
    StreamingEvent.LOOP_FAILED: core.loop_failed,
    StreamingEvent.RECOVER: core.recover_on_start,
}


def _expected_writes(
    start: StreamingStatus, chain: tuple[StreamingStatus, ...]
) -> tuple[StreamingStatus, ...]:
    """The table's chain with "no change, no write" applied."""
    writes: list[StreamingStatus] = []
    current = start
    for status in chain:
        if status is not current:
            writes.append(status)
            current = status
    return tuple(writes)


def _new(job_id: str) -> StreamingJob:
    model, _, suffix = job_id.partition("_")
    job_type = (
        StreamingJobType.STREAMING_BUILD
        if suffix == "build"
        else (StreamingJobType.STREAMING_MERGE)
    )
    return core.new_job(
        model, job_type, 0, model_alias=model, project="p", owner="ADMIN", params={}
    )


class StreamingMachine(RuleBasedStateMachine):
    """Drives three jobs through random actions and events."""

    @initialize()
    def setup(self) -> None:
        self.now = 1_700_000_000_000
        self.jobs = {job_id: _new(job_id) for job_id in JOBS}
        self.records: dict[str, list[StreamingRecord]] = {job_id: [] for job_id in JOBS}
        self.history: dict[str, list[StreamingStatus]] = {
            job_id: [StreamingStatus.STOPPED] for job_id in JOBS
        }

    # -- checks -------------------------------------------------------------------------------

    def _accept(
        self,
        old: StreamingJob,
        decision: StreamingDecision,
        expected_chain: tuple[StreamingStatus, ...],
    ) -> None:
        new = decision.job
        writes = _expected_writes(old.status, expected_chain)
        assert decision.writes == writes, (old.status, expected_chain, decision.writes)
        assert decision.previous is old.status
        assert decision.expected_mvcc == old.mvcc
        current = old.status
        for before, after in decision.transitions:
            assert before is current
            assert (before, after) in STREAMING_TRANSITIONS
            current = after
        assert new.status is current
        # every record is one effective write to RUNNING / STOPPED / ERROR, in order, now
        wanted = [RECORD_FOR[s] for s in writes if s in RECORD_FOR]
        assert [r.action for r in decision.records] == wanted
        assert all(r.create_time == self.now and r.job_id == old.uuid for r in decision.records)
        if writes:
            assert new.mvcc == old.mvcc + len(writes)
            assert new.last_update_time == self.now
            assert new.last_modified == self.now
        entered = set(writes)
        if StreamingStatus.RUNNING in entered:
            assert new.last_start_time == self.now
        else:
            assert new.last_start_time == old.last_start_time
        if entered & {StreamingStatus.STOPPED, StreamingStatus.ERROR}:
            assert new.last_end_time == self.now
        else:
            assert new.last_end_time == old.last_end_time
        if decision.records:
            assert new.last_record_time == self.now
        self.jobs[old.uuid] = new
        self.records[old.uuid].extend(decision.records)
        self.history[old.uuid].extend(writes)

    def _unchanged(self, job_id: str, old: StreamingJob) -> None:
        assert self.jobs[job_id] is old

    # -- rules --------------------------------------------------------------------------------

    @rule(ms=st.integers(min_value=1, max_value=120_000))
    def tick(self, ms: int) -> None:
        self.now += ms

    @rule(job_id=st.sampled_from(JOBS), action=st.sampled_from(list(StreamingAction)))
    def act(self, job_id: str, action: StreamingAction) -> None:
        old = self.jobs[job_id]
        broken = old.model_id in BROKEN
        chain = STREAMING_ACTIONS[action][old.status]
        try:
            decision = core.apply_action(old, action, self.now, model_broken=broken)
        except ModelBroken:
            assert broken and action in (StreamingAction.START, StreamingAction.RESTART)
            self._unchanged(job_id, old)
            return
        except StreamingActionNotAllowed as exc:
            assert chain is None and not broken
            assert (exc.status, exc.action) == (old.status.value, action.value)  # noqa: PT017
            self._unchanged(job_id, old)
            return
        assert chain is not None
        assert not (broken and action in (StreamingAction.START, StreamingAction.RESTART))
        if not decision.writes:  # no change, no write: nothing at all
            assert decision.job is old and not decision.records and not decision.changed
        self._accept(old, decision, chain)
        self._check_effects(old, action, decision)

    def _check_effects(
        self, old: StreamingJob, action: StreamingAction, decision: StreamingDecision
    ) -> None:
        kinds = [type(e) for e in decision.effects]
        if action is StreamingAction.START:
            assert kinds == [core.LaunchLoop]
        elif action is StreamingAction.RESTART:
            assert kinds == [core.CancelLoop, core.LaunchLoop]
        elif action is StreamingAction.FORCE_STOP:
            assert kinds == [core.CancelLoop]
        elif old.status in (StreamingStatus.STARTING, StreamingStatus.RUNNING):
            assert kinds == [core.GracefulStop]

    @rule(job_id=st.sampled_from(JOBS), event=st.sampled_from(list(EVENTS)))
    def happen(self, job_id: str, event: StreamingEvent) -> None:
        old = self.jobs[job_id]
        chain = STREAMING_EVENTS[event].get(old.status)
        try:
            decision = EVENTS[event](old, self.now)
        except IllegalTransition:
            assert chain is None
            self._unchanged(job_id, old)
            return
        assert chain is not None
        self._accept(old, decision, chain)
        relaunch = (
            [core.LaunchLoop(job_id)]
            if event is StreamingEvent.RECOVER
            and (old.status in (StreamingStatus.RUNNING, StreamingStatus.STARTING))
            else []
        )
        assert list(decision.effects) == relaunch
        if event is StreamingEvent.LAUNCHED:
            assert decision.job.job_execution_id == (old.job_execution_id or 0) + 1

    @rule(job_id=st.sampled_from(JOBS), rows=st.integers(min_value=0, max_value=10_000))
    def batch(self, job_id: str, rows: int) -> None:
        old = self.jobs[job_id]
        stats = BatchStats(job_id, "p", rows, rows // 30, 5, 40_000 - rows, 30_000, self.now)
        try:
            decision = core.batch_done(old, stats, self.now)
        except IllegalTransition:
            assert old.status not in STREAMING_EVENTS[StreamingEvent.BATCH_DONE]
            self._unchanged(job_id, old)
            return
        new = decision.job
        assert decision.writes == () and decision.records == ()
        assert new.status is old.status
        assert new.mvcc == old.mvcc + 1
        assert new.last_batch_count == rows and new.last_update_time == self.now
        assert new.data_latency == max(0, stats.min_data_latency)
        self.jobs[job_id] = new

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def records_follow_the_history(self) -> None:
        for job_id, statuses in self.history.items():
            wanted = [RECORD_FOR[s] for s in statuses[1:] if s in RECORD_FOR]
            assert [r.action for r in self.records[job_id]] == wanted
            assert self.jobs[job_id].status is statuses[-1]
            times = [r.create_time for r in self.records[job_id]]
            assert times == sorted(times)

    @invariant()
    def launching_error_has_no_record_of_its_own(self) -> None:
        for job in self.jobs.values():
            if job.status is StreamingStatus.LAUNCHING_ERROR:
                assert job.launching_error and job.status.listed_as == "ERROR"


TestStreamingMachine = StreamingMachine.TestCase
TestStreamingMachine.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)


@pytest.mark.parametrize("status", list(StreamingStatus))
def test_force_stop_always_ends_stopped_with_a_new_stop_record(status: StreamingStatus) -> None:
    job = _new("good_build").evolve(status=status, mvcc=7)
    decision = core.apply_action(job, StreamingAction.FORCE_STOP, 1000, model_broken=False)
    assert decision.job.status is StreamingStatus.STOPPED
    assert [r.action for r in decision.records] == [RecordAction.STOP]
    assert decision.job.last_end_time == 1000
    idle = status in (
        StreamingStatus.STOPPED,
        StreamingStatus.ERROR,
        StreamingStatus.LAUNCHING_ERROR,
    )
    assert decision.writes == (
        (StreamingStatus.STOPPING, StreamingStatus.STOPPED) if idle else (StreamingStatus.STOPPED,)
    )
    assert decision.job.mvcc == 7 + len(decision.writes)


def test_start_answers_once_starting_is_written() -> None:
    job = _new("good_build")
    decision = core.apply_action(job, StreamingAction.START, 5, model_broken=False)
    assert decision.writes == (StreamingStatus.STARTING,)
    assert decision.records == () and decision.job.last_start_time is None
    assert decision.effects == (core.LaunchLoop("good_build"),)


def test_refused_start_has_kylins_message() -> None:
    job = _new("good_build").evolve(status=StreamingStatus.RUNNING)
    with pytest.raises(StreamingActionNotAllowed, match='model "good", as it has an ongoing one'):
        core.apply_action(job, StreamingAction.START, 5, model_broken=False)


def test_broken_model_message() -> None:
    with pytest.raises(
        ModelBroken, match=re.escape('Can\'t start. Model "bad" is currently broken.')
    ):
        core.apply_action(_new("bad_build"), StreamingAction.START, 5, model_broken=True)


def test_launch_failure_writes_no_record_and_no_end_time() -> None:
    job = _new("good_build")
    starting = core.apply_action(job, StreamingAction.START, 5, model_broken=False).job
    failed = core.launch_failed(starting, 9)
    assert failed.job.status is StreamingStatus.LAUNCHING_ERROR
    assert failed.records == () and failed.job.last_end_time is None
    stopped = core.apply_action(failed.job, StreamingAction.STOP, 10, model_broken=False)
    assert stopped.writes == (StreamingStatus.ERROR,)
    assert [r.action for r in stopped.records] == [RecordAction.ERROR]


def test_recovery_rule() -> None:
    for status, writes in [
        (StreamingStatus.RUNNING, (StreamingStatus.STOPPED, StreamingStatus.STARTING)),
        (StreamingStatus.STARTING, (StreamingStatus.STOPPED, StreamingStatus.STARTING)),
        (StreamingStatus.STOPPING, (StreamingStatus.ERROR,)),
        (StreamingStatus.ERROR, ()),
        (StreamingStatus.STOPPED, ()),
        (StreamingStatus.LAUNCHING_ERROR, ()),
    ]:
        decision = core.recover_on_start(_new("good_build").evolve(status=status), 3)
        assert decision.writes == writes, status
        assert bool(decision.effects) == (
            status in (StreamingStatus.RUNNING, StreamingStatus.STARTING)
        )
