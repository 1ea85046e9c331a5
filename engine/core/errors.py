"""The errors kjobs raises. Every one is a ``KjobsError``; leaves also subclass the fitting builtin.

::

    KjobsError
    ├── NotFoundError (LookupError)
    │   ├── JobNotFound            unknown job id
    │   ├── StepNotFound           unknown step id of a known job
    │   └── CatalogNotFound        unknown cube, model or project
    │       ├── SegmentNotFound    unknown segment of a cube
    │       └── ScheduleNotFound   unknown schedule name
    ├── InvalidRequest (ValueError)   a bad parameter or body
    │   └── InvalidStreamingParameter  one Kylin answers with its own code (``error_code``)
    ├── ConfigError (ValueError)      a config file or value that cannot be used
    ├── NotAllowed                    the operation is not allowed in the current state
    │   ├── OperationNotAllowed        batch: (operation, state) is not in SPEC §2.1
    │   ├── IllegalTransition          a state change outside the table of SPEC §1
    │   ├── StreamingActionNotAllowed  streaming: e.g. START of a started job
    │   ├── ModelBroken                streaming: START of a broken model
    │   ├── SegmentsOverlap            a build whose range overlaps a NEW or READY segment
    │   └── ScheduleExists             a new schedule whose name is taken
    ├── ConcurrentModification        a write lost the race on a job's version (store level)
    ├── LeaseLost                     a runner's fencing token is stale: another node owns the job
    ├── StoreError                    the store cannot do what was asked
    │   ├── StoreRefused (OSError)     refused at start-up: the file cannot be a kjobs store
    │   ├── StoreUnavailable (OSError) a write failed (disk full, I/O error, locked too long)
    │   └── StoreBroken                the store failed so that the engine cannot go on
    └── StepFailure                    raised by executors: a step failed (kind = retry class)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final


class KjobsError(Exception):
    """Root of every error kjobs raises on purpose."""


class NotFoundError(KjobsError, LookupError):
    """Something named in a request does not exist."""


class JobNotFound(NotFoundError):
    """No job has this id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"Cannot find job '{job_id}'")
        self.job_id = job_id


class StepNotFound(NotFoundError):
    """The job has no step with this id."""

    def __init__(self, job_id: str, step_id: str) -> None:
        super().__init__(f"Cannot find step '{step_id}' of job '{job_id}'")
        self.job_id = job_id
        self.step_id = step_id


class CatalogNotFound(NotFoundError):
    """No cube, model or project has this name."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"Cannot find {kind} '{name}'")
        self.kind = kind
        self.name = name


class ScheduleNotFound(CatalogNotFound):
    """No schedule has this name."""

    def __init__(self, name: str) -> None:
        super().__init__("schedule", name)


class InvalidRequest(KjobsError, ValueError):
    """A parameter or body that cannot be accepted."""


class InvalidStreamingParameter(InvalidRequest):
    """A streaming request parameter Kylin rejects with a code of its own (the one such class).

    Build it with ``empty(name)`` (KE-010043201) or ``invalid_action()`` (KE-010043207).
    """

    PARAMETER_EMPTY: Final = "KE-010043201"  #: a required parameter is missing or empty
    INVALID_ACTION: Final = "KE-010043207"  #: an unknown streaming action

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code

    @classmethod
    def empty(cls, name: str) -> InvalidStreamingParameter:
        """Kylin's error for a required parameter that is missing or empty."""
        message = (
            f'Request parameter "{name}" is empty or value is empty. '
            "Please check the request parameters."
        )
        return cls(message, cls.PARAMETER_EMPTY)

    @classmethod
    def invalid_action(cls) -> InvalidStreamingParameter:
        """Kylin's error for an action that is not START, STOP, FORCE_STOP or RESTART."""
        message = (
            'The entered parameter "action" is invalid, only supports '
            '"START, STOP, FORCE_STOP, RESTART".'
        )
        return cls(message, cls.INVALID_ACTION)


class ConfigError(KjobsError, ValueError):
    """A config file or value that cannot be used: names the file, key and reason."""

    #: the ``key`` of an error about the whole file (not found, not TOML): left out of the text
    WHOLE_FILE = "-"

    def __init__(self, file: str, key: str, reason: str) -> None:
        where = file if key == self.WHOLE_FILE else f"{file}: {key}"
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


class NotAllowed(KjobsError):
    """The request is well formed but not allowed in the current state."""


class OperationNotAllowed(NotAllowed):
    """A batch operation asked of a job in a state that does not allow it."""

    def __init__(
        self,
        job_id: str,
        operation: str,
        state: str,
        allowed: Iterable[str],
        message: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.operation = operation
        self.state = state
        self.allowed = tuple(sorted(allowed))
        super().__init__(
            message
            or (
                f"Cannot {operation.lower()} job '{job_id}': it is {state}; "
                f"{operation.lower()} is allowed from {', '.join(self.allowed) or 'no state'}"
            )
        )


class IllegalTransition(NotAllowed):
    """A state change the table of SPEC §1 does not have."""

    def __init__(self, subject: str, old: str, new: str) -> None:
        super().__init__(f"Illegal transition of {subject}: {old} -> {new}")
        self.subject = subject
        self.old = old
        self.new = new


class StreamingActionNotAllowed(NotAllowed):
    """A streaming action refused in the job's current status."""

    def __init__(self, job_id: str, action: str, status: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.action = action
        self.status = status


class ModelBroken(NotAllowed):
    """START of a streaming job whose model is broken."""

    def __init__(self, model_alias: str) -> None:
        super().__init__(f'Can\'t start. Model "{model_alias}" is currently broken.')
        self.model_alias = model_alias


class SegmentsOverlap(NotAllowed):
    """A build whose range overlaps a NEW or READY segment of the cube.

    The message says what to do instead: build the free range after the cube's last segment
    (``free_from``; None when the segments reach the end of time), REFRESH the segment, or
    delete it.
    """

    def __init__(
        self,
        cube: str,
        new_range: tuple[int, int],
        existing: str,
        existing_range: tuple[int, int] | None = None,
        free_from: int | None = None,
    ) -> None:
        free = (
            f"the free range starts at {free_from} (after the last segment)"
            if free_from is not None
            else "no range is free after the last segment"
        )
        refresh = (
            f"REFRESH [{existing_range[0]}, {existing_range[1]}) rebuilds it"
            if existing_range is not None
            else "REFRESH rebuilds it"
        )
        super().__init__(
            f"Segments overlap: cube '{cube}' already has segment {existing} overlapping "
            f"[{new_range[0]}, {new_range[1]}); {free}; {refresh}; or delete it first "
            f"(DELETE /kylin/api/cubes/{cube}/segs/{existing}, `kjobs purge {cube}` for all)"
        )
        self.cube = cube
        self.existing = existing
        self.free_from = free_from


class SegmentNotFound(CatalogNotFound):
    """The cube has no segment of this name."""

    def __init__(self, cube: str, name: str) -> None:
        KjobsError.__init__(self, f"Cannot find segment '{name}' of cube '{cube}'")
        self.kind = "segment"
        self.name = name
        self.cube = cube


class ScheduleExists(NotAllowed):
    """A schedule of this name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"A schedule named '{name}' already exists")
        self.name = name


class ConcurrentModification(KjobsError):
    """A write carried a stale version: another writer changed the record first."""

    def __init__(self, record_id: str, expected_version: int) -> None:
        super().__init__(f"'{record_id}' changed since version {expected_version}")
        self.record_id = record_id
        self.expected_version = expected_version


class LeaseLost(KjobsError):
    """A runner's write carried a stale fencing token: its lease expired or was taken away.

    The write changed nothing. The runner stops its step and never records the job's outcome
    (Kylin's KYLIN-4862 rule): another node owns the job now.
    """

    def __init__(self, job_id: str, owner: str, token: int) -> None:
        super().__init__(f"node '{owner}' lost its lease on job '{job_id}' (token {token})")
        self.job_id = job_id
        self.owner = owner
        self.token = token


class StepFailure(KjobsError):
    """An executor's report that its step failed; ``kind`` is matched by the retry policy."""

    def __init__(self, message: str, kind: str = "StepFailure", info: dict[str, str] | None = None):
        super().__init__(message)
        self.kind = kind
        self.info = dict(info or {})


class StoreError(KjobsError):
    """The store cannot do what was asked."""


class StoreRefused(StoreError, OSError):
    """A store refused at start-up, before anything is written to it: names the path and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"store {path}: {reason}")
        self.path = path
        self.reason = reason


class StoreUnavailable(StoreError, OSError):
    """A write the store did not accept (disk full, I/O error, locked too long): try later."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The job store refuses writes ({reason}); try again later")
        self.reason = reason


class StoreBroken(StoreError):
    """The store failed in a way the engine cannot recover from (it must stop)."""
