"""Atom feeds (issue 14, part 4): `/feed.atom`, `/organizations/{slug}/feed.atom` and
`/datasets/{slug}/feed.atom` list each publication, newest first, as RFC 4287 entries; a private
or deleted dataset never shows; the pages link their feed. On SQLite and PostgreSQL.

Feeds are parsed with ElementTree in the Atom namespace, as a feed reader would read them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from xml.etree import ElementTree

import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog, feeds, notifications
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.catalog.test_chunked_uploads import ChunkedUpload, split

NS = {"atom": "http://www.w3.org/2005/Atom"}
FIRST, SECOND, THIRD = b"siren,nom\n1,A\n", b"siren,nom\n1,A\n2,B\n", b"siren,nom\n1,A\n2,B\n3,C\n"


def site(client: Api, path: str) -> str:
    """The URL of a path outside the API (Api prefixes /api/1 to the others)."""
    return path if path.startswith("http") else client.catalog.url + path


def feed(anonymous: Api, path: str) -> ElementTree.Element:
    response = anonymous.get(site(anonymous, path))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    for required in ("id", "title", "updated", "author/atom:name"):
        assert root.find(f"atom:{required}", NS) is not None, required
    return root


def entries(root: ElementTree.Element) -> list[dict[str, Any]]:
    found = []
    for entry in root.findall("atom:entry", NS):
        links = {link.get("rel"): link.attrib for link in entry.findall("atom:link", NS)}
        found.append({
            "id": entry.findtext("atom:id", namespaces=NS),
            "title": entry.findtext("atom:title", namespaces=NS),
            "updated": entry.findtext("atom:updated", namespaces=NS),
            "event": entry.find("atom:category", NS).get("term"),
            "summary": entry.findtext("atom:summary", namespaces=NS),
            "links": links,
        })
    return found


def test_each_publication_is_an_entry_newest_first(api: Api, anonymous: Api, publisher: Publisher) -> None:
    dataset = api.create_dataset(organization=publisher.organization_id, title="Base Sirene")
    created = api.upload(dataset["id"], "sirene.csv", FIRST).json()
    replaced = [api.upload(dataset["id"], "sirene.csv", content, created["id"]).json() for content in (SECOND, THIRD)]

    root = feed(anonymous, f"/datasets/{dataset['slug']}/feed.atom")
    found = entries(root)
    assert [entry["event"] for entry in found] == ["resource.updated", "resource.updated", "resource.created", "dataset.created"]
    assert [entry["title"] for entry in found] == [
        "Fichier « sirene.csv » mis à jour : Base Sirene", "Fichier « sirene.csv » mis à jour : Base Sirene",
        "Nouveau fichier « sirene.csv » : Base Sirene", "Nouveau jeu de données : Base Sirene",
    ]
    assert len({entry["id"] for entry in found}) == 4 and all(entry["id"].startswith("urn:uuid:") for entry in found)
    assert [entry["updated"] for entry in found] == sorted((entry["updated"] for entry in found), reverse=True)
    assert root.findtext("atom:updated", namespaces=NS) == found[0]["updated"]
    assert {entry["links"]["alternate"]["href"] for entry in found} == {dataset["page"]}
    # Each file entry links the file it published, and says its size and checksum.
    for entry, resource, content in zip(found[:3], [*reversed(replaced), created], [THIRD, SECOND, FIRST], strict=True):
        assert entry["links"]["enclosure"]["href"] == resource["url"]
        assert entry["links"]["enclosure"]["length"] == str(len(content))
        assert hashlib.sha1(content).hexdigest() in entry["summary"] and "sha1" in entry["summary"]
    assert "enclosure" not in found[3]["links"]

    # The same entries, the same ids, by the dataset's id, in its organization's and the catalog's feeds.
    assert entries(feed(anonymous, f"/datasets/{dataset['id']}/feed.atom")) == found
    assert entries(feed(anonymous, f"/organizations/{publisher.organization_slug}/feed.atom")) == found
    assert entries(feed(anonymous, f"/organizations/{publisher.organization_id}/feed.atom")) == found
    assert entries(feed(anonymous, "/feed.atom")) == found


def test_a_chunked_upload_and_a_moved_remote_resource_are_one_entry_each(
    api: Api, anonymous: Api, dataset: dict[str, Any]
) -> None:
    """The parts of a chunked upload publish nothing; its final request publishes the file. A remote
    resource's new URL is a publication, a new description alone is not."""
    upload = ChunkedUpload(api, dataset["id"], 2)
    for index, (offset, data) in enumerate(split(SECOND, 2)):
        assert upload.part(index, offset, data).status_code == 200
    resource = upload.finish().json()
    remote = api.post(f"/datasets/{dataset['id']}/resources/", json={
        "title": "Documentation", "url": "https://www.insee.fr/sirene.pdf", "filetype": "remote", "format": "pdf",
    }).json()
    api.put(f"/datasets/{dataset['id']}/resources/{remote['id']}/", json={"description": "La notice"})
    api.put(f"/datasets/{dataset['id']}/resources/{remote['id']}/", json={"url": "https://www.insee.fr/sirene-2.pdf"})

    found = entries(feed(anonymous, f"/datasets/{dataset['slug']}/feed.atom"))
    assert [entry["event"] for entry in found] == ["resource.updated", "resource.created", "resource.created", "dataset.created"]
    assert [entry["links"]["enclosure"]["href"] for entry in found[:3]] == [
        "https://www.insee.fr/sirene-2.pdf", "https://www.insee.fr/sirene.pdf", resource["url"],
    ]
    assert hashlib.sha1(SECOND).hexdigest() in found[2]["summary"]


def test_a_change_and_its_entry_are_committed_together(
    api: Api, anonymous: Api, dataset: dict[str, Any], catalog: RunningCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change log is written in the transaction of the change: when it cannot be, the upload
    fails whole (no resource, no stored file), and nothing was announced."""
    def unavailable(*_args: Any) -> None:
        raise RuntimeError("the change log cannot be written")

    monkeypatch.setattr(notifications, "change_body", unavailable)  # the catalog is served by this process
    assert api.upload(dataset["id"], "sirene.csv", FIRST).status_code == 500  # uvicorn then closes that connection
    monkeypatch.undo()
    assert anonymous.get(f"/datasets/{dataset['id']}/").json()["resources"] == []
    assert [path.name for path in catalog.settings.files_dir.rglob("*.csv")] == []
    assert [entry["event"] for entry in entries(feed(anonymous, f"/datasets/{dataset['id']}/feed.atom"))] == ["dataset.created"]


def test_private_and_deleted_datasets_stay_out_of_the_feeds(api: Api, anonymous: Api, publisher: Publisher) -> None:
    public = api.create_dataset(organization=publisher.organization_id, title="Publique")
    private = api.create_dataset(organization=publisher.organization_id, title="Confidentielle", private=True)
    api.upload(private["id"], "secret.csv", FIRST)
    assert anonymous.get(site(anonymous, f"/datasets/{private['slug']}/feed.atom")).status_code == 404
    assert [entry["title"] for entry in entries(feed(anonymous, "/feed.atom"))] == ["Nouveau jeu de données : Publique"]
    assert api.get(site(api, f"/datasets/{private['slug']}/feed.atom")).status_code == 404  # feeds are public: a key changes nothing

    # Made public: a publication of its own; what it went through while private stays unsaid.
    assert api.put(f"/datasets/{private['id']}/", json={"private": False}).status_code == 200
    made_public = entries(feed(anonymous, f"/datasets/{private['slug']}/feed.atom"))
    assert [entry["event"] for entry in made_public] == ["dataset.published"]
    assert made_public[0]["title"] == "Jeu de données rendu public : Confidentielle"

    # Deleted: its feed is gone (410, as its page) and so are its entries elsewhere.
    assert api.delete(f"/datasets/{private['id']}/").status_code == 204
    assert anonymous.get(site(anonymous, f"/datasets/{private['slug']}/feed.atom")).status_code == 410
    catalog_feed = entries(feed(anonymous, "/feed.atom"))
    assert [entry["title"] for entry in catalog_feed] == ["Nouveau jeu de données : Publique"]
    assert catalog_feed == entries(feed(anonymous, f"/organizations/{publisher.organization_slug}/feed.atom"))

    assert anonymous.get(site(anonymous, "/datasets/no-such-dataset/feed.atom")).status_code == 404
    assert anonymous.get(site(anonymous, "/organizations/no-such-organization/feed.atom")).status_code == 404
    assert anonymous.get(site(anonymous, f"/datasets/{public['slug']}/feed.atom?before=abc")).status_code == 404


def test_older_entries_are_behind_the_next_link(api: Api, anonymous: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "FEED_SIZE", 2)  # the catalog is served by this process
    dataset = api.create_dataset(title="Base Sirene")
    for number in range(2):
        api.put(f"/datasets/{dataset['id']}/", json={"description": f"Version {number}"})

    first = feed(anonymous, "/feed.atom")
    assert [entry["event"] for entry in entries(first)] == ["dataset.updated", "dataset.updated"]
    next_link = first.find("atom:link[@rel='next']", NS)
    assert next_link is not None
    second = feed(anonymous, next_link.get("href"))
    assert [entry["event"] for entry in entries(second)] == ["dataset.created"]
    assert second.find("atom:link[@rel='next']", NS) is None


def test_the_pages_link_their_feed(api: Api, anonymous: Api, publisher: Publisher, dataset: dict[str, Any]) -> None:
    pages = {
        "/": "/feed.atom",
        f"/datasets/{dataset['slug']}/": f"/datasets/{dataset['slug']}/feed.atom",
        f"/organizations/{publisher.organization_slug}/": f"/organizations/{publisher.organization_slug}/feed.atom",
    }
    for page, feed_path in pages.items():
        html = anonymous.get(site(anonymous, page)).text
        head = html[: html.index("</head>")]
        [link] = re.findall(r'<link rel="alternate" type="application/atom\+xml"[^>]*>', head)
        assert f'href="{feed_path}"' in link, (page, link)
        feed(anonymous, feed_path)
