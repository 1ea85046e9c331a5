"""kjobs: an asynchronous job engine that runs and simulates the Apache Kylin job workflow.

The public API, re-exported; see ``engine.facade.Engine`` to start.
"""

import importlib
from typing import TYPE_CHECKING, Any

from engine.clock import Clock, SystemClock
from engine.core.errors import (
    CatalogNotFound,
    ConcurrentModification,
    ConfigError,
    IllegalTransition,
    InvalidRequest,
    JobNotFound,
    KjobsError,
    ModelBroken,
    NotAllowed,
    NotFoundError,
    OperationNotAllowed,
    SegmentsOverlap,
    StepFailure,
    StepNotFound,
    StreamingActionNotAllowed,
)
from engine.core.jobs import Family, Job, Mode, Segment, Step, StepSpec
from engine.core.states import (
    BuildType,
    JobStatus,
    SegmentStatus,
    State,
    StreamingAction,
    StreamingStatus,
)

if TYPE_CHECKING:
    from engine.batch.output import StepOutput
    from engine.events import Event, JobChanged, OutputLine, StepChanged, StreamingChanged
    from engine.facade import Engine
    from engine.store.ports import JobFilter

# The runtime half of the API loads on first use, so that importing the pure core (or an
# executor) never drags in the scheduler, the store and the config loader.
_LAZY = {
    "Engine": "engine.facade",
    "StepOutput": "engine.batch.output",
    "Event": "engine.events",
    "JobChanged": "engine.events",
    "StepChanged": "engine.events",
    "OutputLine": "engine.events",
    "StreamingChanged": "engine.events",
    "JobFilter": "engine.store.ports",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BuildType",
    "CatalogNotFound",
    "Clock",
    "ConcurrentModification",
    "ConfigError",
    "Engine",
    "Event",
    "Family",
    "IllegalTransition",
    "InvalidRequest",
    "Job",
    "JobChanged",
    "JobFilter",
    "JobNotFound",
    "JobStatus",
    "KjobsError",
    "Mode",
    "ModelBroken",
    "NotAllowed",
    "NotFoundError",
    "OperationNotAllowed",
    "OutputLine",
    "Segment",
    "SegmentStatus",
    "SegmentsOverlap",
    "State",
    "Step",
    "StepChanged",
    "StepFailure",
    "StepNotFound",
    "StepOutput",
    "StepSpec",
    "StreamingAction",
    "StreamingActionNotAllowed",
    "StreamingChanged",
    "StreamingStatus",
    "SystemClock",
]
