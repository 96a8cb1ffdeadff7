"""The publisher against a real catalog on loopback: schema and validation report on each file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, bootstrap_publisher, serve_in_thread
from dinum_pipelines.lib.publish.catalog_client import UdataClient
from dinum_pipelines.lib.publish.publishing import ROLE_EXTRA, SHA256_EXTRA, SLUG_EXTRA, dataset_payload, file_digest, find_datasets, publish
from dinum_pipelines.lib.declare.registry import DatasetSpec
from dinum_pipelines.lib.publish.validation_report import MAX_ERRORS, validation_report_extras

SPEC = DatasetSpec.model_validate(
    {
        "slug": "lieux_covoiturage",
        "title": "Lieux de covoiturage",
        "description": "Les aires de covoiturage déclarées par les collectivités, au schéma national. " * 2,
        "organization": {"slug": "insee", "name": "Insee"},
        "source": {"url": "http://127.0.0.1:9/lieux.csv", "format": "csv"},
        "license": "lov2",
        "frequency": "monthly",
        "schema": {"name": "etalab/schema-lieux-covoiturage", "version": "0.2.3"},
    }
)


def report(*outcomes: dict) -> dict:
    return {"suite_name": "s", "row_count": 10, "passed": all(o["success"] or o["severity"] != "critical" for o in outcomes), "outcomes": list(outcomes)}


OK = {"rule": "expect_column_values_to_not_be_null", "column": "id_lieu", "severity": "critical", "success": True}
WARNING = {
    "rule": "expect_column_values_to_match_regex", "column": "insee", "severity": "warning", "success": False,
    "unexpected_count": 2, "samples": ["2C247", 7], "rows": [4, 9],
}
CRITICAL = {**WARNING, "column": "date_maj", "severity": "critical", "rule": "expect_column_values_to_be_dateutil_parseable"}
WHEN = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_extras_follow_data_gouv_fr_names_and_put_blocking_errors_first():
    extras = validation_report_extras(SPEC, report(OK, WARNING, CRITICAL), WHEN)
    assert extras["validation-report:schema_name"] == "etalab/schema-lieux-covoiturage"
    assert extras["validation-report:schema_version"] == "0.2.3"
    assert extras["validation-report:schema_type"] == "tableschema"
    assert extras["validation-report:valid_resource"] is False
    assert extras["validation-report:nb_errors"] == 2
    first, second = extras["validation-report:errors"]
    assert (first["field"], first["severity"], second["field"]) == ("date_maj", "critical", "insee")
    assert first["samples"] == ["2C247", "7"] and first["rows"] == [4, 9] and first["count"] == 2
    assert extras["validation-report:validation_date"] == "2026-11-23T10:00:00+00:00"


def test_errors_are_capped_at_one_hundred():
    many = [{**WARNING, "column": f"c{i}"} for i in range(MAX_ERRORS + 20)]
    extras = validation_report_extras(SPEC, report(*many), WHEN)
    assert extras["validation-report:nb_errors"] == MAX_ERRORS + 20
    assert len(extras["validation-report:errors"]) == MAX_ERRORS


@pytest.fixture
def client(tmp_path):
    with serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as catalog:
        publisher = bootstrap_publisher(catalog.store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Bot")
        yield UdataClient(catalog.url, publisher.token)


def test_published_files_carry_their_schema_and_validation_report(client, tmp_path):
    csv = tmp_path / "lieux_covoiturage.csv"
    csv.write_text("id_lieu,insee\n76217-C-001,76217\n", encoding="utf-8")
    first = publish(client, SPEC, {"csv": csv}, validation_extras=validation_report_extras(SPEC, report(OK, WARNING), WHEN))
    resource = requests.get(f"{client.base_url}/api/1/datasets/{first.dataset_id}/resources/{first.resource_ids['csv']}/", timeout=10).json()
    assert resource["schema"]["name"] == "etalab/schema-lieux-covoiturage" and resource["schema"]["version"] == "0.2.3"
    assert resource["extras"]["validation-report:valid_resource"] is True
    assert resource["extras"]["validation-report:errors"][0]["field"] == "insee"
    assert resource["extras"]["dinum:role"] == "csv"  # the report is merged into, not over, the publisher's extras

    # The same file validated again later: only the date differs, nothing is sent.
    later = validation_report_extras(SPEC, report(OK, WARNING), WHEN.replace(day=24))
    again = publish(client, SPEC, {"csv": csv}, validation_extras=later)
    assert not again.changed, again.actions

    # The same file under stricter rules: the new report replaces the old one, the file stays.
    stricter = validation_report_extras(SPEC, report(OK, {**WARNING, "severity": "critical"}), WHEN.replace(day=25))
    third = publish(client, SPEC, {"csv": csv}, validation_extras=stricter)
    assert third.actions[-1] == "updated validation report of csv"
    assert third.resource_ids == first.resource_ids
    resource = requests.get(f"{client.base_url}/api/1/datasets/{first.dataset_id}/resources/{first.resource_ids['csv']}/", timeout=10).json()
    assert resource["extras"]["validation-report:valid_resource"] is False
    assert resource["extras"]["validation-report:validation_date"].startswith("2026-11-25")


def test_a_catalog_left_in_disorder_by_faults_is_put_right_in_one_publication(client, tmp_path):
    """What interrupted or racing publications leave (see e2e/test_fault_matrix.py for how): a
    second dataset with the slug, a file uploaded but never given its role, a role held twice, a
    stale sha256. One publication keeps the oldest dataset, adopts the upload, keeps the first
    resource of the role, and leaves one dataset with one resource per role."""
    csv = tmp_path / "lieux_covoiturage.csv"
    csv.write_text("id_lieu,insee\n76217-C-001,76217\n", encoding="utf-8")
    parquet = tmp_path / "lieux_covoiturage.parquet"
    parquet.write_bytes(b"PAR1 not really parquet")
    kept = publish(client, SPEC, {"csv": csv})
    organization = client.get_organization("insee")["id"]
    duplicate = client.create_dataset({**dataset_payload(SPEC, None), "organization": organization, "extras": {SLUG_EXTRA: SPEC.slug}})
    twice = client.upload_resource(kept.dataset_id, csv)
    client.update_resource_extras(kept.dataset_id, twice["id"], {ROLE_EXTRA: "csv", SHA256_EXTRA: "stale"})
    orphan = client.upload_resource(kept.dataset_id, parquet)  # a run killed before the role was set

    again = publish(client, SPEC, {"csv": csv, "parquet": parquet})

    assert [dataset["id"] for dataset in find_datasets(client, SPEC)] == [kept.dataset_id]
    assert f"deleted dataset {duplicate['id']}, a duplicate created concurrently ({kept.dataset_id} kept)" in again.actions
    assert again.resource_ids == {"csv": kept.resource_ids["csv"], "parquet": orphan["id"]}
    resources = client.get_dataset(kept.dataset_id)["resources"]
    assert sorted((r["id"], r["extras"][ROLE_EXTRA]) for r in resources) == sorted((rid, role) for role, rid in again.resource_ids.items())
    assert {r["extras"][ROLE_EXTRA]: r["extras"][SHA256_EXTRA] for r in resources} == {
        "csv": file_digest(csv, "sha256"), "parquet": file_digest(parquet, "sha256"),
    }
    assert not publish(client, SPEC, {"csv": csv, "parquet": parquet}).changed


def test_extras_given_as_a_function_are_computed_once_after_the_first_upload(client, tmp_path):
    """lib/pipeline.py computes the column profile while the first file uploads: `publish` asks for
    the extras only once that file is in the catalog, once for all the files, and sets them on each."""
    csv = tmp_path / "lieux_covoiturage.csv"
    csv.write_text("id_lieu,insee\n76217-C-001,76217\n", encoding="utf-8")
    parquet = tmp_path / "lieux_covoiturage.parquet"
    parquet.write_bytes(b"PAR1 not really parquet")
    calls = []

    def extras() -> dict:
        calls.append([resource["title"] for resource in find_datasets(client, SPEC)[0]["resources"]])
        return validation_report_extras(SPEC, report(OK, WARNING), WHEN)

    result = publish(client, SPEC, {"csv": csv, "parquet": parquet}, validation_extras=extras)
    assert calls == [["lieux_covoiturage.csv"]]
    for role in ("csv", "parquet"):
        resource = requests.get(f"{client.base_url}/api/1/datasets/{result.dataset_id}/resources/{result.resource_ids[role]}/", timeout=10).json()
        assert resource["extras"]["validation-report:errors"][0]["field"] == "insee"
        assert resource["extras"][SHA256_EXTRA] == file_digest(tmp_path / f"lieux_covoiturage.{role}", "sha256")


def test_each_file_is_read_once_for_the_digests_its_publication_compares(client, tmp_path, monkeypatch):
    """A new file's sha1 is the catalog's to compute (nothing compares it here): the publisher reads
    it for its sha256 only. A file the catalog already serves is compared by its sha1: both
    digests then come from one reading, and a file asked again is not read again."""
    from dinum_pipelines.lib.publish import publishing

    reads = []
    original = publishing._read_digests
    monkeypatch.setattr(publishing, "_read_digests", lambda path, algorithms: reads.append((path.rsplit("/", 1)[-1], algorithms)) or original(path, algorithms))
    csv = tmp_path / "lieux_covoiturage.csv"
    csv.write_text("id_lieu,insee\n76217-C-001,76217\n", encoding="utf-8")
    first = publish(client, SPEC, {"csv": csv})
    assert reads == [("lieux_covoiturage.csv", ("sha256",))]
    served = client.get_dataset(first.dataset_id)["resources"][0]["checksum"]

    csv.write_text("id_lieu,insee\n76217-C-002,76217\n", encoding="utf-8")
    reads.clear()
    second = publish(client, SPEC, {"csv": csv})
    assert reads == [("lieux_covoiturage.csv", ("sha1", "sha256"))]
    assert any(action.startswith("replaced csv file") for action in second.actions)
    assert client.get_dataset(first.dataset_id)["resources"][0]["checksum"] != served
    assert file_digest(csv, "sha1") == client.get_dataset(first.dataset_id)["resources"][0]["checksum"]["value"]
    assert len(reads) == 1
