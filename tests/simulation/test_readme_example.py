"""Property: whatever a user does to jobs, kjobs keeps Kylin's rules (the README's example)."""

import anyio
from hypothesis import given, settings

from engine import State
from engine.core.states import can_transition
from engine.testing import Op, operations, virtual_engine

ENDED = {State.SUCCEED, State.ERROR, State.STOPPED, State.DISCARDED}


@settings(max_examples=25, deadline=None)
@given(ops=operations(max_size=10))
def test_any_sequence_of_operations_keeps_kylins_rules(ops: list[Op]) -> None:
    async def scenario() -> None:
        async with virtual_engine(seed=7) as sim:
            for op in ops:  # submit / pause / resume / discard / restart / advance
                await sim.apply(op)
            await sim.advance(6 * 3600)  # six quiet hours: everything that can end, ends

            for change in sim.transitions:  # every stored change is one SPEC §1 allows
                assert can_transition(change.old, change.new), change
            for job_id in sim.submitted:
                job = await sim.engine.get(job_id)
                assert job.state in ENDED, job.state  # nothing is left hanging
                if job.state is State.SUCCEED:
                    assert job.progress == 100.0 and job.end_time >= job.start_time
                if job.state is State.DISCARDED:
                    assert all(step.state.is_final for step in job.steps)

    anyio.run(scenario)
