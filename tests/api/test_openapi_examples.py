"""The OpenAPI document carries an example of every request body and of the main answers, and
every example is a valid instance of the model the server answers with."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from engine.api import schedules, schemas, streaming_schemas
from engine.api.app import create_app
from engine.api.examples import EXAMPLES
from engine.config import Config
from engine.facade import Engine


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_fits_its_model(name: str) -> None:
    found = (getattr(module, name, None) for module in (schemas, streaming_schemas, schedules))
    model = next(m for m in found if m is not None)
    assert issubclass(model, BaseModel)
    model.model_validate(EXAMPLES[name])


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_every_request_body_and_the_job_answers_have_examples(make_config: Any) -> None:
    config: Config = make_config()
    document = create_app(Engine(config)).openapi()
    components = document["components"]["schemas"]
    requests: set[str] = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            requests |= _refs(operation.get("requestBody", {}))
    assert requests, "no request bodies found"
    main_answers = {
        "JobInstance",
        "StepOutputBody",
        "Overview",
        "Envelope",
        "ErrorBody",
        "CubeBody",
    }
    for name in requests | main_answers:
        assert components[name].get("examples"), f"{name} has no example"
