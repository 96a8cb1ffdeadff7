"""Hosted files and resources: uploads, replacement, permalinks, metadata, extras."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from dinum_pipelines.catalog import RunningCatalog
from dinum_pipelines_tests.catalog.conftest import Api

CSV = "code_commune;nom\n01001;L'Abergement-Clémenciat\n2A004;Ajaccio\n".encode()


def stored_files(catalog: RunningCatalog) -> list[Path]:
    """Every file under the files folder, hidden partial uploads included."""
    return sorted(path for path in catalog.settings.files_dir.rglob("*") if path.is_file())


def test_upload_creates_a_hosted_resource(api: Api, dataset: dict[str, Any]) -> None:
    response = api.upload(dataset["id"], "communes 2024.CSV", CSV)
    assert response.status_code == 201, response.text
    resource = response.json()
    assert resource["success"] is True
    assert resource["title"] == "communes 2024.CSV"
    assert resource["checksum"] == {"type": "sha1", "value": hashlib.sha1(CSV).hexdigest()}
    assert resource["filesize"] == len(CSV)
    assert (resource["format"], resource["mime"]) == ("csv", "text/csv")
    assert (resource["filetype"], resource["type"]) == ("file", "main")
    assert resource["latest"] == api.url(f"/datasets/r/{resource['id']}")
    assert resource["url"].startswith(api.catalog.url + "/resources/")
    assert resource["extras"] == {} and resource["metrics"] == {"views": 0}

    after = api.get(f"/datasets/{dataset['id']}/").json()
    assert [item["id"] for item in after["resources"]] == [resource["id"]]
    assert after["last_update"] > dataset["last_update"]


def test_permalink_redirects_to_identical_bytes(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    resource = api.upload(dataset["id"], "communes.csv", CSV).json()
    redirect = anonymous.get(resource["latest"], allow_redirects=False)
    assert redirect.status_code == 302
    # The file URL, marked so that the file endpoint counts the download once, as a stable-link one.
    assert redirect.headers["location"] == resource["url"] + "?via=permalink"

    download = anonymous.get(resource["latest"])
    assert download.content == CSV
    assert download.headers["content-length"] == str(len(CSV))
    assert download.headers["content-type"].startswith("text/csv")
    assert anonymous.get("/datasets/r/00000000-0000-0000-0000-000000000000").status_code == 404


def test_large_upload_is_streamed_intact(api: Api, dataset: dict[str, Any]) -> None:
    content = os.urandom(6 * 1024 * 1024 + 123)
    resource = api.upload(dataset["id"], "big.parquet", content).json()
    assert resource["checksum"]["value"] == hashlib.sha1(content).hexdigest()
    assert (resource["format"], resource["mime"]) == ("parquet", "application/vnd.apache.parquet")
    assert api.get(resource["url"]).content == content


def test_replace_keeps_the_id_and_the_old_file_as_a_version(api: Api, catalog: RunningCatalog, dataset: dict[str, Any]) -> None:
    first = api.upload(dataset["id"], "communes.csv", CSV).json()
    before = api.get(f"/datasets/{dataset['id']}/").json()
    new_content = CSV + b"75056;Paris\n"

    response = api.upload(dataset["id"], "communes.csv", new_content, resource_id=first["id"])
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced["id"] == first["id"]
    assert replaced["checksum"]["value"] == hashlib.sha1(new_content).hexdigest() != first["checksum"]["value"]
    assert replaced["filesize"] == len(new_content)
    assert replaced["url"] != first["url"]
    assert replaced["latest"] == first["latest"]
    assert api.get(first["latest"]).content == new_content
    assert api.get(first["url"]).status_code == 404
    assert len(stored_files(catalog)) == 2  # the old file is version 1 (test_versions.py)
    after = api.get(f"/datasets/{dataset['id']}/").json()
    assert after["last_update"] > before["last_update"]
    assert len(after["resources"]) == 1


def test_html_upload_is_refused(api: Api, catalog: RunningCatalog, dataset: dict[str, Any]) -> None:
    for page in (b"<!DOCTYPE html><html><body>Erreur 500</body></html>", b"\xef\xbb\xbf\n  <HTML><head></head></html>"):
        response = api.upload(dataset["id"], "export.csv", page)
        assert response.status_code == 415
        assert "message" in response.json()
    assert stored_files(catalog) == []
    assert api.get(f"/datasets/{dataset['id']}/").json()["resources"] == []


def test_upload_without_a_file_field(api: Api, dataset: dict[str, Any]) -> None:
    response = api.post(f"/datasets/{dataset['id']}/upload/", files={"other": ("a.csv", CSV)})
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
    assert api.post(f"/datasets/{dataset['id']}/upload/", json={}).status_code == 400


def test_resource_metadata_update_ignores_protected_fields(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    resource = api.upload(dataset["id"], "communes.csv", CSV).json()
    path = f"/datasets/{dataset['id']}/resources/{resource['id']}/"
    response = api.put(path, json={
        "title": "Communes 2024",
        "description": "Code officiel géographique.",
        "type": "main",
        "schema": {"name": "etalab/schema-communes", "version": "1.0.0"},
        "url": "https://evil.example/x.csv",
        "checksum": {"type": "md5", "value": "0"},
        "filesize": 1,
        "filetype": "remote",
    })
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["title"] == "Communes 2024"
    assert updated["schema"] == {"name": "etalab/schema-communes", "version": "1.0.0", "url": None}
    assert (updated["url"], updated["checksum"], updated["filesize"], updated["filetype"]) == (
        resource["url"], resource["checksum"], resource["filesize"], "file",
    )
    assert anonymous.get(path).json()["title"] == "Communes 2024"
    assert api.put(path, json={"type": "nonsense"}).status_code == 400
    assert api.put(path, json={"schema": None}).json()["schema"] is None


def test_delete_resource_removes_its_file(api: Api, catalog: RunningCatalog, dataset: dict[str, Any]) -> None:
    resource = api.upload(dataset["id"], "communes.csv", CSV).json()
    path = f"/datasets/{dataset['id']}/resources/{resource['id']}/"
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert api.get(resource["latest"], allow_redirects=False).status_code == 404
    assert stored_files(catalog) == []


def test_remote_resources_and_reordering(api: Api, dataset: dict[str, Any]) -> None:
    base = f"/datasets/{dataset['id']}/resources/"
    hosted = api.upload(dataset["id"], "communes.csv", CSV).json()
    refused = api.post(base, json={"title": "x", "url": "https://example.org/x.csv", "filetype": "file"})
    assert refused.status_code == 400
    remote = api.post(base, json={"title": "API", "url": "https://example.org/api", "filetype": "remote", "type": "api"})
    assert remote.status_code == 201, remote.text
    remote_id = remote.json()["id"]
    assert api.get(remote.json()["latest"], allow_redirects=False).headers["location"] == "https://example.org/api"

    assert api.put(base, json=[remote_id]).status_code == 400  # must list every resource
    reordered = api.put(base, json=[remote_id, hosted["id"]])
    assert [item["id"] for item in reordered.json()] == [remote_id, hosted["id"]]
    listed = api.get(f"/datasets/{dataset['id']}/").json()["resources"]
    assert [item["id"] for item in listed] == [remote_id, hosted["id"]]


def test_resource_extras_merge_and_delete(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    resource = api.upload(dataset["id"], "communes.csv", CSV).json()
    extras = f"/api/2/datasets/{dataset['id']}/resources/{resource['id']}/extras/"
    assert api.put(extras, json={"validation-report:valid": True, "validation-report:errors": 3}).json() == {
        "validation-report:valid": True, "validation-report:errors": 3,
    }
    merged = api.put(extras, json={"validation-report:errors": None, "check:available": True}).json()
    assert merged == {"validation-report:valid": True, "check:available": True}
    assert anonymous.put(extras, json={"x": 1}).status_code == 401
    assert api.delete(extras, json=["check:available"]).status_code == 204
    assert anonymous.get(extras).json() == {"validation-report:valid": True}

    current = api.get(f"/datasets/{dataset['id']}/resources/{resource['id']}/").json()
    assert current["extras"] == {"validation-report:valid": True}
    assert current["last_modified"] == resource["last_modified"]  # a report is not a data change


def test_dataset_extras_merge(api: Api, dataset: dict[str, Any]) -> None:
    extras = f"/api/2/datasets/{dataset['id']}/extras/"
    api.put(extras, json={"a": 1, "b": 2})
    assert api.put(extras, json={"a": None}).json() == {"b": 2}
    assert api.get(f"/datasets/{dataset['id']}/").json()["extras"] == {"b": 2}


def test_resource_of_another_dataset_is_404(api: Api, dataset: dict[str, Any]) -> None:
    other = api.create_dataset(title="Autre")
    resource = api.upload(other["id"], "a.csv", CSV).json()
    assert api.get(f"/datasets/{dataset['id']}/resources/{resource['id']}/").status_code == 404
    assert api.upload(dataset["id"], "a.csv", CSV, resource_id=resource["id"]).status_code == 404
