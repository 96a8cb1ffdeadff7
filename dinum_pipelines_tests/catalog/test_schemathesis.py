"""schemathesis over the catalog's /api/1/swagger.json with a member's key (issue 12, part 3).

A bounded run of the schemathesis CLI (a fixed seed, a few examples per operation, its coverage,
fuzzing and stateful phases) against a real catalog on loopback, on SQLite and on PostgreSQL: no
answer may be a server error, break its documented schema, or have a status code or a content
type the document does not give. The catalog holds a few datasets first, with resources of both
kinds and every optional field set, and half of the run's path parameters are drawn from their
ids: otherwise nearly every generated id is a 404, and the documents the schemas describe are
never checked. The CLI runs as a subprocess (it has the CPU to itself to generate cases, and its
JSON report gives the figures); the catalog is served by this process.

The document's own claims (a response schema for every answer with a body, the dataset
listing's parameters) are checked without a server, on the document the app generates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.app import routes
from dinum_pipelines.catalog.openapi import openapi_document
from dinum_pipelines.catalog.validation import UNSTORABLE_TEXT
from dinum_pipelines_tests.catalog import schemathesis_hooks
from dinum_pipelines_tests.catalog.conftest import Api

pytestmark = pytest.mark.slow  # a minute and a half: the schemathesis CLI on both backends

# schemathesis runs every check it has unless told otherwise, as someone else's run of it would.
# Where the catalog answers as udata does and schemathesis' REST defaults expect otherwise, the
# configuration says so, each with its reason (and README.md's list of deliberate differences):
DELIBERATE = """
# udata answers 410 Gone for a deleted dataset or organization, valid request or not; schemathesis
# expects 404 for what is gone.
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "410", "415", "422", "428", "429", "5xx"]

# Editors still see what they deleted (udata: with `deleted` set, so that they can restore it), and
# the run's key is an editor's.
[checks.use_after_free]
enabled = false
"""
REPOSITORY = Path(__file__).resolve().parents[2]
SEED = 20261206
MAX_EXAMPLES = 10  # per operation and phase
RUN_TIMEOUT_SECONDS = 300
DATASET_LISTING_PARAMETERS = {"q", "page", "page_size", "sort", "organization", "tag", "license", "format"}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def success_bodies(operation: dict[str, Any]) -> list[dict[str, Any] | None]:
    """The schema of each 2xx answer's body (None for a body without a schema); [] for no body."""
    return [
        media.get("schema")
        for status, response in operation["responses"].items()
        if status.startswith("2")
        for media in response.get("content", {}).values()
    ]


def answers_without_body(operation: dict[str, Any]) -> bool:
    """204 No Content, or a redirection: HTTP gives these answers no body to describe."""
    return all(status in ("204", "302") for status in operation["responses"] if status[0] in "23")


def schema_coverage(document: dict[str, Any]) -> tuple[int, int, int]:
    """(operations, with a non-empty schema for every 2xx body, answering without a body)."""
    listed = operations(document)
    described = sum(1 for *_, op in listed if (bodies := success_bodies(op)) and all(bodies))
    bodiless = sum(1 for *_, op in listed if not success_bodies(op) and answers_without_body(op))
    return len(listed), described, bodiless


# The document's claims


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(routes(), "http://127.0.0.1:8000")


def test_every_answer_with_a_body_has_a_schema(document: dict[str, Any]) -> None:
    total, described, bodiless = schema_coverage(document)
    undescribed = [
        f"{method} {path}" for method, path, op in operations(document)
        if not (success_bodies(op) and all(success_bodies(op))) and not answers_without_body(op)
    ]
    assert undescribed == []
    # The bar: at least 90 % of the operations fully describe their 2xx answer. Those that
    # do not have a body (udata's 204 on DELETE, the permalink's 302) are described by their status.
    assert (described + bodiless) / total >= 0.9
    assert described >= 0.75 * total, "most operations answer with a document"


def test_dataset_listing_documents_its_parameters(document: dict[str, Any]) -> None:
    listing = document["paths"]["/api/1/datasets/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in listing["parameters"]}
    assert DATASET_LISTING_PARAMETERS <= set(parameters)
    assert parameters["page"]["schema"]["minimum"] == 1
    assert "-last_update" in parameters["sort"]["schema"]["enum"]
    assert parameters["tag"]["schema"]["type"] == "array" and parameters["tag"]["explode"] is True


# The run


def seed_catalog(api: Api, publisher: Publisher) -> dict[str, list[str]]:
    """A few datasets with resources of both kinds and every optional field set; their ids."""
    dataset_ids, resource_ids = [], []
    for number in range(3):
        dataset = api.create_dataset(
            title=f"Base Sirene {number}",
            organization=publisher.organization_id,
            acronym="SIRENE",
            description_short="Les entreprises",
            license="lov2",
            frequency="monthly",
            frequency_date="2026-01-01T00:00:00+00:00",
            temporal_coverage={"start": "2020-01-01", "end": "2025-12-31"},
            spatial={"zones": ["country:fr"], "granularity": "fr:commune"},
            tags=["entreprises", "siret"],
            private=number == 2,
            extras={"origin": "test", "check:available": True},
        )
        uploaded = api.upload(dataset["id"], f"sirene-{number}.csv", b"siren,nom\n123456789,Acme\n")
        assert uploaded.status_code == 201, uploaded.text
        remote = api.post(f"/datasets/{dataset['id']}/resources/", json={
            "title": "Documentation", "url": "https://www.insee.fr/fr/information/sirene.pdf", "filetype": "remote",
            "type": "documentation", "format": "pdf", "filesize": 1234, "mime": "application/pdf",
            "checksum": {"type": "sha256", "value": "ab" * 32}, "schema": {"name": "etalab/schema-sirene", "version": "1.0"},
            "extras": {"analysis:last-modified-at": "2026-01-01T00:00:00+00:00"},
        })
        assert remote.status_code == 201, remote.text
        dataset_ids += [dataset["id"], dataset["slug"]]
        resource_ids += [uploaded.json()["id"], remote.json()["id"]]
    return {"dataset": dataset_ids, "rid": resource_ids, "org": [publisher.organization_id, publisher.organization_slug]}


def config_file(path: Path, known_ids: dict[str, list[str]]) -> Path:
    """schemathesis' configuration: half of the path parameters drawn from existing objects' ids."""
    lines = []
    for parameter, ids in known_ids.items():
        lines += [f"[dictionaries.{parameter}]", f"values = {json.dumps(ids)}", ""]
    lines += ["[phases.coverage]", "unexpected-methods = []", "", DELIBERATE]
    lines.append("[parameters]")
    lines += [f'"path.{parameter}" = {{ dictionary = "{parameter}", probability = 0.5 }}' for parameter in known_ids]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_schemathesis(catalog: RunningCatalog, token: str, config: Path, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config),
        "run", f"{catalog.url}/api/1/swagger.json",
        "--header", f"X-API-KEY: {token}",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",  # schemathesis 4.32's workers share generation state and fail at random
        "--max-redirects", "0",  # the permalink's 302 is the answer; a remote file is not ours to fetch
        "--report", "json", "--report-json-path", str(report),
    ]
    # The refusals that are the catalog's rules and that the document cannot state (schemathesis_hooks.py).
    env = {**os.environ, "SCHEMATHESIS_HOOKS": schemathesis_hooks.__name__, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(
        command, cwd=report.parent, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False,
    )


def test_schemathesis_finds_no_server_error_nor_schema_violation(
    catalog: RunningCatalog, api: Api, publisher: Publisher, tmp_path: Path, document: dict[str, Any]
) -> None:
    config = config_file(tmp_path / "schemathesis.toml", seed_catalog(api, publisher))
    started = time.monotonic()
    completed = run_schemathesis(catalog, publisher.token, config, tmp_path / "report.json")
    elapsed = time.monotonic() - started
    report = json.loads((tmp_path / "report.json").read_text())
    total, described, bodiless = schema_coverage(document)
    failures, errors = report["test_cases"]["unique_failures"], report["errors"]
    print(
        f"\nschemathesis {report['schemathesis_version']} on {catalog.store.db.engine.dialect.name}: "
        f"{report['operations']['tested']} operations tested, {report['test_cases']['generated']} cases, "
        f"{failures} failures, {len(errors)} errors, in {elapsed:.0f} s; "
        f"{described}/{total} operations with a 2xx body schema ({100 * described / total:.0f} %), "
        f"{bodiless} answering without a body (204, 302)"
    )
    assert failures == 0 and not errors and report["exit_code"] == 0, completed.stdout[-20_000:]
    assert report["complete"] and report["stop_reason"] == "completed"
    assert report["operations"]["tested"] == total - 1  # all but the document itself (schemathesis skips it)


def test_what_schemathesis_found_stays_fixed(api: Api, publisher: Publisher) -> None:
    """Its findings, as plain requests: each was a 500 or an answer breaking its schema."""
    # A granularity given as an object: `in` a dict of ids raised TypeError (unhashable).
    response = api.post("/datasets/", json={"title": "T", "description": "D", "spatial": {"granularity": {}}})
    assert response.status_code == 400 and "spatial" in response.json()["errors"]
    # A second organization whose name makes a 255-character slug: the suffixed slug passed the
    # column's length (PostgreSQL refused it: a 500).
    for _ in range(2):
        created = api.post("/organizations/", json={"name": "0" * 350})
        assert created.status_code == 201, created.text
        assert len(created.json()["slug"]) <= 255
    # A naive frequency_date was shown without a time zone (not an RFC 3339 date-time).
    dataset = api.create_dataset(frequency_date="2026-01-01")
    assert dataset["frequency_date"] == "2026-01-01T00:00:00+00:00"
    # A date-time whose offset puts it before year 1 in UTC overflowed when stored.
    token = api.post("/me/api_tokens/", json={"expires_at": "0001-01-01T00:00:00+01:00"})
    assert token.status_code == 400 and "expires_at" in token.json()["errors"]


def test_what_every_check_found_stays_fixed(api: Api, publisher: Publisher) -> None:
    """What schemathesis' other checks found (schema-valid requests refused, invalid ones
    accepted), as plain requests."""
    dataset = api.create_dataset()
    # A field the form does not know is ignored, whatever its name or value holds; a known one
    # holding a control character, or a free object's key holding one, is refused.
    created = api.post("/datasets/", json={"title": "T", "description": "D", "\u0001x": "\u0000", "ignored": {"\u0002": 1}})
    assert created.status_code == 201, created.text
    refused = api.post("/datasets/", json={"title": "T", "description": "D", "extras": {"k\u0001": 1}})
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["extras"]
    # A checksum's type other than a known one (a falsy one was taken for sha1).
    for kind in (0, False, ""):
        remote = api.post(f"/datasets/{dataset['id']}/resources/", json={
            "title": "R", "url": "https://example.org/r.csv", "filetype": "remote", "checksum": {"type": kind, "value": "ab"},
        })
        assert remote.status_code == 400 and "checksum" in remote.json()["errors"], (kind, remote.text)
    # An API token's body is optional, but if sent it is an object (null was taken for {}).
    assert api.post("/me/api_tokens/").status_code == 201
    for body in (b"null", b"[]", b"0"):
        sent = api.post("/me/api_tokens/", data=body, headers={"Content-Type": "application/json"})
        assert sent.status_code == 400, body
    # `sort`: one '-' at most (--title was read as -title); empty is the default order.
    assert api.get("/datasets/", params={"sort": "--title"}).status_code == 400
    assert api.get("/datasets/", params={"sort": ""}).status_code == 200
    # URLs: what the document's pattern says, whole (a final line break, a port that is not a
    # number and a host in brackets were accepted by the code, or refused by it only).
    for url in ("https://example.org/a\n", "http://example.org:ab/", "http://[::1]/", "http:///a", "http://:80/"):
        response = api.post(f"/datasets/{dataset['id']}/resources/", json={"title": "R", "url": url, "filetype": "remote"})
        assert response.status_code == 400 and "url" in response.json()["errors"], url
    for url in ("http://exämple.fr/é", "https://u@example.org:8443/a?b#c"):
        response = api.post(f"/datasets/{dataset['id']}/resources/", json={"title": "R", "url": url, "filetype": "remote"})
        assert response.status_code == 201, (url, response.text)
    # udata's "start - end" temporal coverage: dates, as the document's pattern says.
    assert api.put(f"/datasets/{dataset['id']}/", json={"temporal_coverage": "2020-01-01 - 2020-12-31"}).status_code == 200
    for text in ("", "2020", "2020-01-01T00:00:00 - 2021"):
        changed = api.put(f"/datasets/{dataset['id']}/", json={"temporal_coverage": text})
        assert changed.status_code == 400 and "temporal_coverage" in changed.json()["errors"], text
    # An integer query parameter sent empty (`page=`) was read as absent; the document says an integer.
    for name in ("page", "page_size"):
        assert api.get("/datasets/", params={name: ""}).status_code == 400, name
        assert api.get(f"/organizations/{publisher.organization_id}/datasets/", params={name: ""}).status_code == 400, name
    # A chunk field of a whole upload is within its documented bounds (it was ignored).
    for fields in ({"chunksize": str(2**40)}, {"totalparts": "1", "partindex": "-1"}, {"uuid": "not-a-uuid"}):
        response = api.post(f"/datasets/{dataset['id']}/upload/", files={"file": ("a.csv", b"a,b\n1,2\n")}, data=fields)
        assert response.status_code == 400 and set(response.json()["errors"]) <= set(fields), (fields, response.text)
    whole = api.post(f"/datasets/{dataset['id']}/upload/", files={"file": ("a.csv", b"a,b\n1,2\n")}, data={"totalparts": "1"})
    assert whole.status_code == 201, whole.text


def test_the_hooks_drop_the_documented_refusals_only() -> None:
    """schemathesis_hooks drops a schema-valid request's refusal only for the rules it names."""
    def answer(errors: dict[str, list[str]]) -> bytes:
        return json.dumps({"errors": errors, "message": "Validation error"}).encode()

    documented = schemathesis_hooks.is_documented_refusal
    unstorable = UNSTORABLE_TEXT
    assert documented(400, answer({"extras": [unstorable]}), {"extras": {"a\u0000": 1}})
    assert documented(400, answer({"k\u0001": [unstorable]}), {"k\u0001": 1})
    assert documented(400, answer({"organization": ["Unknown organization '0'."]}), {"organization": "0"})
    assert documented(400, json.dumps({"success": False, "error": "No part received for upload x"}).encode(), None)
    # Kept: a free value (which the document does say), another message, another status.
    assert not documented(400, answer({"extras": [unstorable]}), {"extras": {"a": "\u0000"}})
    assert not documented(400, answer({"title": ["Field cannot be longer than 350 characters."]}), {"title": "t"})
    assert not documented(400, answer({"organization": ["Unknown organization '0'."], "title": ["x"]}), {})
    assert not documented(422, answer({"organization": ["Unknown organization '0'."]}), {})
    assert not documented(400, b"<html>", {})
    # A multipart field's JSON type, which its text cannot carry; not a JSON body's.
    accepted = SimpleNamespace(code="ST201", message="Invalid component: in body - violates `type` at /properties/filename")
    assert schemathesis_hooks.is_multipart_type_change(accepted, "multipart/form-data")
    assert not schemathesis_hooks.is_multipart_type_change(accepted, "application/json")
    assert not schemathesis_hooks.is_multipart_type_change(SimpleNamespace(code="ST201", message="minimum"), "multipart/form-data")
