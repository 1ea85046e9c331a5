"""Kylin's command types (``JobStepCmdTypeEnum``), the executor family each one runs in (SPEC §4),
and the names and Hive statements Kylin's cubing job builds.

Pure: no I/O, no clock. ``engine.catalog`` expands templates with these.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from engine.core.jobs import FULL_BUILD_END, Family
from engine.core.timefmt import format_utc

# -- command types (Kylin's spelling kept, "HADDOP" included) ---------------------------------

SHELL_CMD: Final = "SHELL_CMD"
SHELL_CMD_HADOOP: Final = "SHELL_CMD_HADOOP"
JAVA_CMD_HADOOP_FACTDISTINCT: Final = "JAVA_CMD_HADOOP_FACTDISTINCT"
JAVA_CMD_HADOOP_BASECUBOID: Final = "JAVA_CMD_HADOOP_BASECUBOID"
JAVA_CMD_HADOOP_NDCUBOID: Final = "JAVA_CMD_HADOOP_NDCUBOID"
JAVA_CMD_HADOOP_RANGEKEYDISTRIBUTION: Final = "JAVA_CMD_HADOOP_RANGEKEYDISTRIBUTION"
JAVA_CMD_HADOOP_CONVERTHFILE: Final = "JAVA_CMD_HADOOP_CONVERTHFILE"
JAVA_CMD_HADOOP_MERGECUBOID: Final = "JAVA_CMD_HADOOP_MERGECUBOID"
JAVA_CMD_HADOOP_NO_MR_DICTIONARY: Final = "JAVA_CMD_HADOOP_NO_MR_DICTIONARY"
JAVA_CMD_HADDOP_NO_MR_CREATEHTABLE: Final = "JAVA_CMD_HADDOP_NO_MR_CREATEHTABLE"
JAVA_CMD_HADOOP_NO_MR_BULKLOAD: Final = "JAVA_CMD_HADOOP_NO_MR_BULKLOAD"

#: cmd_type -> the family its steps run in when the template names none (SPEC §4). ``SHELL_CMD``
#: is a real command line; ``SHELL_CMD_HADOOP`` is also what Kylin reports for its in-process
#: steps (Update Cube Info, Hive Cleanup, ...), whose templates name the metadata family.
FAMILY_BY_CMD_TYPE: Final[Mapping[str, Family]] = {
    SHELL_CMD: Family.SHELL,
    SHELL_CMD_HADOOP: Family.SHELL,
    JAVA_CMD_HADOOP_FACTDISTINCT: Family.MAPREDUCE,
    JAVA_CMD_HADOOP_BASECUBOID: Family.MAPREDUCE,
    JAVA_CMD_HADOOP_NDCUBOID: Family.MAPREDUCE,
    JAVA_CMD_HADOOP_RANGEKEYDISTRIBUTION: Family.MAPREDUCE,
    JAVA_CMD_HADOOP_CONVERTHFILE: Family.MAPREDUCE,
    JAVA_CMD_HADOOP_MERGECUBOID: Family.MAPREDUCE,
    JAVA_CMD_HADOOP_NO_MR_DICTIONARY: Family.METADATA,
    JAVA_CMD_HADDOP_NO_MR_CREATEHTABLE: Family.METADATA,
    JAVA_CMD_HADOOP_NO_MR_BULKLOAD: Family.BULKLOAD,
}

CMD_TYPES: Final = frozenset(FAMILY_BY_CMD_TYPE)


def family_for(cmd_type: str) -> Family:
    """The family a step of ``cmd_type`` runs in when its template names none (SPEC §4)."""
    try:
        return FAMILY_BY_CMD_TYPE[cmd_type]
    except KeyError:
        raise ValueError(
            f"unknown cmd_type {cmd_type!r}; one of {', '.join(sorted(CMD_TYPES))}"
        ) from None


# -- metadata actions and template parameters --------------------------------------------------

#: "Update Cube Info": the job's NEW segment becomes READY (and merged segments are removed).
UPDATE_CUBE_INFO: Final = "update_cube_info"
#: actions a template step may name; the engine applies them when the step succeeds
ACTIONS: Final = frozenset({UPDATE_CUBE_INFO})

#: the one way a template step may repeat: once per N-Dimension cuboid level, ``{level}`` = 1..L
REPEAT_CUBOID_LEVELS: Final = "cuboid_levels"
REPEATS: Final = frozenset({REPEAT_CUBOID_LEVELS})

#: placeholders every command template may use (values are shell-quoted when substituted)
JOB_PARAMETERS: Final[Mapping[str, str]] = {
    "cube": "cube name",
    "project": "project name",
    "model": "model name",
    "fact_table": "the model's fact table, SCHEMA.TABLE",
    "job_id": "the job's uuid",
    "build_type": "BUILD, MERGE or REFRESH",
    "segment_name": "yyyyMMddHHmmss_yyyyMMddHHmmss",
    "segment_uuid": "the segment's uuid",
    "merged_segments": "MERGE: the uuids of the segments it replaces, comma separated",
    "start_ms": "segment start, epoch ms",
    "end_ms": "segment end, epoch ms",
    "start_time": "segment start, yyyy-MM-dd HH:mm:ss UTC",
    "end_time": "segment end, yyyy-MM-dd HH:mm:ss UTC",
    "workdir": "the job's working directory",
    "job_conf": "the MR job configuration file (under the working directory)",
    "flat_table": "the intermediate flat Hive table",
    "flat_table_sql": "Hive statements creating and filling the flat table",
    "redistribute_sql": "Hive statement redistributing the flat table",
    "drop_flat_table_sql": "Hive statement dropping the flat table",
    "htable": "the segment's HBase table",
    "cuboid_levels": "L, the number of N-Dimension cuboid levels",
}
#: only in a step repeated per cuboid level: the level 1..L, and the level it reads from
#: ("base" for level 1, as Kylin names the base cuboid's folder)
LEVEL_PARAMETER: Final = "level"
PARENT_LEVEL_PARAMETER: Final = "parent_level"


def level_parameters(level: int) -> dict[str, str]:
    """The parameters of a step repeated per cuboid level, for ``level``."""
    parent = "base" if level == 1 else str(level - 1)
    return {LEVEL_PARAMETER: str(level), PARENT_LEVEL_PARAMETER: parent}


_JAVA_PATTERNS = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"))


def java_to_strftime(pattern: str) -> str:
    """A Kylin (Java ``SimpleDateFormat``) date pattern as a strftime format."""
    for java, py in (*_JAVA_PATTERNS, ("ss", "%S")):
        pattern = pattern.replace(java, py)
    return pattern


# -- names Kylin derives from a cube and a segment --------------------------------------------

_NAMESPACE: Final = uuid.UUID("6f0d3c2e-5b8a-4e1f-9a57-3c1b9d0e7a42")


def stable_uuid(kind: str, name: str) -> str:
    """A uuid that depends only on ``kind`` and ``name``: catalog entries keep theirs."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


def flat_table_name(cube: str, segment_uuid: str) -> str:
    """``kylin_intermediate_{cube}_{segment uuid}``, lower case, ``-`` as ``_`` (Kylin's rule)."""
    return f"kylin_intermediate_{cube}_{segment_uuid}".lower().replace("-", "_")


def htable_name(segment_uuid: str) -> str:
    """``KYLIN_`` and ten upper-case characters, fixed per segment (Kylin draws them at random)."""
    digest = uuid.uuid5(_NAMESPACE, f"htable:{segment_uuid}").hex
    return f"KYLIN_{digest[:10].upper()}"


# -- the intermediate flat table (JoinedFlatTable in Kylin) ------------------------------------


@dataclass(frozen=True, slots=True)
class FlatColumn:
    """One column of the flat table: ``alias.column`` of the model and its Hive type."""

    alias: str
    column: str
    type: str

    @property
    def flat_name(self) -> str:
        """The column's name in the flat table: ``ALIAS_COLUMN``."""
        return f"{self.alias}_{self.column}"


@dataclass(frozen=True, slots=True)
class FlatJoin:
    """A lookup joined into the flat table."""

    table: str  #: SCHEMA.TABLE
    alias: str
    kind: str  #: inner / left
    primary_key: tuple[str, ...]  #: ALIAS.COLUMN of the lookup
    foreign_key: tuple[str, ...]  #: ALIAS.COLUMN of the fact table (or another lookup)


@dataclass(frozen=True, slots=True)
class FlatTable:
    """What the flat-table statements need: the model's joins, the cube's columns, the range."""

    name: str
    location: str
    fact_table: str  #: SCHEMA.TABLE
    fact_alias: str
    joins: tuple[FlatJoin, ...]
    columns: tuple[FlatColumn, ...]
    partition_column: str | None  #: ALIAS.COLUMN; None = no partition, always a full build
    partition_format: str  #: Java pattern of the partition column's values
    start_ms: int
    end_ms: int


def _quote_ident(dotted: str) -> str:
    return ".".join(f"`{part}`" for part in dotted.split("."))


def _hive_string(text: str) -> str:
    # double-quoted Hive literals keep the shell-quoted command readable (no '"'"' sequences)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _where(flat: FlatTable) -> str:
    if flat.partition_column is None or (flat.start_ms == 0 and flat.end_ms >= FULL_BUILD_END):
        return "WHERE 1=1"
    fmt = java_to_strftime(flat.partition_format)
    col = _quote_ident(flat.partition_column)
    start = _hive_string(format_utc(flat.start_ms, fmt))
    end = _hive_string(format_utc(flat.end_ms, fmt))
    return f"WHERE 1=1 AND ({col} >= {start} AND {col} < {end})"


def _lines(items: Iterable[str]) -> str:
    return "\n,".join(items)


def flat_table_sql(flat: FlatTable) -> str:
    """Kylin's "Create Intermediate Flat Hive Table" statements."""
    ddl_columns = _lines(f"`{c.flat_name}` {c.type}" for c in flat.columns)
    select = _lines(
        f"{_quote_ident(f'{c.alias}.{c.column}')} as `{c.flat_name}`" for c in flat.columns
    )
    joins = "".join(
        f"{j.kind.upper()} JOIN {_quote_ident(j.table)} as `{j.alias}`\nON "
        + " AND ".join(
            f"{_quote_ident(fk)} = {_quote_ident(pk)}"
            for fk, pk in zip(j.foreign_key, j.primary_key, strict=True)
        )
        + "\n"
        for j in flat.joins
    )
    return (
        "USE default;\n"
        f"DROP TABLE IF EXISTS `{flat.name}`;\n"
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{flat.name}`\n(\n{ddl_columns}\n)\n"
        f"STORED AS SEQUENCEFILE\nLOCATION {_hive_string(flat.location)};\n"
        f'ALTER TABLE `{flat.name}` SET TBLPROPERTIES("auto.purge"="true");\n'
        f"INSERT OVERWRITE TABLE `{flat.name}` SELECT\n{select}\n"
        f"FROM {_quote_ident(flat.fact_table)} as `{flat.fact_alias}`\n"
        f"{joins}{_where(flat)}\n;\n"
    )


def redistribute_sql(flat_table: str) -> str:
    """Kylin's "Redistribute Flat Hive Table" statement."""
    return (
        "USE default;\n"
        "set mapreduce.job.reduces=1;\n"
        f"INSERT OVERWRITE TABLE `{flat_table}` SELECT * FROM `{flat_table}`"
        " DISTRIBUTE BY RAND();\n"
    )


def drop_flat_table_sql(flat_table: str) -> str:
    """Kylin's "Hive Cleanup": drop the intermediate table."""
    return f"USE default;\nDROP TABLE IF EXISTS `{flat_table}`;\n"
