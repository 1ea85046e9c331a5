"""``GET /streaming_jobs`` as a pure function: every filter, sort key, paging and the view."""

from __future__ import annotations

import pytest

from engine.core import streaming as core
from engine.core.errors import InvalidRequest, InvalidStreamingParameter
from engine.core.states import RecordAction, StreamingJobType, StreamingStatus
from engine.core.streaming import BatchStats, StreamingJob, StreamingRecord
from engine.streaming.query import (
    ModelView,
    StreamingJobQuery,
    format_time,
    listed_job,
    partition_desc,
    query_jobs,
    record_view,
    stats_view,
)

BUILD = StreamingJobType.STREAMING_BUILD
MERGE = StreamingJobType.STREAMING_MERGE
NOW = 1_700_000_100_000

SEED_FIELDS = [
    "uuid", "last_modified", "create_time", "version", "mvcc", "model_alias", "owner",
    "model_id", "last_start_time", "last_end_time", "last_update_time", "last_batch_count",
    "subscribe", "fact_table", "job_status", "job_type", "process_id", "node_info",
    "job_execution_id", "yarn_app_id", "yarn_app_url", "params", "project", "skip_listener",
    "action", "model_broken", "data_latency", "last_status_duration", "model_indexes",
    "launching_error", "partition_desc",
]  # fmt: skip


def job(
    model: str,
    job_type: StreamingJobType,
    *,
    alias: str | None = None,
    project: str = "p1",
    status: StreamingStatus = StreamingStatus.STOPPED,
    modified: int = 0,
    latency: int | None = None,
    record_time: int | None = None,
) -> StreamingJob:
    base = core.new_job(
        model,
        job_type,
        1_700_000_000_000,
        model_alias=alias or model,
        project=project,
        owner="ADMIN",
        params={"kylin.streaming.duration": "30"},
    )
    return base.evolve(
        status=status,
        last_modified=1_700_000_000_000 + modified,
        data_latency=latency,
        last_record_time=record_time,
    )


JOBS = [
    job("m1", BUILD, alias="Sales", modified=5, latency=300, record_time=NOW - 1000),
    job("m1", MERGE, alias="Sales", modified=6, record_time=NOW - 5000),
    job("m2", BUILD, alias="orders", status=StreamingStatus.RUNNING, modified=3, latency=20),
    job("m2", MERGE, alias="orders", status=StreamingStatus.ERROR, modified=9),
    job("m3", BUILD, alias="presales", project="p2", modified=1,
        status=StreamingStatus.LAUNCHING_ERROR, record_time=NOW - 3000),
    job("m3", MERGE, alias="presales", project="p2", modified=2),
]  # fmt: skip


def ids(query: StreamingJobQuery, jobs: list[StreamingJob] = JOBS) -> list[str]:
    return [j.uuid for j in query_jobs(jobs, query, NOW).jobs]


def test_default_is_last_modified_newest_first_ten_per_page() -> None:
    page = query_jobs(JOBS, StreamingJobQuery(), NOW)
    assert [j.uuid for j in page.jobs] == [
        "m2_merge", "m1_merge", "m1_build", "m2_build", "m3_merge", "m3_build",
    ]  # fmt: skip
    assert (page.offset, page.limit, page.total_size) == (0, 10, 6)


def test_model_name_is_a_case_insensitive_substring() -> None:
    assert set(ids(StreamingJobQuery(model_name="SALES"))) == {
        "m1_build", "m1_merge", "m3_build", "m3_merge",
    }  # fmt: skip
    assert ids(StreamingJobQuery(model_name="nothing")) == []


def test_model_names_are_exact() -> None:
    assert set(ids(StreamingJobQuery(model_names=["Sales", "orders"]))) == {
        "m1_build", "m1_merge", "m2_build", "m2_merge",
    }  # fmt: skip
    assert ids(StreamingJobQuery(model_names=["sales"])) == []  # exact: case matters
    assert ids(StreamingJobQuery(model_names=["Sale"])) == []


def test_job_types() -> None:
    assert set(ids(StreamingJobQuery(job_types=["STREAMING_MERGE"]))) == {
        "m1_merge", "m2_merge", "m3_merge",
    }  # fmt: skip
    both = StreamingJobQuery(job_types=["STREAMING_MERGE", "STREAMING_BUILD"])
    assert len(ids(both)) == 6
    with pytest.raises(InvalidRequest, match="job_types"):
        ids(StreamingJobQuery(job_types=["BATCH"]))


def test_error_status_matches_launching_error() -> None:
    assert set(ids(StreamingJobQuery(statuses=["ERROR"]))) == {"m2_merge", "m3_build"}
    assert ids(StreamingJobQuery(statuses=["RUNNING"])) == ["m2_build"]
    assert set(ids(StreamingJobQuery(statuses=["RUNNING", "ERROR"]))) == {
        "m2_build", "m2_merge", "m3_build",
    }  # fmt: skip
    assert ids(StreamingJobQuery(statuses=["STARTING"])) == []
    with pytest.raises(InvalidRequest, match="statuses"):
        ids(StreamingJobQuery(statuses=["FINISHED"]))


def test_project() -> None:
    assert ids(StreamingJobQuery(project="p2")) == ["m3_merge", "m3_build"]
    assert ids(StreamingJobQuery(project="p3")) == []


def test_job_ids_need_a_project() -> None:
    with pytest.raises(
        InvalidStreamingParameter, match='Request parameter "project" is empty'
    ) as e:
        ids(StreamingJobQuery(job_ids=["m1_build"]))
    assert e.value.error_code == "KE-010043201"
    assert ids(StreamingJobQuery(job_ids=["m1_build", "m3_build"], project="p1")) == ["m1_build"]
    assert ids(StreamingJobQuery(job_ids=["m3_build"], project="p2")) == ["m3_build"]


def test_filters_combine() -> None:
    query = StreamingJobQuery(model_name="sales", job_types=["STREAMING_BUILD"], project="p1")
    assert ids(query) == ["m1_build"]


def test_sort_by_model_alias_both_ways() -> None:
    up = ids(StreamingJobQuery(sort_by="model_alias", reverse=False))
    assert up == ["m2_build", "m2_merge", "m3_build", "m3_merge", "m1_build", "m1_merge"]
    down = ids(StreamingJobQuery(sort_by="model_alias"))
    assert down == list(reversed(up))


def test_sort_by_data_latency_nulls_lowest() -> None:
    # only m1_build (300) and m2_build (20) have one; merge jobs never do
    down = ids(StreamingJobQuery(sort_by="data_latency"))
    assert down[:2] == ["m1_build", "m2_build"]
    up = ids(StreamingJobQuery(sort_by="data_latency", reverse=False))
    assert up[-2:] == ["m2_build", "m1_build"]
    assert set(up[:4]) == {"m1_merge", "m2_merge", "m3_build", "m3_merge"}


def test_sort_by_last_status_duration_nulls_lowest() -> None:
    # durations: m1_merge 5000, m3_build 3000, m1_build 1000; the others have no record
    down = ids(StreamingJobQuery(sort_by="last_status_duration"))
    assert down[:3] == ["m1_merge", "m3_build", "m1_build"]
    up = ids(StreamingJobQuery(sort_by="last_status_duration", reverse=False))
    assert up[3:] == ["m1_build", "m3_build", "m1_merge"]


def test_unknown_sort_key() -> None:
    with pytest.raises(InvalidRequest, match="sort_by"):
        ids(StreamingJobQuery(sort_by="uuid"))


def test_paging_by_page_index_with_total_before_paging() -> None:
    all_ids = ids(StreamingJobQuery())
    pages = [query_jobs(JOBS, StreamingJobQuery(page_offset=i, page_size=4), NOW) for i in (0, 1)]
    assert [j.uuid for j in pages[0].jobs] == all_ids[:4]
    assert [j.uuid for j in pages[1].jobs] == all_ids[4:]
    assert all(p.total_size == 6 and p.limit == 4 for p in pages)
    assert pages[1].offset == 1
    beyond = query_jobs(JOBS, StreamingJobQuery(page_offset=5, page_size=4), NOW)
    assert beyond.jobs == () and beyond.total_size == 6


def test_total_is_after_filtering() -> None:
    page = query_jobs(JOBS, StreamingJobQuery(project="p1", page_size=1), NOW)
    assert page.total_size == 4 and len(page.jobs) == 1


@pytest.mark.parametrize("size", [0, -1, 1001])
def test_page_size_bounds(size: int) -> None:
    with pytest.raises(InvalidRequest, match="page_size"):
        ids(StreamingJobQuery(page_size=size))
    assert len(ids(StreamingJobQuery(page_size=1000))) == 6


def test_negative_page_offset() -> None:
    with pytest.raises(InvalidRequest, match="page_offset"):
        ids(StreamingJobQuery(page_offset=-1))


def test_ten_thousand_jobs_in_one_pass() -> None:
    many = [
        job(f"m{i:05d}", BUILD if i % 2 else MERGE, modified=i, latency=i % 97)
        for i in range(10_000)
    ]
    page = query_jobs(many, StreamingJobQuery(sort_by="data_latency", page_size=1000), NOW)
    assert page.total_size == 10_000 and len(page.jobs) == 1000
    latencies = [j.data_latency for j in page.jobs]
    assert latencies == sorted(latencies, reverse=True)


def test_listed_job_has_the_seed_fields_in_order() -> None:
    listed = job("m3", BUILD, alias="presales", status=StreamingStatus.LAUNCHING_ERROR).evolve(
        last_update_time=1_645_186_414_513, data_latency=0, last_record_time=NOW - 42
    )
    desc = partition_desc("BASE.HY_LINEORDER", "LO_PARTITIONCOLUMN")
    view = listed_job(listed, NOW, version="4.0.0.0", model=ModelView(False, 3, desc))
    assert list(view) == SEED_FIELDS
    assert view["job_status"] == "ERROR" and view["launching_error"] is True
    assert view["last_update_time"] == "2022-02-18 12:13:34"
    assert view["data_latency"] == 0 and view["last_status_duration"] == 42
    assert view["model_indexes"] == 3 and view["model_broken"] is False
    assert view["partition_desc"]["partition_date_column"] == "HY_LINEORDER.LO_PARTITIONCOLUMN"


def test_listed_merge_job_has_no_latency_and_null_duration_without_records() -> None:
    merge = job("m1", MERGE).evolve(data_latency=5)
    view = listed_job(merge, NOW, version="4.0.0.0", model=None)
    assert view["data_latency"] is None and view["last_status_duration"] is None
    assert view["model_broken"] is True  # a job whose model is gone from the catalog
    assert view["last_update_time"] is None


def test_format_time_is_utc() -> None:
    assert format_time(0) == "1970-01-01 00:00:00"
    assert format_time(None) is None


def test_record_and_stats_views() -> None:
    record = StreamingRecord("m1_build", "p1", RecordAction.START, 123, id=4)
    assert record_view(record) == {
        "id": 4, "job_id": "m1_build", "project": "p1", "action": "START", "create_time": 123,
    }  # fmt: skip
    rows = [
        BatchStats("m1_build", "p1", 90, 3, 700, -5, -9, 200),
        BatchStats("m1_build", "p1", 60, 2, 500, 40, 30, 100),
    ]
    assert stats_view(rows) == {
        "consumption_rate_hist": [3, 2],
        "data_latency_hist": [0, 40],  # negative latencies show as 0, as Kylin
        "processing_time_hist": [700, 500],
        "create_time": [200, 100],
    }
