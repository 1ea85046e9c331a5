"""The catalog (SPEC §7): projects, tables, models, cubes and streaming models, the executor
profiles and job templates, and the expansion of a cube's template into a job's steps.

Records are frozen; ``engine.catalog.load`` builds them from ``config/`` and checks that they
agree with each other. Names are looked up case-insensitively, as Kylin's metadata caches do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from engine.catalog.schedules import ScheduleSpec
from engine.catalog.templates import Template, TemplateStep, expand_template
from engine.core import cubing
from engine.core.errors import CatalogNotFound, InvalidRequest
from engine.core.jobs import Family, Segment, StepSpec
from engine.core.segments import BUILD_TYPES
from engine.core.timefmt import format_utc
from steps.base import Profile

# -- tables and models -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A column and its Hive type."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class Table:
    """A source table of a project (``GET /tables_and_columns``)."""

    project: str
    schema: str
    name: str
    columns: tuple[Column, ...]

    @property
    def full_name(self) -> str:
        """``SCHEMA.TABLE``."""
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column | None:
        """The column called ``name`` (case-insensitive), or None."""
        return next((c for c in self.columns if c.name.upper() == name.upper()), None)


@dataclass(frozen=True, slots=True)
class Project:
    """A project: the namespace of models, cubes and streaming models."""

    uuid: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Join:
    """How a lookup joins: ``foreign_key[i] = primary_key[i]`` (``ALIAS.COLUMN`` each)."""

    type: str  #: inner / left
    primary_key: tuple[str, ...]
    foreign_key: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Lookup:
    """A lookup table of a model."""

    table: str  #: SCHEMA.TABLE
    alias: str
    join: Join


@dataclass(frozen=True, slots=True)
class ModelDimension:
    """The columns of one table (by alias) that a model offers as dimensions."""

    table: str  #: alias of the fact table or of a lookup
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PartitionDesc:
    """The model's time partition column (Kylin's ``partition_desc``)."""

    column: str  #: ALIAS.COLUMN
    date_format: str = "yyyy-MM-dd"
    type: str = "APPEND"


@dataclass(frozen=True, slots=True)
class Model:
    """A data model: a fact table, its lookups, the dimensions and metrics it offers."""

    uuid: str
    name: str
    project: str
    fact_table: str  #: SCHEMA.TABLE; its alias is the table name
    lookups: tuple[Lookup, ...] = ()
    dimensions: tuple[ModelDimension, ...] = ()
    metrics: tuple[str, ...] = ()  #: ALIAS.COLUMN
    partition: PartitionDesc | None = None
    description: str = ""

    @property
    def fact_alias(self) -> str:
        """The fact table's alias: its name without the schema (Kylin's rule)."""
        return self.fact_table.rsplit(".", 1)[-1]

    @property
    def aliases(self) -> dict[str, str]:
        """alias -> SCHEMA.TABLE for the fact table and every lookup."""
        return {self.fact_alias: self.fact_table, **{lk.alias: lk.table for lk in self.lookups}}


# -- cubes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CubeDimension:
    """A dimension of a cube: a column of the fact table or of a lookup (by alias)."""

    name: str
    table: str  #: alias
    column: str
    derived: bool = False  #: derived from a lookup's key: not part of the row key


@dataclass(frozen=True, slots=True)
class Measure:
    """A measure: ``expression(parameter)`` (``COUNT(1)``, ``SUM(KYLIN_SALES.PRICE)``, ...)."""

    name: str
    expression: str
    parameter_type: str  #: constant / column
    parameter_value: str
    returntype: str


@dataclass(frozen=True, slots=True)
class Cube:
    """A cube: what a BUILD, MERGE or REFRESH job works on."""

    uuid: str
    name: str
    project: str
    model: str
    dimensions: tuple[CubeDimension, ...]
    measures: tuple[Measure, ...]
    #: L, the number of "Build N-Dimension Cuboid" levels (``engine.catalog.load.cuboid_levels``)
    cuboid_levels: int
    templates: Mapping[str, str]  #: build type -> template name
    #: profile overrides by step name; the expanded name ("... : level 2") wins over the
    #: template's name ("... : level {level}")
    step_profiles: Mapping[str, str] = field(default_factory=dict)
    mr_profile: str | None = None  #: the profile of every MR step without a step override
    description: str = ""


# -- streaming --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamingModel:
    """A Kylin 5 streaming model with a simulated Kafka source (SPEC §5)."""

    model_id: str
    alias: str
    project: str
    fact_table: str  #: SCHEMA.TABLE
    topic: str  #: ``subscribe``
    partition: PartitionDesc
    params: Mapping[str, str] = field(default_factory=dict)  #: overrides for both jobs
    rate_per_s: float = 100.0  #: simulated messages per second
    lag_s: float = 0.0  #: event time trails arrival time by this much
    broken: bool = False  #: ``model_broken``: START is refused
    fail_first_launches: int = 0  #: launches that fail (LAUNCHING_ERROR) before one succeeds
    model_indexes: int = 1
    owner: str = "ADMIN"
    description: str = ""

    @property
    def uuid(self) -> str:
        """Kylin calls the model id ``uuid`` too."""
        return self.model_id


# -- the catalog ------------------------------------------------------------------------------

R = TypeVar("R")
#: the profile of steps that name none and of the engine's own ad-hoc steps
DEFAULT_PROFILE = Profile()


@dataclass(frozen=True)
class Catalog:
    """Everything config says about the cubes and streaming models kjobs can run."""

    projects: tuple[Project, ...] = ()
    tables: tuple[Table, ...] = ()
    models: tuple[Model, ...] = ()
    cubes: tuple[Cube, ...] = ()
    streaming_models: tuple[StreamingModel, ...] = ()
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    templates: Mapping[str, Template] = field(default_factory=dict)
    schedules: tuple[ScheduleSpec, ...] = ()  #: ``[[schedules]]`` (SPEC §11)
    _by_name: Mapping[str, Mapping[str, object]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        streaming = {m.model_id.lower(): m for m in self.streaming_models}
        streaming.update((m.alias.lower(), m) for m in self.streaming_models)
        index: dict[str, Mapping[str, object]] = {
            "project": {p.name.lower(): p for p in self.projects},
            "model": {m.name.lower(): m for m in self.models},
            "cube": {c.name.lower(): c for c in self.cubes},
            "table": {t.full_name.lower(): t for t in self.tables},
            "streaming model": streaming,
        }
        object.__setattr__(self, "_by_name", index)

    def _find(self, kind: str, name: str, cls: type[R]) -> R:
        found = self._by_name[kind].get(name.lower())
        if not isinstance(found, cls):
            raise CatalogNotFound(kind, name)
        return found

    def project(self, name: str) -> Project:
        """The project called ``name``; ``CatalogNotFound`` when there is none."""
        return self._find("project", name, Project)

    def model(self, name: str) -> Model:
        """The model called ``name``; ``CatalogNotFound`` when there is none."""
        return self._find("model", name, Model)

    def cube(self, name: str) -> Cube:
        """The cube called ``name``; ``CatalogNotFound`` when there is none."""
        return self._find("cube", name, Cube)

    def table(self, full_name: str) -> Table:
        """The table ``SCHEMA.TABLE``; ``CatalogNotFound`` when there is none."""
        return self._find("table", full_name, Table)

    def streaming_model(self, alias_or_id: str) -> StreamingModel:
        """The streaming model with this alias or model id; ``CatalogNotFound`` otherwise."""
        return self._find("streaming model", alias_or_id, StreamingModel)

    def profile(self, name: str) -> Profile:
        """The executor profile ``name`` ("default" always exists)."""
        if name in self.profiles:
            return self.profiles[name]
        if name == DEFAULT_PROFILE.name:
            return DEFAULT_PROFILE
        raise CatalogNotFound("profile", name)

    def template(self, name: str) -> Template:
        """The job template ``name``; ``CatalogNotFound`` when there is none."""
        if name not in self.templates:
            raise CatalogNotFound("template", name)
        return self.templates[name]

    def cubes_of(self, project: str | None = None) -> tuple[Cube, ...]:
        """The cubes of ``project`` (every cube when None), in config order."""
        return tuple(c for c in self.cubes if project is None or _same(c.project, project))

    def models_of(self, project: str | None = None) -> tuple[Model, ...]:
        """The models of ``project`` (every model when None), in config order."""
        return tuple(m for m in self.models if project is None or _same(m.project, project))

    def tables_of(self, project: str | None = None) -> tuple[Table, ...]:
        """The tables of ``project`` (every table when None), in config order."""
        return tuple(t for t in self.tables if project is None or _same(t.project, project))

    # -- expansion ----------------------------------------------------------------------------

    def template_for(self, cube_name: str, build_type: str) -> Template:
        """The template a ``build_type`` job of the cube follows."""
        if build_type not in BUILD_TYPES:
            raise InvalidRequest(
                f"buildType must be one of {', '.join(BUILD_TYPES)}: {build_type!r}"
            )
        return self.template(self.cube(cube_name).templates[build_type])

    def params(
        self, cube_name: str, build_type: str, *, job_id: str, segment: Segment, workdir: str
    ) -> dict[str, str]:
        """The substitution parameters of a job (unquoted), ``cubing.JOB_PARAMETERS``."""
        cube = self.cube(cube_name)
        self.template_for(cube.name, build_type)  # validates build_type
        model = self.model(cube.model)
        flat = cubing.flat_table_name(cube.name, segment.uuid)
        return {
            "cube": cube.name,
            "project": cube.project,
            "model": model.name,
            "fact_table": model.fact_table,
            "job_id": job_id,
            "build_type": build_type,
            "segment_name": segment.name,
            "segment_uuid": segment.uuid,
            "merged_segments": ",".join(segment.merged_from),
            "start_ms": str(segment.start),
            "end_ms": str(segment.end),
            "start_time": format_utc(segment.start),
            "end_time": format_utc(segment.end),
            "workdir": workdir,
            "job_conf": f"{workdir}/kylin_job_conf.xml",
            "flat_table": flat,
            "flat_table_sql": cubing.flat_table_sql(
                self._flat_table(cube, model, flat, segment, f"{workdir}/{flat}")
            ),
            "redistribute_sql": cubing.redistribute_sql(flat),
            "drop_flat_table_sql": cubing.drop_flat_table_sql(flat),
            "htable": cubing.htable_name(segment.uuid),
            "cuboid_levels": str(cube.cuboid_levels),
        }

    def _flat_table(
        self, cube: Cube, model: Model, name: str, segment: Segment, location: str
    ) -> cubing.FlatTable:
        """The cube's dimension and measure columns over the model's joins."""
        wanted = [(d.table, d.column) for d in cube.dimensions] + [
            tuple(m.parameter_value.split(".", 1))
            for m in cube.measures
            if m.parameter_type == "column"
        ]
        columns: dict[tuple[str, str], cubing.FlatColumn] = {}
        for alias, column in wanted:
            table = self.table(model.aliases[alias])
            found = table.column(column)
            col_type = found.type if found is not None else "string"
            columns.setdefault((alias, column), cubing.FlatColumn(alias, column, col_type))
        joins = tuple(
            cubing.FlatJoin(
                lk.table, lk.alias, lk.join.type, lk.join.primary_key, lk.join.foreign_key
            )
            for lk in model.lookups
        )
        partition = model.partition
        return cubing.FlatTable(
            name=name,
            location=location,
            fact_table=model.fact_table,
            fact_alias=model.fact_alias,
            joins=joins,
            columns=tuple(columns.values()),
            partition_column=partition.column if partition else None,
            partition_format=partition.date_format if partition else "yyyy-MM-dd",
            start_ms=segment.start,
            end_ms=segment.end,
        )

    def expand(
        self,
        cube_name: str,
        build_type: str,
        *,
        job_id: str,
        segment: Segment,
        workdir: str,
        params: Mapping[str, str] | None = None,
    ) -> tuple[StepSpec, ...]:
        """The steps of a ``build_type`` job of the cube, commands substituted and shell-quoted
        (``params``: the job's ``params(...)`` when the caller made them already)."""
        cube = self.cube(cube_name)
        template = self.template_for(cube.name, build_type)
        if params is None:
            params = self.params(cube.name, build_type, job_id=job_id, segment=segment,
                                 workdir=workdir)  # fmt: skip
        return expand_template(
            template, params, cube.cuboid_levels, lambda step, name: step_profile(cube, step, name)
        )


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def step_profile(cube: Cube, step: TemplateStep, name: str) -> str:
    """The profile a step runs with: step override, then the cube's MR profile, then template."""
    if name in cube.step_profiles:
        return cube.step_profiles[name]
    if step.name in cube.step_profiles:
        return cube.step_profiles[step.name]
    if cube.mr_profile is not None and step.family is Family.MAPREDUCE:
        return cube.mr_profile
    return step.profile
