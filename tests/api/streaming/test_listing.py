"""Listing streaming jobs (SPEC §6): the listed shape, filters, sorting and paging."""

from __future__ import annotations

import re

import pytest

from engine.api import streaming_schemas
from tests.api.streaming.kit import (
    ALL_ALIASES,
    BAD_PARAMETER,
    PARAMETER_EMPTY,
    PARTITION_KEYS,
    PROJECT,
    PROJECT_EMPTY,
    SEED_KEYS,
    SHIPPED,
    UNKNOWN_PROJECT,
    OpenApi,
    aliases,
    assert_error,
    job_id,
    listed,
    listing,
    ok,
    service_of,
    sort_order,
    start_running,
    wait_batches,
    wait_status,
)

# -- shapes -------------------------------------------------------------------------------------


async def test_a_listed_job_has_the_seeds_fields_in_the_seeds_order(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        page = await listing(client)
        assert (page["offset"], page["limit"], page["total_size"]) == (0, 10, 6)
        assert sorted(aliases(page)) == sorted(SHIPPED * 2)
        for job in page["value"]:
            assert list(job) == SEED_KEYS
            assert list(job) == list(streaming_schemas.StreamingJobBody.model_fields)
            streaming_schemas.StreamingJobBody.model_validate(job)
            assert list(job["partition_desc"]) == PARTITION_KEYS
        sales = await listed(client, job_id(engine, "sales_stream_model"))
        model = next(m for m in engine.catalog.streaming_models if m.alias == "sales_stream_model")
        assert sales["uuid"] == f"{model.model_id}_build"
        assert sales["model_id"] == model.model_id
        assert sales["job_type"] == "STREAMING_BUILD" and sales["job_status"] == "STOPPED"
        assert sales["version"] == engine.settings.version and sales["owner"] == "ADMIN"
        assert sales["mvcc"] == 0 and sales["last_modified"] == sales["create_time"]
        assert (sales["fact_table"], sales["subscribe"]) == (
            "SSB.LINEORDER_STREAMING",
            "ssb_lineorder",
        )
        assert sales["project"] == PROJECT and sales["model_indexes"] == 3
        assert sales["partition_desc"] == {
            "partition_date_column": "LINEORDER_STREAMING.LO_PARTITIONCOLUMN",
            "partition_date_start": 0,
            "partition_date_format": "yyyy-MM-dd HH:mm:ss",
            "partition_type": "APPEND",
            "partition_condition_builder": (
                "org.apache.kylin.metadata.model.PartitionDesc$DefaultPartitionConditionBuilder"
            ),
        }
        for key in ("last_start_time", "last_end_time", "last_update_time", "last_batch_count",
                    "process_id", "job_execution_id", "action", "data_latency",
                    "last_status_duration"):  # fmt: skip
            assert sales[key] is None, key
        assert (sales["yarn_app_id"], sales["yarn_app_url"]) == ("", "")
        assert sales["skip_listener"] is False and sales["launching_error"] is False
        assert sales["model_broken"] is False
        # the build job's params as Kylin creates them, with the model's own duration
        assert sales["params"]["kylin.streaming.duration"] == "30"
        assert sales["params"]["kylin.streaming.kafka-conf.maxOffsetsPerTrigger"] == "0"
        assert sales["params"]["spark.master"] == "yarn"
        merge = await listed(client, job_id(engine, "sales_stream_model", "merge"))
        assert merge["params"]["kylin.streaming.segment-merge-threshold"] == "3"
        assert merge["params"]["kylin.streaming.segment-max-size"] == "32m"
        broken = await listed(client, job_id(engine, "broken_stream_model"))
        assert broken["model_broken"] is True


async def test_a_running_build_job_shows_its_batches_times_and_latency(
    stream_api: OpenApi,
) -> None:
    async with stream_api() as (engine, client):
        build, merge = (job_id(engine, "sales_stream_model", k) for k in ("build", "merge"))
        await start_running(engine, client, build)
        await start_running(engine, client, merge)
        await wait_batches(engine, build, 2)
        first = await listed(client, build)
        await wait_batches(engine, build, len(await service_of(engine).stats(build, 60)) + 1)
        job = await listed(client, build)
        assert job["job_status"] == "RUNNING" and job["action"] == "START"
        assert job["mvcc"] > first["mvcc"] > 0 and job["last_modified"] >= first["last_modified"]
        assert job["create_time"] <= job["last_start_time"] <= job["last_modified"]
        assert job["last_end_time"] is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", job["last_update_time"])
        assert isinstance(job["last_batch_count"], int) and job["last_batch_count"] >= 0
        assert isinstance(job["data_latency"], int) and job["data_latency"] >= 0
        assert isinstance(job["last_status_duration"], int) and job["last_status_duration"] >= 0
        assert job["yarn_app_id"].startswith("application_") and job["job_execution_id"] == 1
        assert job["node_info"] == engine.instance
        merged = await listed(client, merge)
        assert merged["job_status"] == "RUNNING"
        assert merged["data_latency"] is None  # merge jobs have no latency
        assert isinstance(merged["last_status_duration"], int)


# -- filters ------------------------------------------------------------------------------------


async def test_model_name_is_a_case_insensitive_substring(stream_api: OpenApi) -> None:
    async with stream_api() as (_, client):
        assert (await listing(client, model_name="SALES"))["total_size"] == 2
        assert set(aliases(await listing(client, model_name="sales"))) == {"sales_stream_model"}
        assert (await listing(client, model_name="_Stream_"))["total_size"] == 6
        nothing = await listing(client, model_name="nothing_like_it")
        assert nothing["value"] == [] and nothing["total_size"] == 0
        assert (await listing(client, model_name=""))["total_size"] == 6  # empty: no filter


async def test_model_names_are_exact_repeatable_or_comma_separated(stream_api: OpenApi) -> None:
    async with stream_api() as (_, client):
        repeated = await listing(client, model_names=["sales_stream_model", "flaky_stream_model"])
        commas = await listing(client, model_names="sales_stream_model,flaky_stream_model")
        assert repeated == commas
        assert repeated["total_size"] == 4
        assert set(aliases(repeated)) == {"sales_stream_model", "flaky_stream_model"}
        assert (await listing(client, model_names="sales"))["total_size"] == 0  # exact only
        assert (await listing(client, model_names="SALES_STREAM_MODEL"))["total_size"] == 0


async def test_job_types_filter(stream_api: OpenApi) -> None:
    async with stream_api() as (_, client):
        builds = await listing(client, job_types="STREAMING_BUILD")
        assert builds["total_size"] == 3
        assert {j["job_type"] for j in builds["value"]} == {"STREAMING_BUILD"}
        merges = await listing(client, job_types=["STREAMING_MERGE"])
        assert {j["uuid"][-6:] for j in merges["value"]} == {"_merge"}
        both = await listing(client, job_types="STREAMING_BUILD,STREAMING_MERGE")
        assert both["total_size"] == 6
        bad = await client.get("/streaming_jobs", params={"job_types": "STREAMING_SOMETHING"})
        assert_error(bad, 400, BAD_PARAMETER)
        assert "job_types" in bad.json()["msg"]


async def test_statuses_filter_and_launching_error_listed_as_error(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        flaky = job_id(engine, "flaky_stream_model")
        await start_running(engine, client, sales)
        await ok(client, "START", flaky)  # its first launch fails
        await wait_status(engine, flaky, "LAUNCHING_ERROR")
        running = await listing(client, statuses="RUNNING")
        assert [j["uuid"] for j in running["value"]] == [sales]
        errors = await listing(client, statuses="ERROR")
        assert [j["uuid"] for j in errors["value"]] == [flaky]
        job = errors["value"][0]
        assert job["job_status"] == "ERROR" and job["launching_error"] is True
        assert job["last_end_time"] is None and job["last_status_duration"] is None
        assert (await listing(client, statuses="STOPPED"))["total_size"] == 4
        assert (await listing(client, statuses=["RUNNING", "ERROR"]))["total_size"] == 2
        assert (await listing(client, statuses="RUNNING,STOPPED"))["total_size"] == 5
        assert (await listing(client, statuses="STARTING"))["total_size"] == 0
        for bad_status in ("LAUNCHING", "LAUNCHING_ERROR", "running", "RUNNING,"):
            bad = await client.get("/streaming_jobs", params={"statuses": bad_status})
            assert_error(bad, 400, BAD_PARAMETER)
            assert "statuses" in bad.json()["msg"]
        # a STOP turns LAUNCHING_ERROR into a plain ERROR, with its record
        await ok(client, "STOP", flaky)
        job = await listed(client, flaky)
        assert job["job_status"] == "ERROR" and job["launching_error"] is False
        assert job["last_end_time"] is not None
        # later launches succeed
        await start_running(engine, client, flaky)


async def test_project_filter(stream_api: OpenApi) -> None:
    async with stream_api(extended=True) as (_, client):
        other = await listing(client, project="other_project")
        assert other["total_size"] == 2 and set(aliases(other)) == {"Beta_stream"}
        assert (await listing(client, project="OTHER_PROJECT"))["total_size"] == 2
        assert (await listing(client, project=PROJECT))["total_size"] == 12
        assert (await listing(client, project=""))["total_size"] == 14
        missing = await client.get("/streaming_jobs", params={"project": "no_such_project"})
        assert_error(missing, 404, UNKNOWN_PROJECT)


async def test_job_ids_need_a_project(stream_api: OpenApi) -> None:
    async with stream_api(extended=True) as (engine, client):
        sales = job_id(engine, "sales_stream_model")
        beta = job_id(engine, "Beta_stream")
        alone = await client.get("/streaming_jobs", params={"job_ids": sales})
        assert_error(alone, 400, PARAMETER_EMPTY, PROJECT_EMPTY)
        empty = await client.get("/streaming_jobs", params={"job_ids": sales, "project": ""})
        assert_error(empty, 400, PARAMETER_EMPTY, PROJECT_EMPTY)
        one = await listing(client, job_ids=sales, project=PROJECT)
        assert [j["uuid"] for j in one["value"]] == [sales]
        merge = job_id(engine, "sales_stream_model", "merge")
        two = await listing(client, job_ids=f"{sales},{merge}", project=PROJECT)
        assert {j["uuid"] for j in two["value"]} == {sales, merge}
        assert (await listing(client, job_ids=[sales, merge], project=PROJECT)) == two
        # a job of another project is not listed under this one
        assert (await listing(client, job_ids=beta, project=PROJECT))["total_size"] == 0
        assert (await listing(client, job_ids=beta, project="other_project"))["total_size"] == 1
        assert (await listing(client, job_ids="no_such_job", project=PROJECT))["total_size"] == 0


async def test_filters_combine(stream_api: OpenApi) -> None:
    async with stream_api(extended=True) as (engine, client):
        await start_running(engine, client, job_id(engine, "gamma_stream"))
        page = await listing(
            client, model_name="a_s", job_types="STREAMING_BUILD", statuses="STOPPED",
            project=PROJECT,
        )  # fmt: skip
        # "a_s": alpha_stream, gamma_stream, Delta_stream; gamma's build runs
        assert sorted(aliases(page)) == ["Delta_stream", "alpha_stream"]


# -- sorting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [True, False])
async def test_sort_by_model_alias_is_case_insensitive(stream_api: OpenApi, reverse: bool) -> None:
    async with stream_api(extended=True) as (_, client):
        page = await listing(
            client, sort_by="model_alias", reverse=str(reverse).lower(), page_size=1000
        )
        assert page["total_size"] == 14
        assert [j["uuid"] for j in page["value"]] == sort_order(
            page["value"], "model_alias", reverse
        )
        expected = sorted(ALL_ALIASES, key=str.casefold, reverse=reverse)
        assert aliases(page)[::2] == expected  # build and merge of each model side by side
        assert aliases(page)[:2] == [expected[0]] * 2


async def test_sort_by_last_modified_is_the_default_newest_first(stream_api: OpenApi) -> None:
    async with stream_api() as (engine, client):
        flaky = job_id(engine, "flaky_stream_model", "merge")
        await ok(client, "FORCE_STOP", flaky)  # STOPPED -> STOPPING -> STOPPED: two writes
        page = await listing(client)
        assert page["value"][0]["uuid"] == flaky
        explicit = await listing(client, sort_by="last_modified", reverse="true")
        assert [j["uuid"] for j in explicit["value"]] == [j["uuid"] for j in page["value"]]
        assert [j["uuid"] for j in page["value"]] == sort_order(
            page["value"], "last_modified", True
        )
        oldest = await listing(client, reverse="false")
        assert oldest["value"][-1]["uuid"] == flaky
        assert [j["uuid"] for j in oldest["value"]] == sort_order(
            oldest["value"], "last_modified", False
        )


@pytest.mark.parametrize("reverse", [True, False])
async def test_sort_by_data_latency_puts_nulls_lowest(stream_api: OpenApi, reverse: bool) -> None:
    async with stream_api(extended=True) as (engine, client):
        alpha, gamma = job_id(engine, "alpha_stream"), job_id(engine, "gamma_stream")
        for jid in (alpha, gamma):
            await start_running(engine, client, jid)
        for jid in (alpha, gamma):
            await wait_batches(engine, jid)
        await ok(client, "STOP", alpha, gamma)  # the latencies stay put from here on
        await wait_status(engine, alpha, "STOPPED")
        await wait_status(engine, gamma, "STOPPED")
        page = await listing(client, sort_by="data_latency", reverse=reverse, page_size=100)
        jobs = page["value"]
        assert [j["uuid"] for j in jobs] == sort_order(jobs, "data_latency", reverse)
        latencies = [j["data_latency"] for j in jobs]
        known = [v for v in latencies if v is not None]
        assert len(known) == 2 and latencies.count(None) == 12  # merges and unstarted builds
        nulls_at = slice(2, None) if reverse else slice(None, 12)
        assert all(v is None for v in latencies[nulls_at])
        by_id = {j["uuid"]: j["data_latency"] for j in jobs}
        assert by_id[gamma] > by_id[alpha]  # gamma's events trail by 10 s, alpha's by 1 s
        assert [j["uuid"] for j in jobs if j["data_latency"] is not None] == (
            [gamma, alpha] if reverse else [alpha, gamma]
        )


@pytest.mark.parametrize("reverse", [True, False])
async def test_sort_by_last_status_duration(stream_api: OpenApi, reverse: bool) -> None:
    async with stream_api() as (engine, client):
        sales, merge = (
            job_id(engine, "sales_stream_model"),
            job_id(engine, "sales_stream_model", "merge"),
        )
        await start_running(engine, client, sales)
        await start_running(engine, client, merge)
        page = await listing(client, sort_by="last_status_duration", reverse=reverse)
        jobs = page["value"]
        assert [j["uuid"] for j in jobs] == sort_order(jobs, "last_status_duration", reverse)
        durations = {j["uuid"]: j["last_status_duration"] for j in jobs}
        assert durations[sales] >= durations[merge] >= 0  # sales started first
        assert sum(v is None for v in durations.values()) == 4
        ends = jobs[:2] if reverse else jobs[-2:]
        assert {j["uuid"] for j in ends} == {sales, merge}


async def test_bad_sort_and_reverse_values_are_400(stream_api: OpenApi) -> None:
    async with stream_api() as (_, client):
        for params in ({"sort_by": "uuid"}, {"sort_by": "MODEL_ALIAS"}, {"reverse": "maybe"}):
            assert_error(await client.get("/streaming_jobs", params=params), 400, BAD_PARAMETER)
        assert (await listing(client, sort_by=""))["total_size"] == 6  # empty: the default


# -- paging -------------------------------------------------------------------------------------


async def test_paging_counts_every_match_and_pages_by_index(stream_api: OpenApi) -> None:
    async with stream_api(extended=True) as (_, client):
        everything = await listing(client, sort_by="model_alias", page_size=1000)
        assert everything["total_size"] == 14 and len(everything["value"]) == 14
        assert (everything["offset"], everything["limit"]) == (0, 1000)
        seen: list[str] = []
        for index, size in enumerate([4, 4, 4, 2]):
            page = await listing(client, sort_by="model_alias", page_offset=index, page_size=4)
            assert (page["offset"], page["limit"], page["total_size"]) == (index, 4, 14)
            assert len(page["value"]) == size
            seen += [j["uuid"] for j in page["value"]]
        assert seen == [j["uuid"] for j in everything["value"]]
        past = await listing(client, page_offset=4, page_size=4)
        assert past["value"] == [] and past["total_size"] == 14
        filtered = await listing(client, job_types="STREAMING_MERGE", page_size=3, page_offset=1)
        assert filtered["total_size"] == 7 and len(filtered["value"]) == 3
        default = await listing(client)
        assert (default["limit"], len(default["value"])) == (10, 10)


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": "1001"},
        {"page_size": "0"},
        {"page_size": "-1"},
        {"page_offset": "-1"},
        {"page_size": "ten"},
        {"page_offset": "1.5"},
    ],
)
async def test_bad_paging_is_400_never_422(stream_api: OpenApi, params: dict[str, str]) -> None:
    async with stream_api() as (_, client):
        assert_error(await client.get("/streaming_jobs", params=params), 400, BAD_PARAMETER)
