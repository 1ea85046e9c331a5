"""The real server's ``/openapi.json`` carries an example of every request body and of every JSON
2xx answer, each example is valid against its own schema (JSON Schema 2020-12, as OpenAPI 3.1
says), and the catalog examples are exactly what the server answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.conftest import ServerProcess, start_server

pytestmark = pytest.mark.slow

Document = dict[str, Any]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("openapi")
    started = start_server(folder, folder / "kjobs.sqlite", 1000.0)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def document(server: ServerProcess) -> Document:
    answer = httpx.get(f"{server.url}/openapi.json", timeout=10.0)
    assert answer.status_code == 200
    found: Document = answer.json()
    return found


def bodies(document: Document) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("PUT /path request", media)`` for every JSON request body and 2xx answer."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            parts = [("request", operation.get("requestBody", {}))]
            parts += [(c, r) for c, r in operation["responses"].items() if c.startswith("2")]
            for part, body in parts:
                for kind, media in body.get("content", {}).items():
                    if "json" in kind:
                        yield f"{where} {part}", media


def examples_of(document: Document, media: dict[str, Any]) -> list[Any]:
    """The media's own examples, else those of the component its schema refers to."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [e["value"] for e in media["examples"].values()]
    schema = media.get("schema", {})
    ref = schema.get("$ref", "")
    target = document["components"]["schemas"].get(ref.rsplit("/", 1)[-1], schema)
    found: list[Any] = target.get("examples", [])
    return found


def validator(document: Document, schema: dict[str, Any]) -> Callable[[Any], None]:
    """A 2020-12 validator of ``schema`` whose ``#/components/...`` references resolve."""
    rooted = {**schema, "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(rooted).validate


def test_every_body_has_an_example_valid_against_its_schema(document: Document) -> None:
    seen = 0
    for where, media in bodies(document):
        examples = examples_of(document, media)
        assert examples, f"{where}: no example"
        check = validator(document, media["schema"])
        for example in examples:
            check(example)  # raises ValidationError naming the first mismatch
        seen += 1
    assert seen > 40  # every route: jobs, catalog, segments, streaming, schedules, cluster


def test_every_component_example_fits_its_component(document: Document) -> None:
    components = document["components"]["schemas"]
    with_examples = {n: s for n, s in components.items() if s.get("examples")}
    assert {"JobInstance", "CubeDescBody", "StreamingStatsEnvelope"} <= set(with_examples)
    for name, schema in with_examples.items():
        check = validator(document, {"$ref": f"#/components/schemas/{name}"})
        for example in schema["examples"]:
            check(example)


def test_a_wrong_example_is_caught(document: Document) -> None:
    """The check above has teeth: a job example with a string ``duration`` does not pass."""
    example = dict(document["components"]["schemas"]["JobInstance"]["examples"][0])
    example["duration"] = "long"
    check = validator(document, {"$ref": "#/components/schemas/JobInstance"})
    with pytest.raises(jsonschema_rs.ValidationError):
        check(example)


def test_the_catalog_examples_are_what_the_server_answers(
    server: ServerProcess, document: Document
) -> None:
    def example(name: str) -> Any:
        return document["components"]["schemas"][name]["examples"][0]

    with server.client() as client:
        cube = example("CubeDescBody")["name"]
        assert client.get(f"/cube_desc/{cube}/desc").json() == example("CubeDescBody")
        assert client.get("/models").json()[0] == example("ModelBody")
        assert client.get("/tables_and_columns").json()[0] == example("TableBody")
        assert client.get("/projects").json()[0] == example("ProjectBody")
        job = example("JobInstance")
        listed = client.get("/streaming_jobs").json()["data"]["value"]
    assert job["related_cube"] == cube
    build = example("StreamingJobListEnvelope")["data"]["value"][0]
    assert build["uuid"] in {j["uuid"] for j in listed}
    assert build["params"] == next(j["params"] for j in listed if j["uuid"] == build["uuid"])


def test_a_fresh_build_has_the_steps_of_the_job_example(
    server: ServerProcess, document: Document
) -> None:
    """The job example is the cube's real template: the same step names and commands' kinds."""
    example = document["components"]["schemas"]["JobInstance"]["examples"][0]
    body = {"startTime": 0, "endTime": 86_400_000, "buildType": example["type"]}
    with server.client() as client:
        answer = client.put(f"/cubes/{example['related_cube']}/build", json=body)
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert [s["name"] for s in job["steps"]] == [s["name"] for s in example["steps"]]
    assert [s["cmd_type"] for s in job["steps"]] == [s["cmd_type"] for s in example["steps"]]
    assert job.keys() == example.keys()
