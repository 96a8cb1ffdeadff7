"""/api/1/swagger.json: a valid OpenAPI 3 document naming exactly the routes the app serves, whose
schemas are those of the code that cleans requests and writes responses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate
from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.routing import Route

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.api_schemas import ref
from dinum_pipelines.catalog.app import routes
from dinum_pipelines.catalog.db import utcnow
from dinum_pipelines.catalog.chunks import PART_RECEIVED, UploadStatusError
from dinum_pipelines.catalog.errors import NotFound, ValidationError, server_error_body
from dinum_pipelines.catalog.openapi import UNDOCUMENTED, openapi_document
from dinum_pipelines.catalog.outages import database_unavailable
from dinum_pipelines.catalog.render import (
    FREQUENCY_LIST,
    GRANULARITY_LIST,
    LICENSE_LIST,
    RESOURCE_TYPE_LIST,
    Renderer,
)
from dinum_pipelines.catalog.validation import (
    CONTAINS_CONTROL_CHARACTER,
    DATASET_CHANGES,
    DATASET_LISTING,
    FREE_VALUE,
    NEW_DATASET,
    aware_datetime,
    boolean,
    checksum,
    choice,
    free_dict,
    http_url,
    iso_datetime,
    non_negative_int,
    organization_ref,
    resource_schema,
    restoration,
    spatial,
    storable_strings,
    tags,
    temporal_coverage,
    text,
)
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


# The schemas cannot drift from the code: every document the Renderer writes is validated against
# the schema the document shows for it, and every cleaner agrees with its schema on samples.

URL_METHODS = {"api_url", "file_url", "permalink", "resource_target"}
RENDERED = {  # Renderer method -> the component schema of what it writes
    "dataset": "Dataset", "resource": "Resource", "organization_ref": "OrganizationRef",
    "organization": "Organization", "user_ref": "UserRef", "me": "Me", "api_token": "ApiToken", "page": "DatasetPage",
}


COMPONENTS = openapi_document(routes(), "http://127.0.0.1:8000")["components"]["schemas"]


def schema_errors(value: Any, schema: dict[str, Any]) -> list[str]:
    """How `value` breaks `schema`, read as OpenAPI 3.0 reads it (nullable, formats, $refs to the components)."""
    validator = OAS30Validator({**schema, "components": {"schemas": COMPONENTS}}, format_checker=oas30_format_checker)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(value)]


def conforms(value: Any, schema: dict[str, Any]) -> bool:
    return not schema_errors(value, schema)


def assert_conforms(value: Any, name: str) -> None:
    assert schema_errors(value, ref(name)) == [], name


def test_every_renderer_document_has_a_schema_in_the_table() -> None:
    documents = {name for name in vars(Renderer) if not name.startswith("_") and name not in URL_METHODS}
    assert documents == set(RENDERED), "declare the new document's schema in render.SCHEMAS and add it to RENDERED"


def test_every_rendered_document_matches_its_schema(catalog: RunningCatalog, api: Api, publisher: Publisher) -> None:
    """Documents of full and of minimal records, as the store returns them, on both databases."""
    store, render = catalog.store, Renderer(catalog.url)
    full = api.create_dataset(
        organization=publisher.organization_id, acronym="SIRENE", description_short="Court", license="lov2",
        frequency="daily", frequency_date="2026-01-01", temporal_coverage="2020-01-01 - 2021-12-31",
        spatial={"zones": ["country:fr"], "granularity": "country", "geom": {"type": "MultiPolygon", "coordinates": []}},
        tags=["Élection 2024"], private=True, extras={"a": [1, {"b": None}]},
    )
    assert api.upload(full["id"], "data.csv", b"a,b\n1,2\n").status_code == 201
    remote = api.post(f"/datasets/{full['id']}/resources/", json={
        "title": "API", "url": "https://api.example.fr/v1?x=1", "filetype": "remote", "type": "api", "filesize": 0,
        "checksum": {"value": "00"}, "schema": {"url": "https://schema.data.gouv.fr/x.json"}, "extras": {"k": "v"},
    })
    assert remote.status_code == 201, remote.text
    minimal = api.create_dataset()  # no organization: the caller owns it
    token, token_record = store.accounts.create_token(publisher.user_id, "ci", expires_at=utcnow())
    user = store.accounts.require_user(publisher.user_id)
    org = store.accounts.require_organization(publisher.organization_id)
    records = [store.datasets.require(full["id"]), store.datasets.require(minimal["id"])]

    for record in records:
        assert_conforms(render.dataset(record), "Dataset")
        for resource in record["resources"]:
            assert_conforms(render.resource(resource), "Resource")
            assert_conforms({**render.resource(resource), "success": True}, "UploadedResource")
    assert_conforms(render.organization_ref(org), "OrganizationRef")
    members = store.accounts.members_of(org["id"])
    assert_conforms(render.organization({**org, "metrics": {"views": 3}}, members=members, dataset_count=2), "Organization")
    assert_conforms(render.user_ref(user), "UserRef")
    assert_conforms(render.me(user, store.accounts.organizations_of(user["id"])), "Me")
    assert_conforms(Renderer.api_token(token_record), "ApiToken")
    assert_conforms(Renderer.api_token(token_record, plain=token), "NewApiToken")
    items = [render.dataset(record) for record in records]
    assert_conforms(Renderer.page(items, total=5, page=2, page_size=2, page_url=lambda n: f"{catalog.url}/?page={n}"), "DatasetPage")
    for name, data in (("Licenses", LICENSE_LIST), ("Frequencies", FREQUENCY_LIST), ("ResourceTypes", RESOURCE_TYPE_LIST),
                       ("Granularities", GRANULARITY_LIST)):
        assert_conforms(data, name)
    # A closed schema catches a field added without its schema.
    assert not conforms({**render.dataset(records[1]), "new_field": 1}, ref("Dataset"))


@pytest.mark.parametrize(
    ("cleaner", "samples"),
    [
        (text(5), ["abc", None, "", "  ", "abcdef", "a\x00b", 3, "é\tà\n"]),
        (text(5, required=True), ["abc", None, "", "  ", "abcdef", "a\x1fb", ["a"]]),
        (choice(["a", "b"], default="a", aliases={"old": "b"}), ["a", "old", "c", None, 1]),
        (boolean, [True, False, None, "true", 0]),
        (non_negative_int, [0, 5, -1, None, True, "3"]),
        (free_dict, [{}, {"a": None}, None, [], "x"]),
        (http_url, ["https://a.fr/b?c=d", "http://x", "ftp://a.fr", "https:/a", "a.fr", None]),
        (iso_datetime, ["2026-01-01T10:00:00+02:00", "2026-01-01T10:00:00Z", None, "yesterday", 5]),
        (aware_datetime, ["2030-01-01T00:00:00+00:00", None, "never"]),
        (temporal_coverage, [{"start": "2020-01-01"}, {"start": "2020-01-01", "end": None}, None, {"end": "2020-01-01"},
                             {"start": "soon"}, "2020-01-01 - 2021-01-01", 5]),
        (spatial, [{"zones": ["country:fr"]}, {}, None, {"granularity": "nowhere"}, {"granularity": {}}, {"zones": [1]}, []]),
        (tags, [["abc", "def"], None, [], "abc", [1], ["a\x00bc"]]),
        (organization_ref, ["534fff75a3a7292c64a77de4", {"id": "x"}, None, "", {"id": ""}, 3]),
        (checksum, [{"value": "ab"}, {"type": "md5", "value": "ab"}, None, {"type": "crc32", "value": "ab"}, {"type": "md5"}]),
        (resource_schema, [{"name": "etalab/x"}, {"url": "https://a.fr/s.json"}, None, {}, {"name": 3}, {"url": "nope"}]),
        (restoration, [None, "2026-01-01", True]),
    ],
)
def test_cleaners_accept_what_their_schema_accepts(cleaner: Any, samples: list[Any]) -> None:
    """On each sample, the cleaner and its documented schema agree (a drift fails here)."""
    for sample in samples:
        try:
            cleaner(sample)
            cleaned = True
        except ValueError:
            cleaned = False
        assert cleaned == conforms(sample, cleaner.schema), f"{sample!r}: the cleaner {'accepts' if cleaned else 'refuses'} it"


def test_request_bodies_and_query_parameters_come_from_the_cleaning_declarations(document: dict[str, Any]) -> None:
    paths = document["paths"]

    def body(path: str, method: str) -> dict[str, Any]:
        return paths[path][method]["requestBody"]["content"]["application/json"]["schema"]

    assert body("/api/1/datasets/", "post") == storable_strings(NEW_DATASET.schema)
    assert body("/api/1/datasets/", "post")["required"] == ["title", "description"]
    assert body("/api/1/datasets/{dataset}/", "put") == storable_strings(DATASET_CHANGES.schema)
    assert "required" not in DATASET_CHANGES.schema  # udata's PUT is partial
    assert body("/api/1/datasets/{dataset}/resources/", "post")["properties"]["filetype"]["enum"] == ["remote"]
    listed = [parameter["name"] for parameter in paths["/api/1/datasets/"]["get"]["parameters"]]
    assert listed == [parameter.name for parameter in DATASET_LISTING.parameters]


def test_request_schemas_say_that_strings_refuse_control_characters(document: dict[str, Any]) -> None:
    """Every string a request carries, at any depth, in its path, its query or its JSON body,
    refuses control characters, as the catalog does; free objects' values too."""
    refused = {"type": "string", "anyOf": [CONTAINS_CONTROL_CHARACTER]}
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "extras": {"type": "object", "additionalProperties": True},
            "blank": {"type": "string", "not": {"type": "string", "anyOf": [{"pattern": "^\\s*$"}]}},
            "shown": {"$ref": "#/components/schemas/Dataset"},
        },
    }
    before = json.dumps(schema)
    read = storable_strings(schema)
    assert json.dumps(schema) == before  # the declarations are not changed
    properties = read["properties"]
    assert properties["name"]["not"] == refused
    assert "not" not in properties["kind"]  # an enum's values are known
    assert properties["tags"]["items"]["not"] == refused
    assert properties["either"]["anyOf"][0]["not"] == refused
    assert properties["extras"]["additionalProperties"] == FREE_VALUE
    assert properties["blank"]["allOf"] == [{"not": refused}]  # its own `not` kept
    assert properties["shown"] == {"$ref": "#/components/schemas/Dataset"}
    assert storable_strings(properties["name"]) == properties["name"]  # said once
    listing = document["paths"]["/api/1/datasets/"]["get"]["parameters"]
    assert {parameter["name"]: parameter["schema"].get("not") for parameter in listing}["q"] == refused
    path = document["paths"]["/api/1/datasets/{dataset}/"]["get"]["parameters"][0]
    assert path["in"] == "path" and path["schema"]["not"] == refused


def test_error_bodies_match_their_schemas() -> None:
    assert_conforms(ValidationError({"title": ["This field is required."]}).body(), "Error")
    assert_conforms(NotFound("Dataset not found").body(), "Error")
    assert_conforms(server_error_body("0123abcd"), "ServerError")
    assert_conforms(PART_RECEIVED, "UploadStatus")
    assert_conforms(UploadStatusError("Chunk size mismatch").body(), "UploadStatus")
    request = Request({"type": "http", "method": "GET", "path": "/api/1/datasets/", "headers": [], "query_string": b""})
    unavailable = asyncio.run(database_unavailable(request, OperationalError("SELECT 1", {}, Exception("gone"))))
    assert unavailable.status_code == 503
    assert_conforms(json.loads(bytes(unavailable.body)), "Unavailable")
