"""The MapReduce family, simulated: one YARN-like application per step attempt.

An application is submitted, waits ACCEPTED in the queue (``mapReduceWaitTime``), runs
(``map N% reduce M%``), then SUCCEEDED, FAILED, or KILLED when the step is cancelled. Its record
(ids, when it leaves the queue and finishes on the engine clock, its final status, the step's
retry count) is made durable in the step's info before it is reported or waited for, so that
after a crash the next engine knows what became of it (``engine.core.applications``): it
re-attaches to one still running and waits out only the rest, ends the step at once with the
recorded status of one that ended while no engine watched, and submits a new one only when the
old one was killed or never recorded: two applications of one step never run (SPEC §2.3).

Real MapReduce is not supported: there is no cluster to submit to (see ``UnsupportedExecutor``).
A profile with ``output_lines = 0`` makes the step quiet: info only, no output lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import anyio

from engine.core import applications as apps
from engine.core.applications import APP_ID, EXPECTED_FINISH, EXPECTED_START, JOB_ID, Fate
from engine.core.errors import StepFailure
from engine.logging import get_logger
from steps.base import StepContext, StepResult
from steps.simulated import duration, failure_kind, queue_wait, should_fail, spend

log = get_logger()

#: the info keys of the record are engine.core.applications'; named here too for callers
__all__ = [
    "APP_ID", "EXPECTED_FINISH", "EXPECTED_START", "JOB_ID", "App", "MapReduceExecutor",
    "SimulatedYarn",
]  # fmt: skip

TRACKING_URL: Final = "yarn_application_tracking_url"
WAIT_TIME: Final = "mapReduceWaitTime"
FAILURE_KIND: Final = "MapReduceFailed"
#: how long a cancelled step may spend recording its application's kill (the store may refuse)
KILL_RECORD_S: Final = 2.0

#: (map %, reduce %) reported while RUNNING, evenly spread over the run
PROGRESS: Final = ((0, 0), (20, 0), (50, 0), (80, 0), (100, 0), (100, 40), (100, 100))
_LOG: Final = "INFO mapreduce.Job: "


@dataclass(frozen=True, slots=True)
class App:
    """A simulated application and its timeline on the engine's clock (epoch ms)."""

    app_id: str
    job_id: str
    submitted: int
    start: int  #: leaves the queue (RUNNING)
    finish: int  #: ends
    tracking_url: str
    status: str | None = apps.SUCCEEDED  #: how it ends unless killed (None: an older record)
    retry: int | None = None  #: the step's retry count at its submission

    @property
    def fails(self) -> bool:
        """Whether it ends FAILED."""
        return self.status == apps.FAILED

    def submission_info(self) -> dict[str, str]:
        """Its record in the step's info (made durable before it is waited for)."""
        info = {
            JOB_ID: self.job_id,
            APP_ID: self.app_id,
            TRACKING_URL: self.tracking_url,
            apps.SUBMITTED: str(self.submitted),
            EXPECTED_START: str(self.start),
            EXPECTED_FINISH: str(self.finish),
        }
        if self.status is not None:
            info[apps.EXPECTED_STATUS] = self.status
        if self.retry is not None:
            info[apps.RETRY] = str(self.retry)
        return info


class SimulatedYarn:
    """The simulated cluster, one per engine: hands out application ids, remembers kills.

    Ids are ``application_{clusterTs}_{NNNN}`` with ``clusterTs`` the cluster's start (given, or
    the engine clock at the first submission) and ``NNNN`` a counter: deterministic whenever the
    order of submissions is.
    """

    def __init__(self, cluster_ts: int | None = None, web_url: str = "http://localhost:8088"):
        self._cluster_ts = cluster_ts
        self._web_url = web_url.rstrip("/")
        self._counter = 0
        self._killed: dict[str, int] = {}  #: app id -> its planned finish (pruned after it)

    def submit(
        self, now: int, queue_ms: int, run_ms: int, failing: bool = False, retry: int = 0
    ) -> App:
        """A new application submitted at ``now`` (it ends FAILED when ``failing``)."""
        if self._cluster_ts is None:
            self._cluster_ts = now
        self._counter += 1
        suffix = f"{self._cluster_ts}_{self._counter:04d}"
        start, finish = now + queue_ms, now + run_ms + queue_ms
        status = apps.FAILED if failing else apps.SUCCEEDED
        app_id, job_id = f"application_{suffix}", f"job_{suffix}"
        return App(app_id, job_id, now, start, finish, self._url(app_id), status, retry)

    def app(self, recorded: apps.Recorded) -> App:
        """The application of this cluster that a step's info recorded."""
        r = recorded
        url = self._url(r.app_id)
        return App(r.app_id, r.job_id, r.submitted, r.start, r.finish, url, r.status, r.retry)

    def _url(self, app_id: str) -> str:
        return f"{self._web_url}/proxy/{app_id}/"

    def kill(self, app: App, now: int) -> None:
        """Mark ``app`` killed: it can no longer be re-attached to."""
        self._killed = {a: f for a, f in self._killed.items() if f > now}
        self._killed[app.app_id] = app.finish

    def is_killed(self, app_id: str) -> bool:
        """Whether this cluster killed the application."""
        return app_id in self._killed


class MapReduceExecutor:
    """Simulated MR steps on a ``SimulatedYarn``."""

    def __init__(self, yarn: SimulatedYarn | None = None) -> None:
        self.yarn = yarn if yarn is not None else SimulatedYarn()

    async def run(self, ctx: StepContext) -> StepResult:
        """Submit (or re-attach, or end as recorded), wait in the queue, run, then succeed or
        raise ``StepFailure``."""
        now = ctx.clock.now_ms()
        recorded = apps.recorded(ctx.previous_info)
        killed = recorded is not None and self.yarn.is_killed(recorded.app_id)
        fate = apps.fate(recorded, now, killed, ctx.step.retries)
        if recorded is None or fate is Fate.SUBMIT:
            run_s = duration(ctx.profile, ctx.rng)
            failing = should_fail(ctx.profile, ctx.step, ctx.rng)
            queue_s = queue_wait(ctx.profile, ctx.rng)
            queue_ms, run_ms = _clock_ms(ctx, queue_s), _clock_ms(ctx, run_s)
            app = self.yarn.submit(now, queue_ms, run_ms, failing, ctx.step.retries)
        else:
            app = self.yarn.app(recorded)
            # a record from before final statuses: the profile decides, as it always did
            failing = (
                app.fails if app.status is not None else should_fail(ctx.profile, ctx.step, ctx.rng)
            )
            log.info(
                "kjobs.mapreduce.reattached", job_id=ctx.job_id, app_id=app.app_id, fate=fate.value
            )
        run = _Run(ctx, app, failing, quiet=ctx.profile.output_lines <= 0)
        try:
            if fate is Fate.ENDED:
                return await run.ended()
            return await run.go(reattached=fate is Fate.ATTACH)
        except anyio.get_cancelled_exc_class():
            await self._kill(ctx, app)
            raise

    async def _kill(self, ctx: StepContext, app: App) -> None:
        """Kill ``app``: remembered here, and recorded in the step's info where the store still
        takes it (a shutdown's: the next engine must not re-attach to a killed application;
        a pause's or discard's is refused, the step no longer runs, and nothing re-attaches)."""
        self.yarn.kill(app, ctx.clock.now_ms())
        ctx.output.write(f"Killed application {app.app_id}\n")
        log.info("kjobs.mapreduce.killed", job_id=ctx.job_id, app_id=app.app_id)
        with anyio.move_on_after(KILL_RECORD_S, shield=True):
            try:
                await ctx.info.update({apps.EXPECTED_STATUS: apps.KILLED})
            except Exception as exc:  # the step was paused, discarded or lost: nothing to mark
                log.debug("kjobs.mapreduce.kill_unrecorded", app_id=app.app_id, reason=str(exc))


class _Run:
    """One attempt's walk through the application's phases."""

    def __init__(self, ctx: StepContext, app: App, failing: bool, quiet: bool) -> None:
        self.ctx = ctx
        self.app = app
        self.failing = failing
        self.quiet = quiet

    async def go(self, reattached: bool) -> StepResult:
        """ACCEPTED (unless the wait is over), RUNNING, then SUCCEEDED (or FAILED: raises)."""
        ctx, app = self.ctx, self.app
        now = ctx.clock.now_ms()
        info = app.submission_info()
        wait_ms = self._known_wait(now, reattached)
        if wait_ms is not None:
            info[WAIT_TIME] = str(wait_ms)
        # durable before it is reported or waited for: a crash from here on finds it
        await ctx.info.update(info, wait_time_ms=wait_ms)
        self._submitted_lines(reattached)
        if wait_ms is None:
            await ctx.simulate(_sim_seconds(ctx, app.start - now))
            wait_ms = app.start - app.submitted
            await ctx.info.update({WAIT_TIME: str(wait_ms)}, wait_time_ms=wait_ms)
        await self._running(max(now, app.start))
        return self._succeeded()

    async def ended(self) -> StepResult:
        """It ended while no engine watched: the step ends now, with its recorded status."""
        ctx, app = self.ctx, self.app
        known = self._known_wait(ctx.clock.now_ms(), reattached=True)
        wait_ms = 0 if known is None else known  # never None: it left the queue long ago
        await ctx.info.update({**app.submission_info(), WAIT_TIME: str(wait_ms)}, wait_ms)
        if not self.quiet:
            ctx.output.write(
                f"Application {app.app_id} ended {app.status} while no engine watched it\n"
            )
        if self.failing:
            raise self._failed()
        return self._succeeded()

    def _known_wait(self, now: int, reattached: bool) -> int | None:
        """The queue wait when it is over already (or zero); None while still ACCEPTED."""
        if now < self.app.start:
            return None
        prev = self.ctx.previous_info
        if reattached and prev is not None and WAIT_TIME in prev:
            return _int(prev[WAIT_TIME], default=0)
        return self.app.start - self.app.submitted

    def _submitted_lines(self, reattached: bool) -> None:
        if self.quiet:
            return
        app, write = self.app, self.ctx.output.write
        if reattached:
            write(f"Re-attached to application {app.app_id}\n")
        else:
            write("INFO mapreduce.JobSubmitter: number of splits:1\n")
            write(f"INFO impl.YarnClientImpl: Submitted application {app.app_id}\n")
        write(f"{_LOG}The url to track the job: {app.tracking_url}\n")
        write(f"{_LOG}Running job: {app.job_id}\n")

    async def _running(self, since: int) -> None:
        """RUNNING from ``since`` to the finish; stops early (FAILED) when failing."""
        ctx, app = self.ctx, self.app
        total = max(1, app.finish - app.start)
        first = min(len(PROGRESS) - 1, (len(PROGRESS) - 1) * (since - app.start) // total)
        points = PROGRESS[first:]
        seconds = _sim_seconds(ctx, app.finish - since)
        if self.failing:
            cut = ctx.rng.randint(1, len(points))
            seconds *= cut / len(points)
            points = points[:cut]
        lines: list[str] = []
        if not self.quiet:
            lines = [f"{_LOG} map {m}% reduce {r}%\n" for m, r in points]
            ctx.output.write(f"{_LOG}Job {app.job_id} running in uber mode : false\n")
        await spend(ctx, seconds, lines)
        if self.failing:
            raise self._failed()

    def _failed(self) -> StepFailure:
        app, tail = self.app, self.app.app_id.removeprefix("application_")
        message = (
            f"Job {app.job_id} failed with state FAILED due to: Task failed task_{tail}_m_000000"
        )
        if not self.quiet:
            self.ctx.output.write(f"{_LOG}{message}\n")
        return StepFailure(message, kind=failure_kind(self.ctx.profile, FAILURE_KIND))

    def _succeeded(self) -> StepResult:
        ctx, rng = self.ctx, self.ctx.rng
        records = rng.randint(
            ctx.profile.records_min, max(ctx.profile.records_min, ctx.profile.records_max)
        )
        size = records * rng.randint(40, 400)
        written = int(size * rng.uniform(0.2, 0.9))
        if not self.quiet:
            _counters(ctx, self.app, records, size, written)
        return StepResult(
            info={
                "source_records_count": str(records),
                "source_records_size": str(size),
                "hdfs_bytes_written": str(written),
            }
        )


def _counters(ctx: StepContext, app: App, records: int, size: int, written: int) -> None:
    """Hadoop's closing lines and counters block."""
    ctx.output.write(
        f"{_LOG}Job {app.job_id} completed successfully\n"
        f"{_LOG}Counters: 4\n"
        "\tFile System Counters\n"
        f"\t\tHDFS: Number of bytes read={size}\n"
        f"\t\tHDFS: Number of bytes written={written}\n"
        "\tMap-Reduce Framework\n"
        f"\t\tMap input records={records}\n"
        f"\t\tMap output records={records}\n"
    )


def _clock_ms(ctx: StepContext, simulated_seconds: float) -> int:
    """Milliseconds of the engine clock that ``simulated_seconds`` of work take."""
    if ctx.time_scale <= 0:
        return 0
    return round(simulated_seconds / ctx.time_scale * 1000)


def _sim_seconds(ctx: StepContext, clock_ms: int) -> float:
    """Simulated seconds that take ``clock_ms`` of the engine clock (inverse of ``_clock_ms``)."""
    if clock_ms <= 0 or ctx.time_scale <= 0:
        return 0.0
    return clock_ms / 1000 * ctx.time_scale


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
