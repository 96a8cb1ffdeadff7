"""/api/1/swagger.json: a valid OpenAPI 3 document naming exactly the routes the app serves."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from dinum_pipelines.catalog import RunningCatalog
from dinum_pipelines.catalog.app import routes
from dinum_pipelines.catalog.openapi import UNDOCUMENTED
from dinum_pipelines_tests.catalog.conftest import Api

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def document(anonymous: Api) -> dict[str, Any]:
    response = anonymous.get("/swagger.json")
    assert response.status_code == 200
    return response.json()


def served_operations() -> set[tuple[str, str]]:
    """(path without trailing slash or converters, METHOD) for every API route of `routes()`."""
    operations = set()
    for route in routes():
        if isinstance(route, Route) and route.path.startswith(("/api/1/", "/api/2/")):
            path = route.path.rstrip("/")
            operations |= {(path, method) for method in route.methods or () if method != "HEAD"}
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path.rstrip("/"), method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_document_is_valid_openapi_3(document: dict[str, Any], catalog: RunningCatalog) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": catalog.url}]
    assert document["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-KEY"}


def test_document_names_exactly_the_served_routes(document: dict[str, Any]) -> None:
    served = served_operations()
    assert ("/api/1/datasets/{dataset}", "PUT") in served  # the comparison is not vacuous
    assert documented_operations(document) == served


def test_every_operation_is_described(document: dict[str, Any]) -> None:
    undocumented = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation["summary"] == UNDOCUMENTED
    ]
    assert undocumented == [], "add these routes to openapi.OPERATIONS"


def test_writes_declare_the_api_key_and_the_auth_errors(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "get" and path != "/api/1/swagger.json":
                assert operation["security"] == [{"apiKey": []}], f"{method} {path}"
                assert "401" in operation["responses"], f"{method} {path}"


def test_parameterless_reads_answer_a_documented_status(document: dict[str, Any], anonymous: Api) -> None:
    checked = 0
    for path, item in document["paths"].items():
        if "get" in item and "{" not in path:
            response = anonymous.get(document["servers"][0]["url"] + path, allow_redirects=False)
            assert str(response.status_code) in item["get"]["responses"], path
            checked += 1
    assert checked >= 6
