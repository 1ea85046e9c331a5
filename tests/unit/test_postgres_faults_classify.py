"""What a PostgreSQL error means to kjobs (``engine.store.postgres.faults.classify``)."""

from __future__ import annotations

import asyncpg
import pytest

from engine.core.errors import StoreBroken, StoreUnavailable
from engine.store.health import StoreHealth
from engine.store.postgres.faults import classify

REFUSALS = [
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
    asyncpg.exceptions.DiskFullError("could not extend file: No space left on device"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.InterfaceError("cannot perform operation: connection is closed"),
    # seen after a server restart: a pooled connection still reading the server's goodbye
    asyncpg.exceptions.InternalClientError(
        "cannot switch to state 11; another operation (2) is in progress"
    ),
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
]
BUGS = [
    asyncpg.exceptions.UniqueViolationError("duplicate key value"),
    asyncpg.exceptions.PostgresSyntaxError('syntax error at or near "SELEC"'),
    asyncpg.exceptions.InterfaceError("the server expects 2 arguments, 1 was passed"),
    ValueError("not a store error"),
]


@pytest.mark.parametrize("error", REFUSALS, ids=lambda e: type(e).__name__)
def test_a_server_away_or_out_of_resources_is_a_refusal(error: BaseException) -> None:
    health = StoreHealth("postgresql://kjobs@db/kjobs")
    mapped = classify(error, health)
    assert isinstance(mapped, StoreUnavailable)
    assert mapped.reason.startswith("PostgreSQL")
    assert mapped.__cause__ is error
    assert health.status == "degraded"
    health.accepted()
    assert health.status == "ok"


@pytest.mark.parametrize("error", [asyncpg.exceptions.DataCorruptedError("invalid page")])
def test_damaged_data_breaks_the_store(error: BaseException) -> None:
    health = StoreHealth("postgresql://kjobs@db/kjobs")
    mapped = classify(error, health)
    assert isinstance(mapped, StoreBroken)
    assert "postgresql://kjobs@db/kjobs" in str(mapped)
    assert health.status == "failing"


@pytest.mark.parametrize("error", BUGS, ids=lambda e: type(e).__name__)
def test_a_bug_is_left_as_it_is(error: BaseException) -> None:
    health = StoreHealth("postgresql://kjobs@db/kjobs")
    assert classify(error, health) is error
    assert health.status == "ok"


@pytest.mark.parametrize(
    ("error", "status"),
    [(StoreUnavailable("disk full"), "degraded"), (StoreBroken("store x: damaged"), "failing")],
    ids=["refusal", "break"],
)
def test_kjobs_own_store_errors_pass_through_and_are_recorded(
    error: BaseException, status: str
) -> None:
    health = StoreHealth("postgresql://kjobs@db/kjobs")
    assert classify(error, health) is error  # a StoreUnavailable is an OSError: not re-wrapped
    assert health.status == status
