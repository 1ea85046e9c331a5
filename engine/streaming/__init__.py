"""Kylin 5 streaming jobs at run time: the service (``service.py``), the per-job runtime
(``runtime.py``), the build and merge loops (``loops.py``), the simulated source
(``source.py``) and the list query (``query.py``)."""

from engine.streaming.service import StreamingService

__all__ = ["StreamingService"]
