"""Reads ``catalog.toml`` (with ``profiles.toml`` and ``templates/``) into a checked ``Catalog``.

Every problem is ONE ``ConfigError`` naming the file, the dotted key and the reason. Besides
types, the catalog must agree with itself: a model's tables and columns exist, a cube's
dimensions are its model's, the profiles and templates a cube names exist.

N-Dimension cuboid levels: Kylin builds the base cuboid (every row-key dimension) and then one
MR level per dimension dropped, down to the one-dimension cuboids, so a cube of N non-derived
dimensions has L = N - 1 levels (at least 1). A cube's ``cuboid_levels`` sets L explicitly (in
Kylin, aggregation groups prune levels). Kylin's row key holds at most 63 columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from engine.catalog import (
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
)
from engine.catalog.schedules import read_schedules
from engine.catalog.templates import Template, load_profiles, load_templates
from engine.config.toml import Reader, non_empty, non_negative, one_of, read_toml
from engine.core.cubing import stable_uuid
from engine.core.segments import BUILD_TYPES
from engine.core.states import BuildType
from steps.base import Profile

MAX_ROWKEY_COLUMNS = 63
#: templates a cube follows unless it names others; REFRESH follows the BUILD template
DEFAULT_TEMPLATES: dict[str, str] = {BuildType.BUILD: "build", BuildType.MERGE: "merge"}
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_TABLE = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
R = TypeVar("R")


def load_catalog(config_dir: Path) -> Catalog:
    """The catalog of ``config_dir``: ``profiles.toml``, ``templates/``, ``catalog.toml``."""
    profiles = load_profiles(config_dir / "profiles.toml")
    templates = load_templates(config_dir / "templates", {*profiles, "default"})
    return read_catalog(config_dir / "catalog.toml", profiles, templates)


def cuboid_levels(dimensions: Sequence[CubeDimension]) -> int:
    """L = (non-derived dimensions) - 1, at least 1 (see the module docstring)."""
    return max(1, sum(1 for d in dimensions if not d.derived) - 1)


def check_name(value: str) -> str | None:
    """Check: Kylin's rule for project, model and cube names."""
    return None if _NAME.match(value) else f"{value!r}: use letters, digits and underscores only"


def _check_table_name(value: str) -> str | None:
    return None if _TABLE.match(value) else f"{value!r} is not SCHEMA.TABLE"


def read_catalog(
    path: Path, profiles: dict[str, Profile], templates: dict[str, Template]
) -> Catalog:
    """``catalog.toml``, checked against itself and against the profiles and templates."""
    root = Reader(str(path), "", read_toml(path))
    projects = _many(root, "projects", _project, lambda p: p.name)
    cat = Catalog(projects=projects)
    tables = _many(root, "tables", lambda r: _table(r, cat), lambda t: t.full_name)
    cat = Catalog(projects=projects, tables=tables)
    models = _many(root, "models", lambda r: _model(r, cat), lambda m: m.name)
    cat = Catalog(projects=projects, tables=tables, models=models)
    cubes = _many(root, "cubes", lambda r: _cube(r, cat, profiles, templates), lambda c: c.name)
    streaming = _many(root, "streaming_models", lambda r: _streaming(r, cat), lambda m: m.alias)
    schedules = read_schedules(root, [c.name for c in cubes])
    root.done()
    return Catalog(projects, tables, models, cubes, streaming, profiles, templates, schedules)


def _many(
    root: Reader, key: str, read: Callable[[Reader], R], name: Callable[[R], str]
) -> tuple[R, ...]:
    out: list[R] = []
    seen: set[str] = set()
    for r in root.tables(key):
        record = read(r)
        if name(record).lower() in seen:
            raise r.error("name", f"{name(record)!r} is defined twice")
        seen.add(name(record).lower())
        out.append(record)
    return tuple(out)


def _uuid(r: Reader, kind: str, name: str) -> str:
    return r.string("uuid", stable_uuid(kind, name), non_empty)


def _in_project(r: Reader, cat: Catalog) -> str:
    names = [p.name for p in cat.projects]
    return r.string("project", check=one_of(names, "project"))


# -- projects, tables, models -----------------------------------------------------------------


def _project(r: Reader) -> Project:
    name = r.string("name", check=check_name)
    project = Project(_uuid(r, "project", name), name, r.string("description", ""))
    r.done()
    return project


def _table(r: Reader, cat: Catalog) -> Table:
    schema, name = r.string("name", check=_check_table_name).split(".")
    project = _in_project(r, cat)
    columns: list[Column] = []
    for c in r.tables("columns"):
        column = Column(
            c.string("name", check=check_name).upper(), c.string("type", check=non_empty)
        )
        c.done()
        if any(x.name.upper() == column.name.upper() for x in columns):
            raise c.error("name", f"column {column.name!r} is listed twice")
        columns.append(column)
    r.done()
    if not columns:
        raise r.error("columns", "a table needs at least one column")
    return Table(project, schema.upper(), name.upper(), tuple(columns))


class _Columns:
    """Resolves ``ALIAS.COLUMN`` references of one model."""

    def __init__(self, cat: Catalog, aliases: dict[str, str]) -> None:
        self.cat = cat
        self.aliases = aliases

    def has(self, alias: str, column: str) -> str | None:
        if alias not in self.aliases:
            return f"{alias!r} is not the fact table or a lookup alias of the model"
        if self.cat.table(self.aliases[alias]).column(column) is None:
            return f"table {self.aliases[alias]} has no column {column!r}"
        return None

    def ref(self, value: str) -> str | None:
        alias, _, column = value.upper().partition(".")
        return self.has(alias, column) if column else f"{value!r} is not ALIAS.COLUMN"

    def refs(self, r: Reader, key: str) -> tuple[str, ...]:
        values = r.strings(key, ())
        for i, value in enumerate(values):
            if (problem := self.ref(value)) is not None:
                raise r.error(f"{key}[{i}]", problem)
        return tuple(v.upper() for v in values)


def _table_in(r: Reader, key: str, cat: Catalog, project: str) -> str:
    full = r.string(key, check=_check_table_name).upper()
    if all(t.full_name != full or t.project != project for t in cat.tables):
        raise r.error(key, f"no table {full} in project {project!r} (see [[tables]])")
    return full


def _partition(r: Reader, cols: _Columns) -> PartitionDesc | None:
    if not r.has("partition"):
        return None
    p = r.table("partition")
    desc = PartitionDesc(
        p.string("column", check=cols.ref).upper(),
        p.string("date_format", "yyyy-MM-dd", non_empty),
        p.string("type", "APPEND", one_of(("APPEND",), "partition type")),
    )
    p.done()
    return desc


def _model(r: Reader, cat: Catalog) -> Model:
    name = r.string("name", check=check_name)
    project = _in_project(r, cat)
    fact = _table_in(r, "fact_table", cat, project)
    aliases = {fact.rsplit(".", 1)[1]: fact}
    lookups_r = r.tables("lookups")
    for lr in lookups_r:
        table = _table_in(lr, "table", cat, project)
        alias = lr.string("alias", table.rsplit(".", 1)[1], check_name).upper()
        if alias in aliases:
            raise lr.error("alias", f"alias {alias!r} is used twice in the model")
        aliases[alias] = table
    cols = _Columns(cat, aliases)
    lookups = tuple(_lookup(lr, cols) for lr in lookups_r)
    joined = {fact.rsplit(".", 1)[1]}
    for lr, lookup in zip(lookups_r, lookups, strict=True):
        for fk in lookup.join.foreign_key:
            if fk.split(".", 1)[0] not in joined:
                raise lr.error("foreign_key", f"{fk}: join the fact table or an earlier lookup")
        joined.add(lookup.alias)
    dimensions = []
    for dr in r.tables("dimensions"):
        alias = dr.string("table").upper()
        if alias not in aliases:
            raise dr.error("table", f"{alias!r} is not the fact table or a lookup alias")
        columns = tuple(c.upper() for c in dr.strings("columns"))
        for i, column in enumerate(columns):
            if (problem := cols.has(alias, column)) is not None:
                raise dr.error(f"columns[{i}]", problem)
        dr.done()
        dimensions.append(ModelDimension(alias, columns))
    model = Model(
        uuid=_uuid(r, "model", name),
        name=name,
        project=project,
        fact_table=fact,
        lookups=lookups,
        dimensions=tuple(dimensions),
        metrics=cols.refs(r, "metrics"),
        partition=_partition(r, cols),
        description=r.string("description", ""),
    )
    r.done()
    return model


def _lookup(lr: Reader, cols: _Columns) -> Lookup:
    table = lr.string("table").upper()
    alias = lr.string("alias", table.rsplit(".", 1)[1]).upper()
    join = Join(
        lr.string("join_type", "inner", one_of(("inner", "left"), "join type")),
        cols.refs(lr, "primary_key"),
        cols.refs(lr, "foreign_key"),
    )
    lr.done()
    if not join.primary_key or len(join.primary_key) != len(join.foreign_key):
        raise lr.error("foreign_key", "primary_key and foreign_key need the same, non-zero length")
    if any(not pk.upper().startswith(f"{alias}.") for pk in join.primary_key):
        raise lr.error("primary_key", f"the primary key must be columns of {alias}")
    return Lookup(table, alias, join)


# -- cubes and streaming models ---------------------------------------------------------------


def _cube(
    r: Reader, cat: Catalog, profiles: dict[str, Profile], templates: dict[str, Template]
) -> Cube:
    name = r.string("name", check=check_name)
    project = _in_project(r, cat)
    model_name = r.string("model", check=one_of([m.name for m in cat.models_of(project)], "model"))
    model = cat.model(model_name)
    dimensions = tuple(_cube_dimension(dr, model, cat) for dr in r.tables("dimensions"))
    if not dimensions:
        raise r.error("dimensions", "a cube needs at least one dimension")
    if sum(1 for d in dimensions if not d.derived) > MAX_ROWKEY_COLUMNS:
        raise r.error("dimensions", f"more than {MAX_ROWKEY_COLUMNS} row-key dimensions")
    chosen = r.string_map("templates")
    for build_type, template in chosen.items():
        if build_type not in BUILD_TYPES:
            raise r.error(f"templates.{build_type}", f"unknown build type; one of {BUILD_TYPES}")
        if template not in templates:
            raise r.error(f"templates.{build_type}", f"unknown template {template!r}")
    by_type = {**DEFAULT_TEMPLATES, **chosen}
    by_type.setdefault(BuildType.REFRESH, by_type[BuildType.BUILD])
    for build_type, template in by_type.items():
        if template not in templates:
            raise r.error(f"templates.{build_type}", f"no template {template!r} in templates/")
    step_profiles = r.string_map("step_profiles")
    _check_step_profiles(r, step_profiles, [templates[t] for t in by_type.values()], profiles)
    has_levels = r.has("cuboid_levels")
    levels = r.integer("cuboid_levels", 0, _level_range) if has_levels else 0
    cube = Cube(
        uuid=_uuid(r, "cube", name),
        name=name,
        project=project,
        model=model.name,
        dimensions=dimensions,
        measures=tuple(_measure(mr, model, cat) for mr in r.tables("measures")),
        cuboid_levels=levels or cuboid_levels(dimensions),
        templates=by_type,
        step_profiles=step_profiles,
        mr_profile=r.optional_string("mr_profile", one_of({*profiles, "default"}, "profile")),
        description=r.string("description", ""),
    )
    r.done()
    return cube


def _level_range(value: int) -> str | None:
    return None if 1 <= value <= MAX_ROWKEY_COLUMNS else f"must be 1..{MAX_ROWKEY_COLUMNS}"


def _check_step_profiles(
    r: Reader, overrides: dict[str, str], templates: list[Template], profiles: dict[str, Profile]
) -> None:
    patterns = [
        re.compile(re.escape(s.name).replace(re.escape("{level}"), r"[1-9][0-9]*") + "$")
        for t in templates
        for s in t.steps
    ]
    for step, profile in overrides.items():
        if profile not in profiles and profile != "default":
            raise r.error(f"step_profiles.{step}", f"unknown profile {profile!r}")
        if not any(p.match(step) for p in patterns) and not any(
            step in t.step_names() for t in templates
        ):
            raise r.error(f"step_profiles.{step}", "no step of the cube's templates has this name")


def _cube_dimension(dr: Reader, model: Model, cat: Catalog) -> CubeDimension:
    alias = dr.string("table").upper()
    column = dr.string("column").upper()
    dim = CubeDimension(
        dr.string("name", column, non_empty), alias, column, dr.boolean("derived", False)
    )
    dr.done()
    offered = {(d.table, c.upper()) for d in model.dimensions for c in d.columns}
    if (alias, column) not in offered:
        problem = _Columns(cat, model.aliases).has(alias, column)
        raise dr.error("column", problem or f"{alias}.{column} is not a dimension of {model.name}")
    return dim


def _measure(mr: Reader, model: Model, cat: Catalog) -> Measure:
    name = mr.string("name", check=non_empty)
    expression = mr.string("expression", check=non_empty).upper()
    parameter = mr.table("parameter")
    kind = parameter.string("type", check=one_of(("constant", "column"), "parameter type"))
    check = _Columns(cat, model.aliases).ref if kind == "column" else non_empty
    value = parameter.string("value", check=check)
    value = value.upper() if kind == "column" else value
    parameter.done()
    measure = Measure(name, expression, kind, value, mr.string("returntype", check=non_empty))
    mr.done()
    return measure


def _streaming(r: Reader, cat: Catalog) -> StreamingModel:
    alias = r.string("alias", check=check_name)
    project = _in_project(r, cat)
    fact = _table_in(r, "fact_table", cat, project)
    cols = _Columns(cat, {fact.rsplit(".", 1)[1]: fact})
    partition = _partition(r, cols)
    if partition is None:
        raise r.error("partition", "a streaming model needs a partition column")
    model = StreamingModel(
        model_id=_uuid(r, "streaming_model", alias),
        alias=alias,
        project=project,
        fact_table=fact,
        topic=r.string("topic", check=non_empty),
        partition=partition,
        params=r.string_map("params", scalars=True),
        rate_per_s=r.number("rate_per_s", 100.0, non_negative),
        lag_s=r.number("lag_s", 0.0, non_negative),
        broken=r.boolean("broken", False),
        fail_first_launches=r.integer("fail_first_launches", 0, non_negative),
        model_indexes=r.integer("model_indexes", 1, non_negative),
        owner=r.string("owner", "ADMIN", non_empty),
        description=r.string("description", ""),
    )
    r.done()
    return model
