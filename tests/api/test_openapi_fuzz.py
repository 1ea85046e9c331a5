"""Property-based fuzzing of the live server from its own ``/openapi.json`` (schemathesis).

Every generated request, valid (positive) or not (negative), must get a documented status
(never a 5xx) and a body that matches the documented schema. Bounded: a few examples per
operation and mode. (schemathesis's pytest loader does not run on pytest 9, so the operations
are driven with Hypothesis directly.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

AUTH = ("ADMIN", "KYLIN")
EXAMPLES = 15


@pytest.fixture(scope="module")
def live_server(
    launch_server: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("fuzz")
    server = launch_server(folder, folder / "kjobs.sqlite", 5000.0)
    yield server
    server.stop()


def _fuzz(
    operation: Any, mode: GenerationMode, session: requests.Session, statuses: list[int]
) -> None:
    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        statuses.append(case.call_and_validate(session=session).status_code)

    check()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_documented(live_server: Any, mode: GenerationMode) -> None:
    config = schemathesis.Config.from_dict(
        {"auth": {"basic": {"username": AUTH[0], "password": AUTH[1]}}}
    )
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json", config=config)
    failures: list[str] = []
    statuses: list[int] = []
    operations = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue  # GET /health: no parameter, body or credentials to get wrong
            try:
                _fuzz(operation, mode, session, statuses)
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
    assert all(status < 500 for status in statuses)
    # the credentials were really used: valid requests got through, invalid ones were refused
    wanted = 200 if mode is GenerationMode.POSITIVE else 400
    assert statuses.count(wanted) > len(statuses) // 10, sorted(set(statuses))


def _has_inputs(operation: Any) -> bool:
    """Whether a request to ``operation`` has anything a negative case can get wrong."""
    secured = operation.definition.raw.get("security")
    return bool(list(operation.iter_parameters()) or operation.body or secured)
