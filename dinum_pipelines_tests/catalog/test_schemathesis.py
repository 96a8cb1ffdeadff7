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
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.app import routes
from dinum_pipelines.catalog.openapi import openapi_document
from dinum_pipelines_tests.catalog.conftest import Api

pytestmark = pytest.mark.slow  # a minute and a half: the schemathesis CLI on both backends

CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance", "content_type_conformance")
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
    lines += ["[phases.coverage]", "unexpected-methods = []", ""]
    lines.append("[parameters]")
    lines += [f'"path.{parameter}" = {{ dictionary = "{parameter}", probability = 0.5 }}' for parameter in known_ids]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_schemathesis(catalog: RunningCatalog, token: str, config: Path, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config),
        "run", f"{catalog.url}/api/1/swagger.json",
        "--header", f"X-API-KEY: {token}",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",  # schemathesis 4.32's workers share generation state and fail at random
        "--max-redirects", "0",  # the permalink's 302 is the answer; a remote file is not ours to fetch
        "--report", "json", "--report-json-path", str(report),
    ]
    return subprocess.run(command, cwd=report.parent, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False)


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
