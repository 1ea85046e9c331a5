"""The event log of a simulated run: every state change and action, in order (``events.jsonl``).

``Recorder`` watches the run's stores (every durable write of a batch or streaming job) and the
streaming service's status changes, and the runner reports its own actions to it. Each record
is a flat JSON object with a fixed key order, one per line::

    {"t":1704067230000,"at":"00:00:30.000","kind":"step","job":"…","step":2,
     "name":"Extract Fact Table Distinct Columns","state":"RUNNING"}

``t`` is the virtual time (epoch ms) and ``at`` the time since the start. Kinds:

==========  ===================================================================================
simulation  the first line: scenario, seed, start, end
action      an action the scenario or the operator takes (SUBMIT, PAUSE, RESUME, DISCARD,
            RESTART, START, STOP, FORCE_STOP), before it is taken
refused     the action just before was refused (``reason``)
skipped     a scenario action found no job it could be taken on (``reason``)
job         a batch job was created (with its cube, type, segment and step names) or changed
            state; ``from`` is the previous state
step        a step changed state (``from`` its previous one); a step that stops running
            carries its MR queue wait (``wait_ms``)
retry       a failed step attempt is retried automatically (the step stays RUNNING)
dropped     a job was dropped
streaming   a streaming job's status changed (``cause``: the action or event)
batch       a streaming micro-batch wrote its results (``rows``, ``latency_ms`` = its
            ``max_data_latency``; a non-empty batch makes one segment)
merge       a merge pass merged ``segments`` streaming segments into one of ``layer``
end         the last line: the run reached its end time
==========  ===================================================================================

The same records feed the summary and the timeline as they are made, so neither needs the
whole log in memory, and both can be recomputed from the file alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from engine.core.jobs import Family, Job, Step
from engine.core.schedules import SCHEDULE_SUBMITTER
from engine.core.states import State
from engine.core.streaming import StreamingJob
from engine.core.timefmt import format_iso
from engine.store.ports import StreamingWrite
from engine.streaming.service import StreamingChange

Record = dict[str, Any]
_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: dumps() makes one per call
Sink = Callable[[Record], None]
JobStateListener = Callable[[Job, State | None], None]


def elapsed(ms: int) -> str:
    """``HH:MM:SS.mmm`` (hours may exceed 24)."""
    seconds, millis = divmod(max(0, ms), 1000)
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    return f"{hours:02d}:{mins:02d}:{secs:02d}.{millis:03d}"


class EventLog:
    """Numbers nothing, reorders nothing: stamps each record and hands it to every sink."""

    def __init__(self, now_ms: Callable[[], int], start_ms: int, sinks: list[Sink]) -> None:
        self._now_ms = now_ms
        self._start_ms = start_ms
        self._sinks = sinks
        self._last = (-1, "")  #: the newest (time, ``at`` text)
        self.closed = False
        self.count = 0

    def add(self, kind: str, **fields: Any) -> None:
        """Stamp a record with the virtual time and pass it on (``None`` fields are left out)."""
        if self.closed:
            return
        now = self._now_ms()
        if now != self._last[0]:  # records come in bursts at one virtual time
            self._last = (now, elapsed(now - self._start_ms))
        record: Record = {"t": now, "at": self._last[1], "kind": kind}
        for key, value in fields.items():
            if value is not None:
                record[key] = value
        self.count += 1
        for sink in self._sinks:
            sink(record)


class Recorder:
    """Turns store writes, streaming changes and actions into log records."""

    def __init__(
        self,
        log: EventLog,
        on_job_state: JobStateListener | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.log = log
        self.on_job_state = on_job_state
        self._aliases = dict(aliases or {})  #: streaming job id -> model alias
        self._jobs: dict[str, Job] = {}  # the newest stored version of each job

    # -- the runner's actions -----------------------------------------------------------------

    def action(self, action: str, **fields: Any) -> None:
        """An action about to be taken."""
        self.log.add("action", action=action, **fields)

    def refused(self, action: str, reason: str, **fields: Any) -> None:
        """The action just logged was refused."""
        self.log.add("refused", action=action, **fields, reason=reason)

    # -- batch jobs (JobObserver) ---------------------------------------------------------------

    def job_saved(self, job: Job) -> None:
        """Log what changed between the job's previous stored version and this one."""
        old = self._jobs.get(job.id)
        self._jobs[job.id] = job
        if old is None:
            scheduled = job.submitter.startswith(SCHEDULE_SUBMITTER)
            self.log.add(
                "job",
                job=job.id,
                state=job.state.value,
                cube=job.cube,
                type=job.build_type,
                segment=job.segment.name,
                steps=[s.name for s in job.steps],
                **({"schedule": job.submitter.removeprefix(SCHEDULE_SUBMITTER)} if scheduled
                   else {}),
            )  # fmt: skip
            self._tell(job, None)
            return
        for before, after in zip(old.steps, job.steps, strict=True):
            if before is not after:
                self._step_changed(job.id, before, after)
        if old.state is not job.state:
            self.log.add("job", job=job.id, state=job.state.value, **{"from": old.state.value})
            self._tell(job, old.state)

    def _step_changed(self, job_id: str, before: Step, after: Step) -> None:
        if before.state is not after.state:
            ran = before.state is State.RUNNING
            self.log.add(
                "step",
                job=job_id,
                step=after.sequence,
                name=after.name,
                state=after.state.value,
                wait_ms=_wait(after) if ran else None,
                **{"from": before.state.value},
            )
        elif after.state is State.RUNNING and after.attempts > before.attempts:
            self.log.add(
                "retry",
                job=job_id,
                step=after.sequence,
                name=after.name,
                attempt=after.attempts,
                wait_ms=_wait(before),
            )

    def job_deleted(self, job_id: str) -> None:
        """Log a drop."""
        self._jobs.pop(job_id, None)
        self.log.add("dropped", job=job_id)

    def job_swept(self, job_id: str) -> None:
        """Log a job the retention sweep deleted."""
        self._jobs.pop(job_id, None)
        self.log.add("swept", job=job_id)

    def _tell(self, job: Job, old: State | None) -> None:
        if self.on_job_state is not None and not self.log.closed:
            self.on_job_state(job, old)

    # -- streaming (StreamingObserver and the service's on_change) ------------------------------

    def streaming_saved(self, write: StreamingWrite, stored: StreamingJob) -> None:
        """Log micro-batches and merges (status changes come from ``streaming_changed``)."""
        for stats in write.stats:
            self.log.add(
                "batch",
                job=stats.job_id,
                model=self._aliases.get(stats.job_id),
                rows=stats.batch_row_num,
                latency_ms=stats.max_data_latency if stats.batch_row_num else 0,
                processing_ms=stats.processing_time,
            )
        if write.remove_segments:
            layer = max((s.layer for s in write.add_segments), default=0)
            rows = sum(s.row_count for s in write.add_segments)
            self.log.add(
                "merge",
                job=stored.uuid,
                model=self._aliases.get(stored.uuid),
                segments=len(write.remove_segments),
                rows=rows,
                layer=layer,
            )

    def streaming_changed(self, change: StreamingChange) -> None:
        """Log one status change of a streaming job."""
        self.log.add(
            "streaming",
            job=change.job_id,
            model=self._aliases.get(change.job_id),
            state=change.new.value,
            cause=change.cause,
            **{"from": change.old.value},
        )


def _wait(step: Step) -> int | None:
    """The MR queue wait of the step's latest attempt (None for other steps)."""
    if step.spec.family is not Family.MAPREDUCE:
        return None
    return step.wait_time


class JsonlSink:
    """Writes records as JSON lines and hashes exactly the bytes written.

    Lines are kept and written (and hashed) ``BATCH`` at a time: one encode, one write and one
    hash update per batch instead of per record (the hash of the file is the same).
    """

    BATCH = 2048

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("wb")
        self._hash = hashlib.sha256()
        self._lines: list[str] = []

    def __call__(self, record: Record) -> None:
        """Write one record (buffered)."""
        self._lines.append(_encode(record))
        if len(self._lines) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            data = ("\n".join(self._lines) + "\n").encode()
            self._lines = []
            self._file.write(data)
            self._hash.update(data)

    def close(self) -> str:
        """Write what is buffered, close the file; the sha256 of its contents."""
        self._flush()
        self._file.close()
        return self._hash.hexdigest()


def header(scenario: str, seed: int, start_ms: int, end_ms: int) -> Record:
    """The fields of the ``simulation`` record."""
    return {
        "scenario": scenario,
        "seed": seed,
        "start": format_iso(start_ms),
        "end": format_iso(end_ms),
    }
