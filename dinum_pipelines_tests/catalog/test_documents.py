"""Stored documents (catalog/documents.py): after every kind of write, what the API serves from a
dataset's stored document is what rendering the dataset now gives; a document that no longer
holds (the clock's criterion, a bulk change) is never served."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from dinum_pipelines.catalog import CatalogStore
from dinum_pipelines.catalog.db import dataset_documents, datasets
from dinum_pipelines.catalog.documents import dumps, served, stored_document
from dinum_pipelines.catalog.metrics_api import MetricsStore
from dinum_pipelines.catalog.quality_score import update_fulfilled_in_time, update_fulfilled_in_time_until
from dinum_pipelines.catalog.render import Renderer
from dinum_pipelines.catalog.server import RunningCatalog, serve_in_thread
from dinum_pipelines.lib.metrics.schema import METRIC_MODELS
from dinum_pipelines_tests.catalog.conftest import Api

CSV = b"code;nom\n01001;L'Abergement\n"


def rendered_now(catalog: RunningCatalog, dataset_id: str) -> dict[str, Any]:
    """The dataset rendered from its records, as JSON would carry it: the reference."""
    result: dict[str, Any] = json.loads(dumps(Renderer(catalog.url).dataset(catalog.store.datasets.require(dataset_id))))
    return result


def stored_body(store: CatalogStore, dataset_id: str) -> str | None:
    with store.db.read() as conn:
        return conn.scalar(select(dataset_documents.c.body).where(dataset_documents.c.dataset_id == dataset_id))


def assert_served_as_rendered(catalog: RunningCatalog, reader: Api, dataset_id: str, q: str, *, listed: bool = True) -> None:
    """The stored document exists and is what a rendering gives, through the GET and (a dataset on
    the public listing) a search."""
    body = stored_body(catalog.store, dataset_id)
    assert body is not None, "no stored document"
    expected = rendered_now(catalog, dataset_id)
    assert json.loads(served(body, catalog.url)) == expected
    assert reader.get(f"/datasets/{dataset_id}/").json() == expected
    found = reader.get("/datasets/", params={"q": q}).json()["data"]
    assert [item for item in found if item["id"] == dataset_id] == ([expected] if listed else [])


def test_every_write_stores_the_document_a_rendering_gives(catalog: RunningCatalog, api: Api, publisher: Any) -> None:
    dataset = api.create_dataset(
        title="Écoles de Corse", description="Les écoles.", organization=publisher.organization_id,
        frequency="daily", tags=["education"], license="lov2",
    )
    dataset_id = dataset["id"]
    resources = f"/datasets/{dataset_id}/resources/"
    writes = [
        ("created", lambda: None),
        ("title and description", lambda: api.put(f"/datasets/{dataset_id}/", json={"title": "Écoles corses", "description": "Toutes."})),
        ("file uploaded", lambda: api.upload(dataset_id, "ecoles.csv", CSV)),
        ("remote resource", lambda: api.post(resources, json={"title": "API", "url": "https://example.org/api", "filetype": "remote"})),
        ("resource metadata", lambda: api.put(f"{resources}{first_resource()}/", json={"description": "Le fichier."})),
        ("resources reordered", lambda: api.put(resources, json=list(reversed(resource_ids())))),
        ("resource extras", lambda: api.put(f"/api/2/datasets/{dataset_id}/resources/{first_resource()}/extras/", json={"check:available": False})),
        ("dataset extras", lambda: api.put(f"/api/2/datasets/{dataset_id}/extras/", json={"source": "rectorat"})),
        ("file replaced", lambda: api.upload(dataset_id, "ecoles.csv", CSV + "01002;Ambérieu\n".encode(), first_resource())),
        ("resource deleted", lambda: api.delete(f"{resources}{resource_ids()[-1]}/")),
        ("made private", lambda: api.put(f"/datasets/{dataset_id}/", json={"private": True})),
        ("made public", lambda: api.put(f"/datasets/{dataset_id}/", json={"private": False})),
        ("deleted", lambda: api.delete(f"/datasets/{dataset_id}/")),
        ("restored", lambda: api.put(f"/datasets/{dataset_id}/", json={"deleted": None})),
    ]

    def resource_ids() -> list[str]:
        return [resource["id"] for resource in catalog.store.datasets.require(dataset_id)["resources"]]

    def first_resource() -> str:
        return resource_ids()[0]

    for label, write in writes:
        response = write()
        assert response is None or response.status_code < 300, (label, response.text)
        before = stored_body(catalog.store, dataset_id)
        assert before is not None, label
        try:
            assert_served_as_rendered(
                catalog, api, dataset_id, q="corse" if label == "created" else "corses", listed=label not in ("made private", "deleted"),
            )
        except AssertionError as failure:
            raise AssertionError(f"after: {label}") from failure


def test_each_host_gets_its_own_links(catalog: RunningCatalog, api: Api, dataset: dict[str, Any]) -> None:
    api.upload(dataset["id"], "communes.csv", CSV)
    body = stored_body(catalog.store, dataset["id"])
    assert body is not None and "127.0.0.1" not in body and "localhost" not in body
    for base in (catalog.url, catalog.url.replace("127.0.0.1", "localhost"), 'https://data.example.org/a"b'):
        document = json.loads(served(body, base))
        assert document == json.loads(dumps(Renderer(base).dataset(catalog.store.datasets.require(dataset["id"]))))
        assert document["uri"].startswith(base) and document["resources"][0]["url"].startswith(base)


def test_a_document_past_its_clock_criterion_is_rendered_again(catalog: RunningCatalog, api: Api, publisher: Any) -> None:
    """`update_fulfilled_in_time` turns false a day and its tolerance after a daily dataset's last
    update: the document stored before says true and holds until then, never after. (Read with a
    key: the anonymous answers are cached, and this test moves the clock without a write.)"""
    dataset = api.create_dataset(title="Météo du jour", organization=publisher.organization_id, frequency="daily")
    assert api.get(f"/datasets/{dataset['id']}/").json()["quality"]["update_fulfilled_in_time"] is True
    with catalog.store.db.engine.begin() as conn:  # three days pass without an update
        for column, key in ((datasets.c.last_update, datasets.c.id), (dataset_documents.c.valid_until, dataset_documents.c.dataset_id)):
            then = conn.scalar(select(column).where(key == dataset["id"]))
            conn.execute(update(column.table).where(key == dataset["id"]).values({column.name: then - timedelta(days=3)}))
    assert stored_body(catalog.store, dataset["id"]) is not None
    assert api.get(f"/datasets/{dataset['id']}/").json()["quality"]["update_fulfilled_in_time"] is False
    listed = api.get("/datasets/", params={"q": "météo"}).json()["data"]
    assert [item["quality"]["update_fulfilled_in_time"] for item in listed] == [False]


def test_until_when_the_clock_criterion_holds() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    for frequency, age in (("daily", timedelta(hours=1)), ("daily", timedelta(days=5)), ("monthly", timedelta(days=20)), ("unknown", timedelta(0)), ("punctual", timedelta(days=900))):
        dataset = {"frequency": frequency, "last_update": now - age}
        until = update_fulfilled_in_time_until(dataset, now)
        value = update_fulfilled_in_time(dataset, now)
        for later in (now + timedelta(days=1), now + timedelta(days=400)):
            if until is None or later <= until:
                assert update_fulfilled_in_time(dataset, later) is value, (frequency, age, later)
        if until is not None:
            assert update_fulfilled_in_time(dataset, until) is value
            assert update_fulfilled_in_time(dataset, until + timedelta(microseconds=1)) is not value


def test_a_record_holding_the_placeholder_gets_no_document() -> None:
    record = {
        "id": "x" * 24, "slug": "x", "title": "\x01/api", "description": "", "private": False, "license": "lov2",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC), "last_modified": datetime(2026, 1, 1, tzinfo=UTC),
        "last_update": datetime(2026, 1, 1, tzinfo=UTC), "resources": [],
    }
    assert stored_document(record) is None
    assert stored_document({**record, "title": "Titre"}) is not None


def test_bulk_changes_drop_documents_that_are_stored_again(catalog: RunningCatalog, api: Api, anonymous: Api, publisher: Any) -> None:
    """A metrics push and an organization's new name change many datasets at once: their documents
    go in the same transaction (the datasets are rendered when read), and are stored again after."""
    created = [api.create_dataset(title=f"Jeu {index}", organization=publisher.organization_id) for index in range(3)]
    nothing = {"default": {}, "by_id": {}}
    objects = {"datasets": {"default": {"views": 0}, "by_id": {created[0]["id"]: {"views": 7}}}, "resources": nothing, "organizations": nothing}
    MetricsStore(catalog.store.db).replace({name: [] for name in METRIC_MODELS}, objects)
    assert stored_body(catalog.store, created[0]["id"]) is None
    assert anonymous.get(f"/datasets/{created[0]['id']}/").json()["metrics"]["views"] == 7
    catalog.store.accounts.update_organization(publisher.organization_id, {"name": "Institut national"})
    assert all(stored_body(catalog.store, dataset["id"]) is None for dataset in created)
    listed = anonymous.get("/datasets/", params={"q": "jeu"}).json()["data"]
    assert {item["organization"]["name"] for item in listed} == {"Institut national"}
    assert catalog.store.datasets.store_missing_documents() == 3
    for dataset in created:
        assert_served_as_rendered(catalog, anonymous, dataset["id"], q="jeu")


def test_the_catalog_stores_missing_documents_when_it_starts(catalog_settings: Any) -> None:
    """Datasets written without their documents (a catalog upgraded from revision 0015, a bulk
    load) are rendered when read, and get them from the catalog's start."""
    with CatalogStore(catalog_settings) as store:
        ids = [store.datasets.create({"title": f"Jeu {index}", "description": "d"}, owner_id=None, organization_id=None)["id"] for index in range(5)]
        with store.db.write() as conn:
            conn.execute(delete(dataset_documents))
    with serve_in_thread(catalog_settings) as running:
        deadline = time.monotonic() + 10
        while any(stored_body(running.store, dataset_id) is None for dataset_id in ids):
            assert time.monotonic() < deadline, "documents stored within 10 s"
            time.sleep(0.05)
        for dataset_id in ids:
            assert_served_as_rendered(running, Api(running), dataset_id, q="jeu")
