"""engine.catalog: the sample catalog, template expansion (SPEC §4) and shell quoting."""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from engine.catalog import Catalog, Cube
from engine.catalog.load import cuboid_levels
from engine.catalog.templates import command_problem
from engine.config import SHIPPED_CONFIG_DIR, load_config
from engine.core.cubing import (
    CMD_TYPES,
    FAMILY_BY_CMD_TYPE,
    JAVA_CMD_HADOOP_MERGECUBOID,
    family_for,
)
from engine.core.errors import CatalogNotFound, InvalidRequest
from engine.core.jobs import FULL_BUILD_END, Family, Mode, Segment, StepSpec, segment_name
from engine.core.states import StreamingJobType
from engine.core.streaming_jobs import streaming_job_id
from engine.core.streaming_params import StreamingSettings, default_params

DAY = 86_400_000
START = 1_325_376_000_000  # 2012-01-01 00:00:00 UTC
JOB = "0b7c2a1e-5f7d-4c55-9a26-1d2f8e1b3c4d"

BUILD_PREFIX = [
    ("Create Intermediate Flat Hive Table", "SHELL_CMD_HADOOP"),
    ("Redistribute Flat Hive Table", "SHELL_CMD_HADOOP"),
    ("Extract Fact Table Distinct Columns", "JAVA_CMD_HADOOP_FACTDISTINCT"),
    ("Build Dimension Dictionary", "JAVA_CMD_HADOOP_NO_MR_DICTIONARY"),
    ("Save Cuboid Statistics", "SHELL_CMD_HADOOP"),
    ("Create HTable", "JAVA_CMD_HADDOP_NO_MR_CREATEHTABLE"),
    ("Build Base Cuboid", "JAVA_CMD_HADOOP_BASECUBOID"),
]
BUILD_SUFFIX = [
    ("Convert Cuboid Data to HFile", "JAVA_CMD_HADOOP_CONVERTHFILE"),
    ("Load HFile to HBase Table", "JAVA_CMD_HADOOP_NO_MR_BULKLOAD"),
    ("Update Cube Info", "SHELL_CMD_HADOOP"),
    ("Hive Cleanup", "SHELL_CMD_HADOOP"),
    ("Garbage Collection on HDFS", "SHELL_CMD_HADOOP"),
]
MERGE = [
    ("Merge Cuboid Dictionary", "JAVA_CMD_HADOOP_MERGECUBOID"),
    ("Update Dictionary Data", "SHELL_CMD_HADOOP"),
    ("Create HTable", "JAVA_CMD_HADDOP_NO_MR_CREATEHTABLE"),
    ("Merge Cuboid Data", "JAVA_CMD_HADOOP_MERGECUBOID"),
    ("Convert Cuboid Data to HFile", "JAVA_CMD_HADOOP_CONVERTHFILE"),
    ("Load HFile to HBase Table", "JAVA_CMD_HADOOP_NO_MR_BULKLOAD"),
    ("Update Cube Info", "SHELL_CMD_HADOOP"),
    ("Garbage Collection on HBase", "SHELL_CMD_HADOOP"),
    ("Garbage Collection on HDFS", "SHELL_CMD_HADOOP"),
]
METADATA = {
    "Save Cuboid Statistics",
    "Update Cube Info",
    "Hive Cleanup",
    "Garbage Collection on HDFS",
    "Garbage Collection on HBase",
    "Update Dictionary Data",
}


def build_steps(levels: int) -> list[tuple[str, str]]:
    nd = [
        (f"Build N-Dimension Cuboid : level {n}", "JAVA_CMD_HADOOP_NDCUBOID")
        for n in range(1, levels + 1)
    ]
    return BUILD_PREFIX + nd + BUILD_SUFFIX


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_config(environ={}).catalog


def segment(start: int = START, end: int = START + DAY, **changes: object) -> Segment:
    seg = Segment("5c1e8a5e-0d5b-4c8f-b3a4-6f6f0c1e2d3a", "c", segment_name(start, end), start, end)
    return dataclasses.replace(seg, **changes)  # type: ignore[arg-type]


def expand(
    catalog: Catalog, cube: str, build_type: str = "BUILD", seg: Segment | None = None
) -> tuple[StepSpec, ...]:
    return catalog.expand(
        cube, build_type, job_id=JOB, segment=seg or segment(), workdir="/tmp/kjobs/" + JOB
    )


# -- command types -----------------------------------------------------------------------------


def test_family_follows_cmd_type() -> None:
    assert family_for("SHELL_CMD") is Family.SHELL
    assert family_for("SHELL_CMD_HADOOP") is Family.SHELL
    for mr in ("FACTDISTINCT", "BASECUBOID", "NDCUBOID", "RANGEKEYDISTRIBUTION", "CONVERTHFILE"):
        assert family_for(f"JAVA_CMD_HADOOP_{mr}") is Family.MAPREDUCE
    assert family_for(JAVA_CMD_HADOOP_MERGECUBOID) is Family.MAPREDUCE
    assert family_for("JAVA_CMD_HADOOP_NO_MR_BULKLOAD") is Family.BULKLOAD
    assert family_for("JAVA_CMD_HADOOP_NO_MR_DICTIONARY") is Family.METADATA
    assert family_for("JAVA_CMD_HADDOP_NO_MR_CREATEHTABLE") is Family.METADATA
    assert set(FAMILY_BY_CMD_TYPE) == CMD_TYPES and len(CMD_TYPES) == 11
    with pytest.raises(ValueError, match="unknown cmd_type"):
        family_for("JAVA_CMD_SPARK")


# -- expansions ----------------------------------------------------------------------------------


def test_build_has_the_spec_steps_in_order(catalog: Catalog) -> None:
    specs = expand(catalog, "kylin_sales_cube")
    assert catalog.cube("kylin_sales_cube").cuboid_levels == 6
    assert [(s.name, s.cmd_type) for s in specs] == build_steps(6)


def test_families_modes_and_run_async(catalog: Catalog) -> None:
    for build_type in ("BUILD", "MERGE", "REFRESH"):
        for spec in expand(catalog, "kylin_sales_cube", build_type):
            assert spec.mode is Mode.SIMULATED
            assert spec.run_async is (spec.family is Family.MAPREDUCE)
            if spec.name in METADATA:
                assert spec.family is Family.METADATA, spec.name
            else:
                assert spec.family is family_for(spec.cmd_type), spec.name
    by_name = {s.name: s for s in expand(catalog, "kylin_sales_cube")}
    assert by_name["Update Cube Info"].action == "update_cube_info"
    assert [s.action for s in by_name.values() if s.action] == ["update_cube_info"]


def test_merge_has_the_spec_steps_in_order(catalog: Catalog) -> None:
    merged = ("seg-a", "seg-b")
    specs = expand(catalog, "kylin_sales_cube", "MERGE", segment(merged_from=merged))
    assert [(s.name, s.cmd_type) for s in specs] == MERGE
    assert [s.name for s in specs if s.run_async] == [
        "Merge Cuboid Dictionary",
        "Merge Cuboid Data",
        "Convert Cuboid Data to HFile",
    ]
    assert "-mergesegmentids seg-a,seg-b" in (specs[3].exec_cmd or "")


def test_refresh_follows_the_build_template(catalog: Catalog) -> None:
    for cube in ("kylin_sales_cube", "slow_cube", "shell_demo_cube"):
        refresh = expand(catalog, cube, "REFRESH")
        assert [s.name for s in refresh] == [s.name for s in expand(catalog, cube)]


def test_unknown_build_type(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest, match="buildType"):
        expand(catalog, "kylin_sales_cube", "OPTIMIZE")


def test_cuboid_levels_follow_the_dimensions(catalog: Catalog) -> None:
    for cube in catalog.cubes:
        assert cube.cuboid_levels == cuboid_levels(cube.dimensions)
        normal = [d for d in cube.dimensions if not d.derived]
        assert cube.cuboid_levels == max(1, len(normal) - 1)
    slow = expand(catalog, "slow_cube")
    assert [(s.name, s.cmd_type) for s in slow] == build_steps(2)
    nd = [s for s in expand(catalog, "kylin_sales_cube") if "N-Dimension" in s.name]
    assert [shlex.split(s.exec_cmd or "")[-3] for s in nd] == ["1", "2", "3", "4", "5", "6"]
    assert "level_base_cuboid" in (nd[0].exec_cmd or "")
    assert "level_5_cuboid -output" in (nd[5].exec_cmd or "")


def test_explicit_cuboid_levels(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(SHIPPED_CONFIG_DIR, tmp_path / "config"))
    catalog_file = folder / "catalog.toml"
    text = catalog_file.read_text()
    catalog_file.write_text(
        text.replace('mr_profile = "slow_mr"', 'mr_profile = "slow_mr"\ncuboid_levels = 4')
    )
    catalog = load_config(folder, environ={}).catalog
    assert catalog.cube("slow_cube").cuboid_levels == 4
    assert [(s.name, s.cmd_type) for s in expand(catalog, "slow_cube")] == build_steps(4)


# -- profiles of the sample cubes ---------------------------------------------------------------


def profiles(specs: tuple[StepSpec, ...]) -> dict[str, str]:
    return {s.name: s.profile for s in specs}


def test_sales_cube_profiles(catalog: Catalog) -> None:
    for spec in expand(catalog, "kylin_sales_cube"):
        assert spec.profile == ("mr" if spec.family is Family.MAPREDUCE else "short"), spec.name
    mr = catalog.profile("mr")
    assert (mr.min_seconds, mr.max_seconds) == (30.0, 90.0)
    assert mr.queue_max_seconds > 0
    short = catalog.profile("short")
    assert (short.min_seconds, short.max_seconds) == (1.0, 10.0)


def test_flaky_cube_fails_fact_distinct_once(catalog: Catalog) -> None:
    specs = expand(catalog, "flaky_cube")
    flaky = [s.name for s in specs if s.profile == "flaky_mr"]
    assert flaky == ["Extract Fact Table Distinct Columns"]
    profile = catalog.profile("flaky_mr")
    assert profile.fail_first_attempts == 1
    assert not profile.always_fail
    assert profile.failure_rate == 0


def test_broken_cube_dictionary_always_fails(catalog: Catalog) -> None:
    specs = expand(catalog, "broken_cube")
    assert [s.name for s in specs if s.profile == "broken"] == ["Build Dimension Dictionary"]
    assert catalog.profile("broken").always_fail


def test_slow_cube_mr_steps_take_minutes(catalog: Catalog) -> None:
    specs = expand(catalog, "slow_cube")
    for spec in specs:
        expected = "slow_mr" if spec.family is Family.MAPREDUCE else "short"
        assert spec.profile == expected, spec.name
    slow = catalog.profile("slow_mr")
    assert (slow.min_seconds, slow.max_seconds) == (540.0, 660.0)


def test_shell_demo_cube_runs_real_shell_steps(catalog: Catalog) -> None:
    specs = expand(catalog, "shell_demo_cube")
    real = [s for s in specs if s.mode is Mode.REAL]
    assert len(real) >= 3
    assert all(s.family is Family.SHELL and s.cmd_type == "SHELL_CMD" for s in real)
    commands = " ; ".join(s.exec_cmd or "" for s in real)
    assert "echo" in commands and "sleep 1" in commands and ">&2" in commands
    assert specs[-1].action == "update_cube_info"
    assert catalog.profile(specs[-1].profile).max_seconds == 0


def test_step_overrides_win_over_the_mr_profile(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(SHIPPED_CONFIG_DIR, tmp_path / "config"))
    catalog_file = folder / "catalog.toml"
    overrides = (
        'step_profiles = { "Build N-Dimension Cuboid : level 2" = "instant", '
        '"Build N-Dimension Cuboid : level {level}" = "mr", "Build Base Cuboid" = "flaky_mr" }'
    )
    text = catalog_file.read_text()
    catalog_file.write_text(
        text.replace('mr_profile = "slow_mr"', f'mr_profile = "slow_mr"\n{overrides}')
    )
    specs = profiles(expand(load_config(folder, environ={}).catalog, "slow_cube"))
    assert specs["Build Base Cuboid"] == "flaky_mr"
    assert specs["Build N-Dimension Cuboid : level 1"] == "mr"
    assert specs["Build N-Dimension Cuboid : level 2"] == "instant"
    assert specs["Extract Fact Table Distinct Columns"] == "slow_mr"
    assert specs["Create HTable"] == "short"


def test_default_and_unknown_profiles(catalog: Catalog) -> None:
    assert catalog.profile("default").name == "default"
    with pytest.raises(CatalogNotFound):
        catalog.profile("nope")


# -- parameters and quoting ----------------------------------------------------------------------


def test_parameters_of_a_segment(catalog: Catalog) -> None:
    params = catalog.params(
        "kylin_sales_cube", "BUILD", job_id=JOB, segment=segment(), workdir="/w"
    )
    assert params["cube"] == "kylin_sales_cube"
    assert params["project"] == "learn_kylin"
    assert params["model"] == "kylin_sales_model"
    assert params["segment_name"] == "20120101000000_20120102000000"
    assert params["start_ms"] == str(START)
    assert params["start_time"] == "2012-01-01 00:00:00"
    assert params["end_time"] == "2012-01-02 00:00:00"
    assert (
        params["flat_table"]
        == "kylin_intermediate_kylin_sales_cube_5c1e8a5e_0d5b_4c8f_b3a4_6f6f0c1e2d3a"
    )
    assert params["htable"].startswith("KYLIN_") and len(params["htable"]) == 16
    assert '`KYLIN_SALES`.`PART_DT` >= "2012-01-01"' in params["flat_table_sql"]
    assert '`KYLIN_SALES`.`PART_DT` < "2012-01-02"' in params["flat_table_sql"]


def test_full_build_has_no_partition_condition(catalog: Catalog) -> None:
    seg = segment(0, FULL_BUILD_END)
    params = catalog.params("kylin_sales_cube", "BUILD", job_id=JOB, segment=seg, workdir="/w")
    assert "WHERE 1=1\n" in params["flat_table_sql"]
    assert params["end_time"] == "9999-12-31 23:59:59"


def test_commands_are_kylin_like(catalog: Catalog) -> None:
    by_name = {s.name: s for s in expand(catalog, "kylin_sales_cube")}
    hive = shlex.split(by_name["Create Intermediate Flat Hive Table"].exec_cmd or "")
    assert hive[0] == "hive" and hive[-2] == "-e"
    assert hive[-1].startswith("USE default;\nDROP TABLE IF EXISTS `kylin_intermediate_")
    fact = shlex.split(by_name["Extract Fact Table Distinct Columns"].exec_cmd or "")
    assert fact[fact.index("-cubename") + 1] == "kylin_sales_cube"
    assert fact[fact.index("-cubingJobId") + 1] == JOB
    assert "Kylin_Fact_Distinct_Columns_kylin_sales_cube_Step" in fact
    load = by_name["Load HFile to HBase Table"]
    assert load.options["source"] == f"/tmp/kjobs/{JOB}/kylin_sales_cube/hfile"
    assert load.options["target"].startswith(f"/tmp/kjobs/{JOB}/hbase/KYLIN_")
    assert by_name["Update Cube Info"].exec_cmd is None


HOSTILE = "x; touch /tmp/pwned $(touch /tmp/pwned) `id` 'q' \"d\""


def test_hostile_segment_values_are_quoted(catalog: Catalog) -> None:
    seg = segment(uuid=HOSTILE, name=HOSTILE)
    for spec in expand(catalog, "kylin_sales_cube", seg=seg):
        if spec.exec_cmd and "-segmentid" in spec.exec_cmd:
            words = shlex.split(spec.exec_cmd)
            assert words[words.index("-segmentid") + 1] == HOSTILE, spec.name
    demo = expand(catalog, "shell_demo_cube", seg=seg)[0]
    assert demo.exec_cmd is not None
    assert shlex.quote(HOSTILE) in demo.exec_cmd


def test_hostile_cube_name_is_quoted(catalog: Catalog) -> None:
    cube = catalog.cube("kylin_sales_cube")
    evil: Cube = dataclasses.replace(cube, name=HOSTILE)
    evil_catalog = dataclasses.replace(catalog, cubes=(*catalog.cubes, evil))
    for spec in expand(evil_catalog, HOSTILE):
        if spec.exec_cmd and "-cubename" in spec.exec_cmd:
            words = shlex.split(spec.exec_cmd)
            assert words[words.index("-cubename") + 1] == HOSTILE, spec.name


def test_hostile_values_do_not_run_in_a_real_shell(catalog: Catalog, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"x; touch {marker}; $(touch {marker}) `touch {marker}`"
    seg = segment(uuid=hostile, name=hostile)
    spec = expand(catalog, "shell_demo_cube", seg=seg)[0]
    done = subprocess.run(
        ["/bin/sh", "-c", spec.exec_cmd or ""],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"segment: {hostile}\n" in done.stdout
    assert not marker.exists()


def test_command_checks_follow_the_shell() -> None:
    known = ["cube", "workdir"]
    assert command_problem("echo {cube} {workdir}/x", known) is None
    assert command_problem("awk '{print}' {workdir}/x", known) is None
    assert command_problem("echo ${HOME} {cube}", known) is None
    assert command_problem("echo '{cube}'", known) is not None
    assert command_problem('echo "a {cube}"', known) is not None
    assert command_problem("echo {job}", known) is not None


# -- lookups, consistency, stability -------------------------------------------------------------


def test_unknown_names_raise_catalog_not_found(catalog: Catalog) -> None:
    for lookup, kind in (
        (catalog.cube, "cube"),
        (catalog.model, "model"),
        (catalog.project, "project"),
        (catalog.streaming_model, "streaming model"),
    ):
        with pytest.raises(CatalogNotFound) as info:
            lookup("no_such_thing")
        assert info.value.kind == kind and info.value.name == "no_such_thing"
        assert isinstance(info.value, LookupError)
    with pytest.raises(CatalogNotFound, match="Cannot find cube 'nope'"):
        expand(catalog, "nope")


def test_lookups_ignore_case(catalog: Catalog) -> None:
    assert catalog.cube("KYLIN_SALES_CUBE").name == "kylin_sales_cube"
    assert catalog.project("LEARN_KYLIN").name == "learn_kylin"


def test_catalog_agrees_with_itself(catalog: Catalog) -> None:
    columns = {(t.full_name, c.name) for t in catalog.tables for c in t.columns}
    for model in catalog.models:
        aliases = model.aliases
        for offered in model.dimensions:
            for column in offered.columns:
                assert (aliases[offered.table], column) in columns
    for cube in catalog.cubes:
        model = catalog.model(cube.model)
        assert model.project == cube.project
        assert catalog.project(cube.project).name == cube.project
        for dim in cube.dimensions:
            assert dim.table in model.aliases, (cube.name, dim)
            assert (model.aliases[dim.table], dim.column) in columns, (cube.name, dim)
        for measure in cube.measures:
            if measure.parameter_type == "column":
                alias, column = measure.parameter_value.split(".")
                assert (model.aliases[alias], column) in columns
    for sm in catalog.streaming_models:
        table = catalog.table(sm.fact_table)
        alias, column = sm.partition.column.split(".")
        assert alias == table.name and table.column(column) is not None


def test_uuids_are_stable_and_distinct(catalog: Catalog) -> None:
    again = load_config(environ={}).catalog
    ids = [
        *(p.uuid for p in catalog.projects),
        *(m.uuid for m in catalog.models),
        *(c.uuid for c in catalog.cubes),
        *(s.model_id for s in catalog.streaming_models),
    ]
    assert ids == [
        *(p.uuid for p in again.projects),
        *(m.uuid for m in again.models),
        *(c.uuid for c in again.cubes),
        *(s.model_id for s in again.streaming_models),
    ]
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(i)) == i for i in ids)


def test_streaming_models_of_the_sample(catalog: Catalog) -> None:
    sales = catalog.streaming_model("sales_stream_model")
    assert catalog.streaming_model(sales.model_id) is sales
    assert not sales.broken and sales.fail_first_launches == 0 and sales.rate_per_s > 0
    build_id = streaming_job_id(sales.model_id, StreamingJobType.STREAMING_BUILD)
    merge_id = streaming_job_id(sales.model_id, StreamingJobType.STREAMING_MERGE)
    assert (build_id, merge_id) == (f"{sales.model_id}_build", f"{sales.model_id}_merge")
    assert catalog.streaming_model("broken_stream_model").broken
    assert catalog.streaming_model("flaky_stream_model").fail_first_launches == 1
    build = {
        **default_params(StreamingJobType.STREAMING_BUILD, StreamingSettings()),
        **sales.params,
    }
    assert build["kylin.streaming.duration"] == "30"
    assert build["kylin.streaming.kafka-conf.maxOffsetsPerTrigger"] == "0"
    assert build["spark.master"] == "yarn"
    merge = {
        **default_params(
            StreamingJobType.STREAMING_MERGE, StreamingSettings(segment_merge_threshold=5)
        ),
        **sales.params,
    }
    assert merge["kylin.streaming.segment-merge-threshold"] == "5"
    assert merge["kylin.streaming.segment-max-size"] == "32m"
    assert merge["kylin.streaming.job-retry-enabled"] == "false"
