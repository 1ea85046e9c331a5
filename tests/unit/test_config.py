"""engine.config: the shipped config, one clear error per bad value, KJOBS_* and overrides."""

from __future__ import annotations

import dataclasses
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from engine.config import BY_KEY, SETTINGS, SHIPPED_CONFIG_DIR, LogSettings, load_config
from engine.config.settings import EngineSettings, OpsSettings, StreamingSettings, User
from engine.core.errors import ConfigError


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped config folder to break."""
    return Path(shutil.copytree(SHIPPED_CONFIG_DIR, tmp_path / "config"))


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def config_error(config_dir: Path, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(config_dir, environ={}, **kwargs)  # type: ignore[arg-type]
    return info.value


def assert_one_clear_message(err: ConfigError, file: Path | str, key: str, reason: str) -> None:
    assert err.file == str(file)
    assert err.key == key
    assert re.search(reason, err.reason), err.reason
    # an error about the whole file (key "-") names only the file
    where = f"{file}" if key == ConfigError.WHOLE_FILE else f"{file}: {key}"
    assert str(err) == f"{where}: {err.reason}"
    assert "\n" not in str(err)


# -- the shipped config ---------------------------------------------------------------------


def test_shipped_config_loads_with_kylin_defaults() -> None:
    config = load_config(environ={})
    assert config.config_dir == SHIPPED_CONFIG_DIR
    expected = EngineSettings(
        env=(("KYLIN_HOME", "/usr/local/kylin"),), config_dir=SHIPPED_CONFIG_DIR
    )
    assert config.engine == expected
    assert config.engine.streaming == StreamingSettings()
    assert config.engine.users == (User("ADMIN", "KYLIN", ("ROLE_ADMIN",)),)
    assert config.logging == LogSettings()
    assert {"build", "merge", "shell_demo"} <= set(config.templates)
    assert {"mr", "short", "flaky_mr", "broken", "slow_mr", "instant"} <= set(config.profiles)
    assert [c.name for c in config.catalog.cubes] == [
        "kylin_sales_cube",
        "flaky_cube",
        "broken_cube",
        "slow_cube",
        "shell_demo_cube",
    ]


def test_shipped_engine_toml_states_every_setting() -> None:
    data = tomllib.loads((SHIPPED_CONFIG_DIR / "engine.toml").read_text())

    def keys(table: dict[str, object], prefix: str = "") -> set[str]:
        found: set[str] = set()
        for name, value in table.items():
            key = f"{prefix}.{name}" if prefix else name
            if key in BY_KEY:
                found.add(key)
            else:
                assert isinstance(value, dict), key
                found |= keys(value, key)
        return found

    assert keys(data) == set(BY_KEY)


def test_settings_table_names_real_fields_and_distinct_env_vars() -> None:
    targets = {
        "engine": EngineSettings,
        "streaming": StreamingSettings,
        "ops": OpsSettings,
        "logging": LogSettings,
    }
    for setting in SETTINGS:
        names = {f.name for f in dataclasses.fields(targets[setting.target])}
        assert setting.field in names, setting.key
    env = [s.env for s in SETTINGS if s.env]
    assert len(env) == len(set(env))
    assert all(name.startswith("KJOBS_") and name.isupper() for name in env)


def test_missing_config_folder(tmp_path: Path) -> None:
    err = config_error(tmp_path / "nowhere")
    assert_one_clear_message(err, tmp_path / "nowhere", "-", "not found")


# -- engine.toml: one clear message naming file and key -----------------------------------------


def test_unknown_key_names_file_and_key(config_dir: Path) -> None:
    engine = config_dir / "engine.toml"
    replace_in(engine, "kylin.job.retry = 0", "kylin.job.retry = 0\nkylin.job.retyr-count = 2")
    err = config_error(config_dir)
    assert_one_clear_message(err, engine, "kylin.job.retyr-count", "unknown key")


def test_unknown_top_level_table(config_dir: Path) -> None:
    engine = config_dir / "engine.toml"
    engine.write_text(engine.read_text() + "\n[server]\nport = 7070\n")
    assert_one_clear_message(config_error(config_dir), engine, "server", "unknown key")


def test_misspelt_key_gets_a_suggestion(config_dir: Path) -> None:
    engine = config_dir / "engine.toml"
    replace_in(engine, "kjobs.time-scale", "kjobs.time-scael")
    err = config_error(config_dir)
    assert_one_clear_message(err, engine, "kjobs.time-scael", "did you mean 'kjobs.time-scale'")


def test_wrong_type_names_file_and_key(config_dir: Path) -> None:
    engine = config_dir / "engine.toml"
    replace_in(engine, "kylin.job.retry = 0", 'kylin.job.retry = "three"')
    err = config_error(config_dir)
    assert_one_clear_message(err, engine, "kylin.job.retry", "must be an integer, got string")


def test_negative_concurrency_names_file_and_key(config_dir: Path) -> None:
    engine = config_dir / "engine.toml"
    replace_in(engine, "max-concurrent-jobs = 10", "max-concurrent-jobs = -1")
    err = config_error(config_dir)
    assert_one_clear_message(err, engine, "kylin.job.max-concurrent-jobs", "at least 1, got -1")


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("kylin.job.retry = 0", "kylin.job.retry = -1", "kylin.job.retry", "negative"),
        ("retry-interval = 30000", "retry-interval = 0", "kylin.job.retry-interval", "> 0|than 0"),
        ("kjobs.time-scale = 1.0", "kjobs.time-scale = 0", "kjobs.time-scale", "than 0"),
        ("kjobs.seed = 0", "kjobs.seed = true", "kjobs.seed", "integer, got boolean"),
        (
            "kylin.streaming.duration = 30",
            "kylin.streaming.duration = 1.5",
            "kylin.streaming.duration",
            "integer, got float",
        ),
        (
            "segment-merge-threshold = 3",
            "segment-merge-threshold = 1",
            "kylin.streaming.segment-merge-threshold",
            "at least 2",
        ),
        (
            'segment-max-size = "32m"',
            'segment-max-size = "huge"',
            "kylin.streaming.segment-max-size",
            "not a size",
        ),
        (
            "job-retry-max-interval = 1800",
            "job-retry-max-interval = 60",
            "kylin.streaming.job-retry-max-interval",
            "not be less than kylin.streaming.job-retry-interval",
        ),
        (
            "retry-exception-classes = []",
            "retry-exception-classes = [1]",
            "kylin.job.retry-exception-classes",
            "array of strings",
        ),
        ('format = "auto"', 'format = "xml"', "kjobs.log.format", "unknown format 'xml'"),
        ('password = "KYLIN"', 'password = ""', "kjobs.users[0].password", "empty"),
        ('password = "KYLIN"', 'password = "KYLIN"\nrole = "x"', "kjobs.users[0].role", "unknown"),
        (
            'KYLIN_HOME = "/usr/local/kylin"',
            "KYLIN_HOME = 1",
            "kjobs.job.env.KYLIN_HOME",
            "must be a string",
        ),
    ],
)
def test_impossible_values_are_refused(
    config_dir: Path, old: str, new: str, key: str, reason: str
) -> None:
    engine = config_dir / "engine.toml"
    replace_in(engine, old, new)
    assert_one_clear_message(config_error(config_dir), engine, key, reason)


def test_bad_toml_syntax_names_the_file(config_dir: Path) -> None:
    engine = config_dir / "engine.toml"
    replace_in(engine, "kylin.job.retry = 0", "kylin.job.retry = = 0")
    assert_one_clear_message(config_error(config_dir), engine, "-", "invalid TOML")


# -- the other files ----------------------------------------------------------------------------


def test_unknown_profile_field(config_dir: Path) -> None:
    profiles = config_dir / "profiles.toml"
    replace_in(profiles, "[short]\n", "[short]\nmin_secs = 1\n")
    err = config_error(config_dir)
    assert_one_clear_message(err, profiles, "short.min_secs", "unknown key")


def test_profile_with_min_above_max(config_dir: Path) -> None:
    profiles = config_dir / "profiles.toml"
    replace_in(profiles, "min_seconds = 540.0", "min_seconds = 700.0")
    err = config_error(config_dir)
    assert_one_clear_message(err, profiles, "slow_mr.min_seconds", "greater than max_seconds")


def test_cube_naming_an_unknown_profile(config_dir: Path) -> None:
    catalog = config_dir / "catalog.toml"
    replace_in(catalog, '= "flaky_mr" }', '= "flakey_mr" }')
    err = config_error(config_dir)
    key = "cubes[1].step_profiles.Extract Fact Table Distinct Columns"
    assert_one_clear_message(err, catalog, key, "unknown profile 'flakey_mr'")


def test_cube_overriding_a_step_that_does_not_exist(config_dir: Path) -> None:
    catalog = config_dir / "catalog.toml"
    replace_in(catalog, '"Build Dimension Dictionary" = "broken"', '"Build Dictionary" = "broken"')
    err = config_error(config_dir)
    assert_one_clear_message(err, catalog, "cubes[2].step_profiles.Build Dictionary", "no step")


def test_cube_naming_an_unknown_template(config_dir: Path) -> None:
    catalog = config_dir / "catalog.toml"
    replace_in(catalog, 'BUILD = "shell_demo"', 'BUILD = "shell_demos"')
    err = config_error(config_dir)
    assert_one_clear_message(err, catalog, "cubes[4].templates.BUILD", "unknown template")


def test_cube_naming_an_unknown_model(config_dir: Path) -> None:
    catalog = config_dir / "catalog.toml"
    text = catalog.read_text().replace(
        'name = "slow_cube"\nproject = "learn_kylin"\nmodel = "kylin_sales_model"',
        'name = "slow_cube"\nproject = "learn_kylin"\nmodel = "sales_model"',
    )
    catalog.write_text(text)
    err = config_error(config_dir)
    assert_one_clear_message(err, catalog, "cubes[3].model", "unknown model 'sales_model'")


def test_cube_dimension_outside_the_model(config_dir: Path) -> None:
    catalog = config_dir / "catalog.toml"
    replace_in(
        catalog,
        '{ name = "PART_DT", table = "KYLIN_SALES", column = "PART_DT" },',
        '{ name = "PART_DT", table = "KYLIN_SALES", column = "PART_DAY" },',
    )
    err = config_error(config_dir)
    key = "cubes[0].dimensions[0].column"
    assert_one_clear_message(err, catalog, key, "DEFAULT.KYLIN_SALES has no column 'PART_DAY'")


def test_model_joining_a_table_that_is_not_listed(config_dir: Path) -> None:
    catalog = config_dir / "catalog.toml"
    replace_in(catalog, 'table = "DEFAULT.KYLIN_CAL_DT"', 'table = "DEFAULT.KYLIN_CALENDAR"')
    err = config_error(config_dir)
    assert_one_clear_message(err, catalog, "models[0].lookups[0].table", "no table")


def test_cube_name_with_shell_characters_is_refused(config_dir: Path) -> None:
    catalog = config_dir / "catalog.toml"
    replace_in(catalog, 'name = "slow_cube"', 'name = "slow; rm -rf ~"')
    err = config_error(config_dir)
    assert_one_clear_message(err, catalog, "cubes[3].name", "letters, digits and underscores")


def test_template_placeholder_inside_quotes_is_refused(config_dir: Path) -> None:
    template = config_dir / "templates" / "shell_demo.toml"
    replace_in(template, "echo cube: {cube};", 'echo \\"cube: {cube}\\";')
    err = config_error(config_dir)
    assert_one_clear_message(err, template, "steps[0].command", "inside quotes")


def test_template_unknown_placeholder_and_cmd_type(config_dir: Path) -> None:
    template = config_dir / "templates" / "shell_demo.toml"
    replace_in(template, "echo job: {job_id}", "echo job: {jobid}")
    err = config_error(config_dir)
    assert_one_clear_message(err, template, "steps[0].command", r"nknown placeholder '\{jobid\}'")
    replace_in(template, "echo job: {jobid}", "echo job: {job_id}")
    replace_in(template, 'cmd_type = "SHELL_CMD"', 'cmd_type = "SHELL_COMMAND"')
    err = config_error(config_dir)
    assert_one_clear_message(err, template, "steps[0].cmd_type", "unknown cmd_type")


def test_level_placeholder_only_in_repeated_steps(config_dir: Path) -> None:
    template = config_dir / "templates" / "build.toml"
    replace_in(template, "-level 0 -cubingJobId", "-level {level} -cubingJobId")
    err = config_error(config_dir)
    assert_one_clear_message(err, template, "steps[6].command", r"nknown placeholder '\{level\}'")


# -- environment and overrides ----------------------------------------------------------------


def test_environment_overrides_settings() -> None:
    environ = {
        "KJOBS_MAX_CONCURRENT_JOBS": "3",
        "KJOBS_TIME_SCALE": "60",
        "KJOBS_STORE": "/var/lib/kjobs/jobs.db",
        "KJOBS_RETRY": " 2 ",
        "KJOBS_NODE_ID": "node-7",
        "KJOBS_SEED": "42",
        "KJOBS_RETRY_EXCEPTION_CLASSES": "java.io.IOException, SimulatedFailure",
        "KJOBS_STREAMING_JOB_RETRY_ENABLED": "true",
        "KJOBS_SHELL_TIMEOUT": "0",
        "PATH": "/usr/bin",
    }
    settings = load_config(environ=environ).engine
    assert settings.max_concurrent_jobs == 3
    assert settings.time_scale == 60.0
    assert settings.store == "/var/lib/kjobs/jobs.db"
    assert settings.retry == 2
    assert settings.node_id == "node-7"
    assert settings.seed == 42
    assert settings.retry_exception_classes == {"java.io.IOException", "SimulatedFailure"}
    assert settings.streaming.job_retry_enabled is True
    assert settings.shell_timeout_s is None


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("KJOBS_MAX_CONCURRENT_JOBS", "-2", "at least 1"),
        ("KJOBS_RETRY", "three", "must be an integer, got 'three'"),
        ("KJOBS_TIME_SCALE", "0", "than 0"),
        ("KJOBS_STREAMING_JOB_RETRY_ENABLED", "maybe", "boolean"),
    ],
)
def test_bad_environment_value_names_the_variable(name: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={name: value})
    err = info.value
    assert err.file == "environment"
    assert err.key.startswith(name)
    assert re.search(reason, err.reason)


def test_unknown_kjobs_variable_is_ignored_with_a_warning() -> None:
    with capture_logs() as logs:
        config = load_config(environ={"KJOBS_MAX_JOBS": "5", "KYLIN_HOME": "/opt/kylin"})
    assert config.engine.max_concurrent_jobs == 10
    warnings = [e for e in logs if e["event"] == "kjobs.config.unknown_env"]
    assert warnings == [{"event": "kjobs.config.unknown_env", "log_level": "warning",
                         "variable": "KJOBS_MAX_JOBS"}]  # fmt: skip


def test_known_variables_log_nothing() -> None:
    with capture_logs() as logs:
        load_config(environ={"KJOBS_SEED": "1"})
    assert [e for e in logs if e["event"] == "kjobs.config.unknown_env"] == []


def test_overrides_win_over_environment_and_file() -> None:
    config = load_config(
        environ={"KJOBS_TIME_SCALE": "10", "KJOBS_STORE": "env.db"},
        overrides={"kjobs.time-scale": 120, "kjobs.store": ":memory:", "kjobs.node-id": None},
    )
    assert config.engine.time_scale == 120.0
    assert config.engine.store == ":memory:"
    assert config.engine.node_id == ""  # None means "flag not given"


def test_overrides_accept_text_and_are_validated() -> None:
    assert load_config(environ={}, overrides={"kylin.job.retry": "4"}).engine.retry == 4
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides={"kjobs.time-scale": -3})
    assert_one_clear_message(info.value, "overrides", "kjobs.time-scale", "than 0")
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides={"kjobs.timescale": 3})
    assert_one_clear_message(info.value, "overrides", "kjobs.timescale", "unknown key")
