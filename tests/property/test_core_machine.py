"""Hypothesis stateful test of the pure batch core against the tables of SPEC §1 and §2.1.

Rules are operations and execution events on a handful of jobs; after each one the test checks
that only table transitions happened, that refused operations raised and changed nothing, that
no SUCCEED step ran again except after a rollback or restart, and the derived fields of §3.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from engine.core import operations as ops
from engine.core.errors import IllegalTransition, OperationNotAllowed
from engine.core.jobs import Family, Job, Mode, Segment, StepSpec
from engine.core.states import OPERATION_ALLOWED_FROM, TRANSITIONS, Operation, State

FAMILIES = [Family.SHELL, Family.MAPREDUCE, Family.METADATA, Family.BULKLOAD]
INSTANCE = "1@test"


def _specs(n: int) -> list[StepSpec]:
    return [
        StepSpec(f"step {i}", "SHELL_CMD_HADOOP", FAMILIES[i % 4], Mode.SIMULATED) for i in range(n)
    ]


def _assert_table_moves(old: Job, new: Job) -> None:
    if old.state is not new.state:
        assert new.state in TRANSITIONS[old.state], (old.state, new.state)
    for before, after in zip(old.steps, new.steps, strict=True):
        if before.state is not after.state:
            assert after.state in TRANSITIONS[before.state], (before.id, before.state, after.state)


class CoreMachine(RuleBasedStateMachine):
    """Drives jobs through random operations and execution events."""

    jobs = Bundle("jobs")

    @initialize()
    def setup(self) -> None:
        self.now = 1_700_000_000_000
        self.store: dict[str, Job] = {}
        self.done: set[tuple[str, int]] = set()  # steps that SUCCEEDed since their last reset
        self.counter = 0

    # -- helpers --------------------------------------------------------------------------

    def _apply(self, job_id: str, decide: Callable[[Job], ops.Decision]) -> ops.Decision | None:
        old = self.store[job_id]
        try:
            decision = decide(old)
        except (OperationNotAllowed, IllegalTransition, IndexError):
            assert self.store[job_id] is old  # refused: nothing changed
            return None
        new = decision.job
        _assert_table_moves(old, new)
        for before, after in zip(old.steps, new.steps, strict=True):
            if after.state is State.RUNNING and before.state is not State.RUNNING:
                assert (job_id, after.sequence) not in self.done, "a SUCCEED step re-ran"
            if after.state is State.SUCCEED:
                self.done.add((job_id, after.sequence))
            if before.state is State.SUCCEED and after.state is not State.SUCCEED:
                self.done.discard((job_id, after.sequence))
        self.store[job_id] = new.evolve(version=new.version + 1)
        return decision

    def _operation(self, job_id: str, op: Operation, decide: Callable[[Job], ops.Decision]) -> bool:
        allowed = self.store[job_id].state in OPERATION_ALLOWED_FROM[op]
        result = self._apply(job_id, decide)
        assert (result is not None) == allowed, (op, self.store[job_id].state)
        return allowed

    # -- rules ----------------------------------------------------------------------------

    @rule(target=jobs, n=st.integers(1, 5))
    def submit(self, n: int) -> str:
        self.counter += 1
        job_id = f"job-{self.counter}"
        segment = Segment(f"seg-{self.counter}", "cube", "s", 0, 1)
        decision = ops.submit(job_id, "p", "cube", "BUILD", segment, _specs(n), "ADMIN", self.now)
        assert decision.job.state is State.READY
        assert all(s.state is State.READY for s in decision.job.steps)
        assert decision.job.build_instance == "unknown"
        self.store[job_id] = decision.job
        return job_id

    @rule(seconds=st.integers(0, 3600))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds * 1000

    @rule(job_id=jobs)
    def scheduler_starts(self, job_id: str) -> None:
        if job_id in self.store and self.store[job_id].state is State.READY:
            self._apply(job_id, lambda j: ops.start_next_step(j, self.now, INSTANCE))

    def _running_seq(self, job_id: str) -> int | None:
        job = self.store.get(job_id)
        step = job.first_step_in(State.RUNNING) if job else None
        return step.sequence if step else None

    @rule(job_id=jobs, wait=st.integers(0, 90_000))
    def step_succeeds(self, job_id: str, wait: int) -> None:
        seq = self._running_seq(job_id)
        if seq is not None:
            self._apply(job_id, lambda j: ops.update_step_info(j, seq, {}, self.now, wait))
            self._apply(job_id, lambda j: ops.step_succeeded(j, seq, {}, self.now, INSTANCE))

    @rule(job_id=jobs)
    def step_fails(self, job_id: str) -> None:
        seq = self._running_seq(job_id)
        if seq is not None:
            self._apply(job_id, lambda j: ops.step_failed(j, seq, {"exit_code": "1"}, self.now))

    @rule(job_id=jobs)
    def step_retries(self, job_id: str) -> None:
        seq = self._running_seq(job_id)
        if seq is not None:
            before = self.store[job_id].step(seq)
            self._apply(job_id, lambda j: ops.step_retrying(j, seq, {}, self.now))
            after = self.store[job_id].step(seq)
            assert after.state is State.RUNNING and after.attempts == before.attempts + 1

    @rule(job_id=jobs)
    def resume(self, job_id: str) -> None:
        if job_id in self.store:
            self._operation(job_id, Operation.RESUME, lambda j: ops.resume(j, self.now))

    @rule(job_id=jobs)
    def discard(self, job_id: str) -> None:
        if job_id in self.store:
            self._operation(job_id, Operation.DISCARD, lambda j: ops.discard(j, self.now))

    @rule(job_id=jobs)
    def pause(self, job_id: str) -> None:
        if job_id in self.store:
            self._operation(job_id, Operation.PAUSE, lambda j: ops.pause(j, self.now))

    @rule(job_id=jobs)
    def restart(self, job_id: str) -> None:
        if job_id in self.store:
            self._operation(job_id, Operation.RESTART, lambda j: ops.restart(j, self.now))

    @rule(job_id=jobs, seq=st.integers(0, 4))
    def rollback(self, job_id: str, seq: int) -> None:
        job = self.store.get(job_id)
        if job is None or seq >= len(job.steps):
            return
        if self._operation(job_id, Operation.ROLLBACK, lambda j: ops.rollback(j, seq, self.now)):
            for step in self.store[job_id].steps[seq:]:
                assert step.state is State.READY and step.info == {}
                # SPEC §7: attempt numbers grow over the job's whole life, never reset
                assert step.attempts == job.step(step.sequence).attempts

    @rule(job_id=consumes(jobs))
    def drop(self, job_id: str) -> None:
        if job_id not in self.store:
            return
        allowed = self.store[job_id].state in OPERATION_ALLOWED_FROM[Operation.DROP]
        try:
            decision = ops.drop(self.store[job_id])
        except OperationNotAllowed:
            assert not allowed
            return
        assert allowed and decision.effects == (ops.DeleteJob(job_id),)
        del self.store[job_id]

    @rule()
    def crash_and_restart(self) -> None:
        for job_id in list(self.store):
            self._apply(job_id, lambda j: ops.recover(j, self.now))
            job = self.store[job_id]
            assert job.state is not State.RUNNING
            assert all(s.state is not State.RUNNING for s in job.steps)

    # -- invariants (SPEC §2, §3) ---------------------------------------------------------

    @invariant()
    def shape_holds(self) -> None:
        for job in self.store.values():
            running = [s for s in job.steps if s.state is State.RUNNING]
            assert len(running) <= 1
            assert (job.state is State.RUNNING) == bool(running)
            if job.state is State.SUCCEED:
                assert all(s.state is State.SUCCEED for s in job.steps)
                assert job.end_time
            if job.state is State.DISCARDED:
                assert all(s.state in (State.SUCCEED, State.DISCARDED) for s in job.steps)

    @invariant()
    def derived_fields_follow_spec(self) -> None:
        for job in self.store.values():
            done = sum(1 for s in job.steps if s.state is State.SUCCEED)
            assert job.progress == 100.0 * done / len(job.steps)
            expected = 0
            if job.start_time:
                end = job.end_time or self.now
                expected = max(0, end - job.start_time - job.interrupt_time) // 1000
            assert job.duration_s(self.now) == expected
            waited = 0
            for s in job.steps:
                if s.state is not State.SUCCEED:
                    break
                if s.spec.family is Family.MAPREDUCE:
                    waited += s.wait_time
            assert job.mr_waiting_s == waited // 1000
            for s in job.steps:
                assert s.id == f"{job.id}-{s.sequence:02d}"


CoreMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestCoreMachine = CoreMachine.TestCase
