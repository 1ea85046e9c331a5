"""Counters of ``engine.ops`` (notifications, retention, schedules), for logs and metrics.

Plain integers the engine bumps; ``samples()`` lists them as Prometheus-style samples so that
the ``/metrics`` endpoint can expose them with a custom collector (no job id is a label).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class OpsStats:
    """What the notifier, the hooks, the sweep and the schedules did since the engine started."""

    notifications_sent: int = 0  #: POSTs the receiver accepted (2xx)
    notification_failures: int = 0  #: failed or timed-out attempts that will be retried
    notifications_given_up: int = 0  #: notifications whose last retry failed
    hook_errors: int = 0  #: ``on_job_end`` callbacks that raised
    sweeps: int = 0  #: retention sweeps run
    jobs_swept: int = 0  #: jobs the retention sweep deleted
    schedule_runs: int = 0  #: jobs created by schedules
    schedule_skips: int = 0  #: slots skipped (overlap skip, catch-up none)

    def samples(self) -> list[tuple[str, str, dict[str, str], float]]:
        """``(name, help, labels, value)`` rows: counters, names ending in ``_total``."""
        notify = "kjobs_notifications_total"
        notify_help = "Job-end notification attempts by result"
        runs = "kjobs_schedule_runs_total"
        runs_help = "Schedule slots by outcome"
        return [
            (notify, notify_help, {"result": "sent"}, self.notifications_sent),
            (notify, notify_help, {"result": "failed"}, self.notification_failures),
            (notify, notify_help, {"result": "given_up"}, self.notifications_given_up),
            ("kjobs_job_end_hook_errors_total", "on_job_end callbacks that raised", {},
             self.hook_errors),
            ("kjobs_retention_sweeps_total", "Retention sweeps run", {}, self.sweeps),
            ("kjobs_retention_swept_jobs_total", "Jobs deleted by the retention sweep", {},
             self.jobs_swept),
            (runs, runs_help, {"result": "fired"}, self.schedule_runs),
            (runs, runs_help, {"result": "skipped"}, self.schedule_skips),
        ]  # fmt: skip
