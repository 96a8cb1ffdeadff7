"""Resource versions (catalog/versions.py), on SQLite and PostgreSQL: a replaced file stays
downloadable at its version's URL with its own bytes and checksum, the stable link follows the
latest, the publisher's change summary lands on the version it describes, private datasets keep
their versions private, and a refused replacement changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.api_schemas import ref
from dinum_pipelines.catalog.db import resource_versions
from dinum_pipelines.catalog.events import RESOURCE_DOWNLOAD
from dinum_pipelines.catalog.pages import human_size
from dinum_pipelines.catalog.versions import clean_changes, french_summary
from dinum_pipelines_tests import browser
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.catalog.test_openapi import schema_errors

CONTENTS = (b"code;nom\n01001;Abergement\n", b"code;nom\n01001;Abergement\n01002;Abondance\n", b"code;nom\n01002;Abondance\n")
SUMMARY = {
    "key": ["code"], "rows_before": 2, "rows_after": 1, "rows_added": 0, "rows_removed": 1, "rows_modified": 0,
    "columns_added": [], "columns_removed": [],
}


def versions_of(api: Api, dataset_id: str, resource_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/datasets/{dataset_id}/resources/{resource_id}/versions/")
    assert response.status_code == 200, response.text
    return response.json()


def publish_three_files(api: Api, dataset_id: str) -> dict[str, Any]:
    first = api.upload(dataset_id, "communes.csv", CONTENTS[0]).json()
    for content in CONTENTS[1:]:
        response = api.upload(dataset_id, "communes.csv", content, resource_id=first["id"])
        assert response.status_code == 200, response.text
    return first


def test_a_resource_replaced_twice_has_three_downloadable_versions(
    api: Api, anonymous: Api, catalog: RunningCatalog, dataset: dict[str, Any]
) -> None:
    resource = publish_three_files(api, dataset["id"])
    versions = versions_of(anonymous, dataset["id"], resource["id"])

    assert [version["version"] for version in versions] == [3, 2, 1]
    assert [version["latest"] for version in versions] == [True, False, False]
    assert schema_errors(versions, {"type": "array", "items": ref("ResourceVersion")}) == []
    for version, content in zip(versions, reversed(CONTENTS), strict=True):
        assert version["checksum"] == {"type": "sha1", "value": hashlib.sha1(content).hexdigest()}
        assert version["filesize"] == len(content)
        assert version["url"] == f"{catalog.url}/datasets/r/{resource['id']}/versions/{version['version']}"
        download = anonymous.get(version["url"])
        assert download.status_code == 200
        assert download.content == content
    assert versions[2]["created_at"] <= versions[1]["created_at"] <= versions[0]["created_at"]
    assert anonymous.get(resource["latest"]).content == CONTENTS[2]  # the stable link: the latest
    assert anonymous.get(f"/datasets/r/{resource['id']}/versions/4").status_code == 404
    middle = anonymous.get(versions[1]["url"], headers={"Range": "bytes=5-"})  # a reader's Range request: not a download
    assert middle.status_code == 206 and middle.content == CONTENTS[1][5:]

    catalog.store.events.flush()
    downloads = catalog.store.events.list(kind=RESOURCE_DOWNLOAD)
    assert sum(1 for event in downloads if event["resource_id"] == resource["id"]) == 4  # 3 versions + the stable link


def test_the_change_summary_goes_to_the_version_of_the_file_it_describes(
    api: Api, anonymous: Api, dataset: dict[str, Any]
) -> None:
    resource = publish_three_files(api, dataset["id"])
    extras_path = f"/api/2/datasets/{dataset['id']}/resources/{resource['id']}/extras/"
    sha256 = hashlib.sha256(CONTENTS[2]).hexdigest()
    assert api.put(extras_path, json={"dinum:changes": SUMMARY, "dinum:sha256": sha256, "dinum:role": "csv"}).status_code == 200

    latest, *_ = versions_of(anonymous, dataset["id"], resource["id"])
    assert latest["changes"] == SUMMARY
    assert latest["sha256"] == sha256

    # A new file starts without a summary: the one in the extras described the file before.
    assert api.upload(dataset["id"], "communes.csv", b"code;nom\n", resource_id=resource["id"]).status_code == 200
    assert "dinum:changes" not in api.get(extras_path).json()
    newest, previous, *_ = versions_of(anonymous, dataset["id"], resource["id"])
    assert (newest["version"], newest["changes"], previous["changes"]) == (4, None, SUMMARY)


def test_versions_of_a_private_dataset_are_its_editors_only(
    api: Api, anonymous: Api, outsider: Api, publisher: Publisher
) -> None:
    dataset = api.create_dataset(organization=publisher.organization_id, private=True)
    resource = publish_three_files(api, dataset["id"])
    versions = versions_of(api, dataset["id"], resource["id"])
    assert len(versions) == 3
    assert api.get(versions[2]["url"]).content == CONTENTS[0]
    for stranger in (anonymous, outsider):
        assert stranger.get(f"/datasets/{dataset['id']}/resources/{resource['id']}/versions/").status_code == 404
        assert stranger.get(versions[2]["url"]).status_code == 404


def test_a_refused_replacement_leaves_the_versions_untouched(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    resource = publish_three_files(api, dataset["id"])
    before = versions_of(anonymous, dataset["id"], resource["id"])
    page = b"<!DOCTYPE html><html><body>Erreur 500</body></html>"
    assert api.upload(dataset["id"], "communes.csv", page, resource_id=resource["id"]).status_code == 415
    assert versions_of(anonymous, dataset["id"], resource["id"]) == before
    assert [anonymous.get(version["url"]).content for version in before] == list(reversed(CONTENTS))


def test_deleting_a_resource_deletes_its_versions_and_their_files(
    api: Api, anonymous: Api, catalog: RunningCatalog, dataset: dict[str, Any]
) -> None:
    resource = publish_three_files(api, dataset["id"])
    urls = [version["url"] for version in versions_of(anonymous, dataset["id"], resource["id"])]
    assert api.delete(f"/datasets/{dataset['id']}/resources/{resource['id']}/").status_code == 204
    assert [anonymous.get(url).status_code for url in urls] == [404] * 3
    assert [path for path in catalog.settings.files_dir.rglob("*") if path.is_file()] == []


def test_a_resource_from_before_versions_is_version_1_until_replaced(
    api: Api, anonymous: Api, catalog: RunningCatalog, dataset: dict[str, Any]
) -> None:
    resource = api.upload(dataset["id"], "communes.csv", CONTENTS[0]).json()
    with catalog.store.db.write() as conn:  # as a database upgraded to revision 0012 has it
        conn.execute(delete(resource_versions))

    (only,) = versions_of(anonymous, dataset["id"], resource["id"])
    assert (only["version"], only["latest"], only["checksum"]["value"]) == (1, True, resource["checksum"]["value"])
    assert anonymous.get(only["url"]).content == CONTENTS[0]

    assert api.upload(dataset["id"], "communes.csv", CONTENTS[1], resource_id=resource["id"]).status_code == 200
    versions = versions_of(anonymous, dataset["id"], resource["id"])
    assert [(version["version"], anonymous.get(version["url"]).content) for version in versions] == [(2, CONTENTS[1]), (1, CONTENTS[0])]


def test_a_remote_resource_has_no_versions(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    remote = api.post(f"/datasets/{dataset['id']}/resources/", json={"title": "API", "url": "https://api.example.fr/v1", "filetype": "remote"})
    assert remote.status_code == 201, remote.text
    assert versions_of(anonymous, dataset["id"], remote.json()["id"]) == []


def test_summaries_are_kept_only_in_their_shape_and_said_in_french() -> None:
    assert clean_changes(SUMMARY) == SUMMARY
    assert clean_changes({**SUMMARY, "rows_added": -1, "rows_modified": True, "extra": 1}) == {
        **SUMMARY, "rows_added": None, "rows_modified": None,
    }
    assert clean_changes("12 lignes") is None
    assert clean_changes({"key": []}) is None  # no row count: not a summary
    with_key = {**SUMMARY, "rows_added": 12, "rows_removed": 3, "rows_modified": 5, "columns_added": ["x"]}
    assert french_summary(2, with_key) == "+12 lignes, −3 lignes, 5 modifiées ; colonnes ajoutées : x"
    without_key = {**SUMMARY, "key": [], "rows_added": None, "rows_removed": None, "rows_modified": None,
                   "columns_removed": ["y", "z"]}
    assert french_summary(2, without_key) == "1 ligne (avant : 2) ; colonnes retirées : y, z"
    assert french_summary(1, None) == "Première version"
    assert french_summary(3, None) == "Pas de résumé des changements"


def test_the_dataset_page_shows_each_resource_history(
    chromium: Path, api: Api, anonymous: Api, catalog: RunningCatalog, dataset: dict[str, Any]
) -> None:
    resource = api.upload(dataset["id"], "communes.csv", CONTENTS[0]).json()
    extras_path = f"/api/2/datasets/{dataset['id']}/resources/{resource['id']}/extras/"
    summaries = [
        {**SUMMARY, "rows_before": 1, "rows_after": 2, "rows_added": 1, "rows_removed": 0},
        {**SUMMARY, "rows_added": 12, "rows_removed": 3, "rows_modified": 5, "columns_added": ["population"]},
    ]
    for content, summary in zip(CONTENTS[1:], summaries, strict=True):
        assert api.upload(dataset["id"], "communes.csv", content, resource_id=resource["id"]).status_code == 200
        assert api.put(extras_path, json={"dinum:changes": summary}).status_code == 200

    page = browser.dump_dom(f"{catalog.url}/datasets/{dataset['slug']}/")
    history = page.by_id("historique")
    [entry] = history.find_all("article", class_="history")
    assert entry.attrs["data-resource-id"] == resource["id"] and entry.find("h3").text == "communes.csv"
    rows = entry.find_all("tr", class_="version")
    assert [(row.attrs["data-version"], row.attrs["data-latest"]) for row in rows] == [("3", "true"), ("2", "false"), ("1", "false")]
    assert [row.find("td", class_="changes").text for row in rows] == [
        "+12 lignes, −3 lignes, 5 modifiées ; colonnes ajoutées : population",
        "+1 ligne, −0 ligne, 0 modifiée",
        "Première version",
    ]
    assert [row.find("td", class_="size").text for row in rows] == [human_size(len(content)) for content in reversed(CONTENTS)]
    for row, content in zip(rows, reversed(CONTENTS), strict=True):
        assert row.find("code", class_="checksum").attrs["title"] == hashlib.sha1(content).hexdigest()
        assert anonymous.get(row.find("a", class_="version-download").attrs["href"]).content == content
