"""What the streaming API tests share: constants, the extended catalog, a ticking clock, helpers.

The engine runs the real loops at 5,000x (a 30 s micro-batch every 6 ms). Waits are bounded:
status changes are awaited on the engine's event stream (``StreamingChanged``), batches on a
clock that tells waiters whenever a loop starts a wait (every batch ends with one).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from engine.api.app import create_app
from engine.clock import SystemClock
from engine.config import SHIPPED_CONFIG_DIR, load_config
from engine.events import StreamingChanged
from engine.facade import Engine
from engine.streaming.service import StreamingService

# the keys of a listed job, in the order of the seed's response example
SEED_KEYS = [
    "uuid", "last_modified", "create_time", "version", "mvcc", "model_alias", "owner",
    "model_id", "last_start_time", "last_end_time", "last_update_time", "last_batch_count",
    "subscribe", "fact_table", "job_status", "job_type", "process_id", "node_info",
    "job_execution_id", "yarn_app_id", "yarn_app_url", "params", "project", "skip_listener",
    "action", "model_broken", "data_latency", "last_status_duration", "model_indexes",
    "launching_error", "partition_desc",
]  # fmt: skip
PARTITION_KEYS = [
    "partition_date_column", "partition_date_start", "partition_date_format", "partition_type",
    "partition_condition_builder",
]  # fmt: skip
ERROR_KEYS = ["code", "data", "msg", "exception", "url", "error_code"]
OK = {"code": "000", "data": "", "msg": ""}
INVALID_ACTION = (
    'The entered parameter "action" is invalid, only supports "START, STOP, FORCE_STOP, RESTART".'
)
PROJECT_EMPTY = (
    'Request parameter "project" is empty or value is empty. Please check the request parameters.'
)
ALREADY_STARTED = (
    'Can\'t start the streaming job of model "sales_stream_model", as it has an ongoing one at '
    "the moment. Please check and try again."
)
BROKEN = 'Can\'t start. Model "broken_stream_model" is currently broken.'
BAD_PARAMETER = "KE-010000003"
PARAMETER_EMPTY = "KE-010043201"
INVALID_ACTION_CODE = "KE-010043207"
START_REFUSED = "KE-010035005"
UNKNOWN_JOB = "KE-010032219"
UNKNOWN_PROJECT = "KE-010001002"
FAST = 5000.0
WAIT_S = 10.0
PROJECT = "learn_kylin"
SHIPPED = ("sales_stream_model", "broken_stream_model", "flaky_stream_model")
#: models the extended catalog adds: (alias, project, lag_s)
EXTRA = (
    ("alpha_stream", PROJECT, 1.0),
    ("Beta_stream", "other_project", 0.0),
    ("gamma_stream", PROJECT, 10.0),
    ("Delta_stream", PROJECT, 0.0),
)
ALL_ALIASES = SHIPPED + tuple(alias for alias, _, _ in EXTRA)

Api = tuple[Engine, httpx.AsyncClient]
OpenApi = Callable[..., AbstractAsyncContextManager[Api]]


# -- helpers -----------------------------------------------------------------------


def extended_config_dir(folder: Path) -> Path:
    """The shipped config plus a second project and four more streaming models."""
    target = folder / "config"
    shutil.copytree(SHIPPED_CONFIG_DIR, target)
    lines = [
        "",
        "[[projects]]",
        'name = "other_project"',
        "",
        "[[tables]]",
        'name = "OTHER.EVENTS"',
        'project = "other_project"',
        'columns = [{ name = "TS", type = "timestamp" }, { name = "V", type = "integer" }]',
    ]
    for alias, project, lag in EXTRA:
        fact, column = (
            ("SSB.LINEORDER_STREAMING", "LINEORDER_STREAMING.LO_PARTITIONCOLUMN")
            if project == PROJECT
            else ("OTHER.EVENTS", "EVENTS.TS")
        )
        lines += [
            "",
            "[[streaming_models]]",
            f'alias = "{alias}"',
            f'project = "{project}"',
            f'fact_table = "{fact}"',
            f'topic = "{alias.lower()}_topic"',
            f'partition = {{ column = "{column}" }}',
            f"lag_s = {lag}",
        ]
    with (target / "catalog.toml").open("a") as catalog:
        catalog.write("\n".join(lines) + "\n")
    return target


class TickingClock:
    """``SystemClock`` that wakes waiters whenever a task starts a sleep."""

    def __init__(self) -> None:
        self._clock = SystemClock()
        self._tick = anyio.Event()

    def now_ms(self) -> int:
        """Wall-clock time."""
        return self._clock.now_ms()

    async def sleep(self, seconds: float) -> None:
        """Wake the waiters, then sleep for real."""
        self._tick.set()
        self._tick = anyio.Event()
        await self._clock.sleep(seconds)

    async def until(self, check: Callable[[], Awaitable[bool]]) -> None:
        """Wait (bounded) until ``check()`` holds, re-checking after every sleep start."""
        with anyio.fail_after(WAIT_S):
            while True:
                tick = self._tick
                if await check():
                    return
                await tick.wait()


def service_of(engine: Engine) -> StreamingService:
    assert engine.streaming is not None
    return engine.streaming


def job_id(engine: Engine, alias: str, kind: str = "build") -> str:
    model = next(m for m in engine.catalog.streaming_models if m.alias == alias)
    return f"{model.model_id}_{kind}"


async def wait_status(engine: Engine, jid: str, *statuses: str) -> None:
    """Until the job's stored status is one of ``statuses`` (on the engine's events)."""
    service = service_of(engine)
    with anyio.fail_after(WAIT_S):
        async with engine.subscribe() as events:
            if service.get(jid).status.value in statuses:
                return
            async for event in events:
                if (
                    isinstance(event, StreamingChanged)
                    and event.job_id == jid
                    and event.status in statuses
                ):
                    return


async def wait_batches(engine: Engine, jid: str, count: int = 1) -> None:
    """Until the job wrote ``count`` stats rows, the latest of a non-empty batch."""
    service = service_of(engine)
    assert isinstance(engine.clock, TickingClock)

    async def written() -> bool:
        job = service.get(jid)
        return bool(job.last_batch_count) and len(await service.stats(jid, 60)) >= count

    await engine.clock.until(written)


async def act(client: httpx.AsyncClient, action: str, *ids: str, **extra: Any) -> httpx.Response:
    return await client.put(
        "/streaming_jobs/status", json={"action": action, "job_ids": list(ids), **extra}
    )


async def ok(client: httpx.AsyncClient, action: str, *ids: str) -> None:
    response = await act(client, action, *ids, project=PROJECT)
    assert response.status_code == 200, response.text
    assert response.json() == OK
    assert list(response.json()) == ["code", "data", "msg"]


async def start_running(engine: Engine, client: httpx.AsyncClient, jid: str) -> None:
    await ok(client, "START", jid)
    await wait_status(engine, jid, "RUNNING")


async def listing(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/streaming_jobs", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["code", "data", "msg"] and body["code"] == "000" and body["msg"] == ""
    assert list(body["data"]) == ["value", "offset", "limit", "total_size"]
    return dict(body["data"])


async def listed(client: httpx.AsyncClient, jid: str, project: str = PROJECT) -> dict[str, Any]:
    page = await listing(client, job_ids=jid, project=project)
    assert page["total_size"] == 1
    return dict(page["value"][0])


def aliases(page: dict[str, Any]) -> list[str]:
    return [job["model_alias"] for job in page["value"]]


def assert_error(response: httpx.Response, status: int, code: str, msg: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ERROR_KEYS
    assert body["code"] == "999" and body["data"] is None
    assert body["error_code"] == code
    assert body["msg"] and body["exception"] == body["msg"]
    if msg is not None:
        assert body["msg"] == msg


def sort_order(jobs: Sequence[dict[str, Any]], key: str, reverse: bool) -> list[str]:
    """Uuids as SPEC §6 sorts them: nulls lowest, the uuid breaking ties."""

    def rank(job: dict[str, Any]) -> tuple[bool, Any, str]:
        value = job[key]
        if key == "model_alias":
            value = (value.casefold(), value)
        return (value is not None, value if value is not None else 0, job["uuid"])

    return [job["uuid"] for job in sorted(jobs, key=rank, reverse=reverse)]


async def record_actions(client: httpx.AsyncClient, jid: str) -> list[str]:
    response = await client.get("/streaming_jobs/records", params={"job_id": jid})
    assert response.status_code == 200, response.text
    return [r["action"] for r in response.json()["data"]]


def api_opener(tmp_path: Path) -> OpenApi:
    """``async with open_api(extended=False) as (engine, client)``: fast, in memory."""

    @asynccontextmanager
    async def open_api(extended: bool = False, **kwargs: Any) -> AsyncIterator[Api]:
        folder = extended_config_dir(tmp_path) if extended else None
        config = load_config(
            folder,
            environ={},
            overrides={
                "kjobs.time-scale": FAST,
                "kjobs.store": ":memory:",
                "kjobs.workdir": str(tmp_path / "work"),
            },
        )
        async with Engine(config, clock=TickingClock(), **kwargs) as engine:
            transport = httpx.ASGITransport(app=create_app(engine))
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://kjobs.test/kylin/api",
                auth=("ADMIN", "KYLIN"),
            ) as client:
                yield engine, client

    return open_api
