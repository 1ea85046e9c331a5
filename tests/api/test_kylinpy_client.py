"""The real Kylin Python client, kylinpy 2.8 in its default (v1) mode, against a live server.

kylinpy's ``invoke_command`` helper calls ``inspect.getargspec`` (gone in Python 3.11), so the
tests call the methods it would dispatch to: ``CubeSource.fullbuild``, ``KylinJob.*``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from kylinpy import Kylin
from kylinpy.client.exceptions import HTTPError, NotFoundError, UnauthorizedError

DEADLINE_S = 30.0


def connect(server: Any, password: str = "KYLIN") -> Kylin:
    url = urlsplit(server.url)
    return Kylin(
        url.hostname, port=url.port, username="ADMIN", password=password,
        project="learn_kylin", version="v1",
    )  # fmt: skip


def wait_status(job: Any, *states: str) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while (status := job.status) not in states:
        assert time.monotonic() < deadline, f"job stuck in {status}"
        time.sleep(0.02)
    return str(status)


@pytest.fixture(scope="module")
def fast_server(launch_server: Callable[..., Any], tmp_path_factory: Any) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("kylinpy-fast")
    server = launch_server(folder, folder / "kjobs.sqlite", 5000.0)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_server(launch_server: Callable[..., Any], tmp_path_factory: Any) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("kylinpy-slow")
    server = launch_server(folder, folder / "kjobs.sqlite", 50.0)
    yield server
    server.stop()


def test_catalog_lookups(fast_server: Any) -> None:
    kylin = connect(fast_server)
    assert kylin.service.get_authentication()["username"] == "ADMIN"
    assert [p["name"] for p in kylin.projects()] == ["learn_kylin"]
    assert "kylin_sales_cube" in kylin.list_datasources()
    assert "KYLIN_SALES" in kylin.get_all_tables("DEFAULT")
    source = kylin.get_datasource("kylin_sales_cube")
    assert source.model_name == "kylin_sales_model"
    assert source.fact_table.fullname == "DEFAULT.KYLIN_SALES"
    assert {d.verbose for d in source.dimensions} >= {"PART_DT", "SELLER_COUNTRY"}
    assert all(d.datatype for d in source.dimensions)
    assert "SUM (KYLIN_SALES.PRICE)" in [m.expression for m in source.measures]
    assert source.lookups  # joins resolve through the model's lookups
    with pytest.raises(UnauthorizedError):
        connect(fast_server, password="wrong").projects()


def test_build_and_poll_to_finished_then_list_and_drop(fast_server: Any) -> None:
    kylin = connect(fast_server)
    source = kylin.get_datasource("kylin_sales_cube")
    desc = source.fullbuild()
    assert desc["job_status"] == "PENDING"
    job = kylin.get_job(desc["uuid"])
    assert wait_status(job, "FINISHED", "ERROR", "DISCARDED") == "FINISHED"
    assert job.get_desc()["progress"] == 100.0
    assert desc["uuid"] in [j.job_id for j in kylin.list_job()]
    assert source.list_segment()[0]["status"] == "READY"
    dropped = job.drop()
    assert dropped["uuid"] == desc["uuid"]
    with pytest.raises(NotFoundError) as missing:
        job.get_desc()
    assert desc["uuid"] in str(missing.value)  # kylinpy reads the body's "exception"


def test_pause_resume_cancel_a_running_job(slow_server: Any) -> None:
    kylin = connect(slow_server)
    desc = kylin.service.fullbuild("slow_cube")
    job = kylin.get_job(desc["uuid"])
    wait_status(job, "RUNNING")
    assert job.pause()["job_status"] == "STOPPED"
    assert job.status == "STOPPED"
    assert job.resume()["job_status"] == "PENDING"
    wait_status(job, "RUNNING")
    assert job.cancel()["job_status"] == "DISCARDED"
    with pytest.raises(HTTPError) as refused:
        job.resume()
    assert refused.value.status_code == 409
    assert "DISCARDED" in str(refused.value)
    listed = kylin.list_job()
    assert desc["uuid"] in [j.job_id for j in listed]
    assert job.drop()["job_status"] == "DISCARDED"
    assert desc["uuid"] not in [j.job_id for j in kylin.list_job()]
