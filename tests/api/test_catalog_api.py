"""Catalog endpoints (SPEC §6, §7): Kylin 3 shapes that agree with each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.core.states import State

FastApi = Callable[..., Any]
NOT_FOUND = "KE-010001002"


async def test_projects_list_their_cubes(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        projects = (await client.get("/projects")).json()
        assert [p["name"] for p in projects] == ["learn_kylin"]
        assert list(projects[0]) == ["uuid", "name", "realizations"]
        names = [r["realization"] for r in projects[0]["realizations"]]
        assert names == [c.name for c in engine.catalog.cubes_of("learn_kylin")]
        assert {r["type"] for r in projects[0]["realizations"]} == {"CUBE"}
        paged = await client.get("/projects", params={"pageOffset": 1, "pageSize": 1})
        assert paged.json() == []


async def test_cubes_with_segments_after_a_build(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        before = (await client.get("/cubes", params={"cubeName": "KYLIN_SALES_CUBE"})).json()
        assert len(before) == 1
        cube = before[0]
        assert list(cube) == ["uuid", "name", "project", "descriptor", "status", "segments"]
        assert (cube["name"], cube["status"], cube["segments"]) == (
            "kylin_sales_cube",
            "DISABLED",
            [],
        )
        body = {"startTime": 0, "endTime": 0, "buildType": "BUILD"}
        job = (await client.put("/cubes/kylin_sales_cube/build", json=body)).json()
        await engine.wait_for(job["uuid"], {State.SUCCEED}, timeout=20)
        after = (await client.get("/cubes", params={"cubeName": "kylin_sales_cube"})).json()[0]
        assert after["status"] == "READY"
        [segment] = after["segments"]
        assert segment == {
            "uuid": job["related_segment"],
            "name": job["related_segment_name"],
            "status": "READY",
            "date_range_start": 0,
            "date_range_end": 2**63 - 1,
        }


async def test_cube_filters_and_paging(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):

        async def names(**params: Any) -> list[str]:
            response = await client.get("/cubes", params=params)
            assert response.status_code == 200, response.text
            return [c["name"] for c in response.json()]

        every = [c.name for c in engine.catalog.cubes]
        assert await names() == every
        assert await names(projectName="learn_kylin") == every
        assert await names(cubeName="cube", exactMatch="false") == [n for n in every if "cube" in n]
        assert await names(cubeName="cube") == []
        assert await names(modelName="kylin_sales_model") == every
        assert await names(offset=1, limit=2) == every[1:3]
        response = await client.get("/cubes", params={"projectName": "nowhere"})
        assert response.status_code == 404
        assert response.json()["error_code"] == NOT_FOUND


async def test_cube_desc(fast_api: FastApi) -> None:
    async with fast_api() as (engine, client):
        desc = (await client.get("/cube_desc/kylin_sales_cube/desc")).json()
        keys = ["uuid", "name", "model_name", "description", "dimensions", "measures"]
        assert list(desc) == keys
        assert desc["model_name"] == "kylin_sales_model"
        cube = engine.catalog.cube("kylin_sales_cube")
        assert [d["name"] for d in desc["dimensions"]] == [d.name for d in cube.dimensions]
        for dim in desc["dimensions"]:
            assert list(dim) == ["name", "table", "column", "derived"]
            assert dim["derived"] is None or dim["derived"] == [dim["column"]]
        count = next(m for m in desc["measures"] if m["function"]["expression"] == "COUNT")
        assert count["function"]["parameter"] == {"type": "constant", "value": "1"}
        missing = await client.get("/cube_desc/nope/desc")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == NOT_FOUND


async def test_models_and_tables(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        models = (await client.get("/models", params={"projectName": "learn_kylin"})).json()
        assert [m["name"] for m in models] == ["kylin_sales_model"]
        model = models[0]
        assert list(model) == [
            "uuid", "name", "project", "fact_table", "lookups", "dimensions", "metrics",
            "partition_desc",
        ]  # fmt: skip
        assert model["fact_table"] == "DEFAULT.KYLIN_SALES"
        named = await client.get("/models", params={"modelName": "kylin_sales_model"})
        assert named.json() == models
        assert (await client.get("/models", params={"pageOffset": 1, "pageSize": 1})).json() == []
        tables = (await client.get("/tables_and_columns", params={"project": "learn_kylin"})).json()
        assert tables and all(list(t) == ["table_SCHEM", "table_NAME", "columns"] for t in tables)
        assert (await client.get("/tables_and_columns")).json() == tables
        for params in ({"projectName": "nowhere"},):
            assert (await client.get("/models", params=params)).status_code == 404
        assert (await client.get("/tables_and_columns", params={"project": "x"})).status_code == 404


async def test_catalog_agrees_with_itself(fast_api: FastApi) -> None:
    """A cube's dimension tables are model aliases whose columns tables_and_columns lists."""
    async with fast_api() as (_, client):
        tables = (await client.get("/tables_and_columns", params={"project": "learn_kylin"})).json()
        columns = {
            f"{t['table_SCHEM']}.{t['table_NAME']}": {c["column_NAME"] for c in t["columns"]}
            for t in tables
        }
        models = {m["name"]: m for m in (await client.get("/models")).json()}
        for cube in (await client.get("/cubes")).json():
            desc = (await client.get(f"/cube_desc/{cube['name']}/desc")).json()
            model = models[desc["model_name"]]
            aliases = {model["fact_table"].split(".")[1]: model["fact_table"]}
            aliases.update({lk["alias"]: lk["table"] for lk in model["lookups"]})
            for dim in desc["dimensions"]:
                assert dim["table"] in aliases, (cube["name"], dim)
                assert dim["column"] in columns[aliases[dim["table"]]], (cube["name"], dim)


async def test_user_authentication(fast_api: FastApi) -> None:
    async with fast_api() as (_, client):
        response = await client.get("/user/authentication")
        assert response.json() == {
            "userDetails": {"username": "ADMIN", "authorities": [{"authority": "ROLE_ADMIN"}]}
        }
