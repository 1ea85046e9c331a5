"""The catalog (SPEC §7): its records (``model.py``), its loading from ``config/`` (``load.py``)
and job templates expanded into steps (``templates.py``)."""

from engine.catalog.model import (
    Catalog,
    Column,
    Cube,
    CubeDimension,
    Join,
    Lookup,
    Measure,
    Model,
    ModelDimension,
    PartitionDesc,
    Project,
    StreamingModel,
    Table,
    step_profile,
)

__all__ = [
    "Catalog",
    "Column",
    "Cube",
    "CubeDimension",
    "Join",
    "Lookup",
    "Measure",
    "Model",
    "ModelDimension",
    "PartitionDesc",
    "Project",
    "StreamingModel",
    "Table",
    "step_profile",
]
