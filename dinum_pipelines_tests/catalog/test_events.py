"""The usage log the metrics pipeline aggregates: views and downloads, recorded in the request."""

from __future__ import annotations

from typing import Any

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.events import DATASET_VIEW, RESOURCE_DOWNLOAD
from dinum_pipelines_tests.catalog.conftest import Api

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}


def test_views_and_downloads_are_recorded(
    catalog: RunningCatalog, api: Api, anonymous: Api, publisher: Publisher, dataset: dict[str, Any]
) -> None:
    resource = api.upload(dataset["id"], "communes.csv", b"code\n01001\n").json()
    assert catalog.store.events.list() == []  # writes are not usage

    anonymous.get(f"/datasets/{dataset['slug']}/")
    via_permalink = anonymous.get(resource["latest"])  # redirect + file: ONE download
    assert via_permalink.content == b"code\n01001\n" and len(via_permalink.history) == 1
    anonymous.get(resource["latest"], allow_redirects=False)  # a redirect not followed is no download
    anonymous.get(resource["url"])
    anonymous.get(resource["url"], headers=BROWSER)
    anonymous.session.head(resource["url"])  # link checkers are not downloads
    anonymous.get("/datasets/")  # listings are not views

    recorded = [(event["kind"], event["channel"]) for event in catalog.store.events.list()]
    assert recorded == [
        (DATASET_VIEW, "api"),
        (RESOURCE_DOWNLOAD, "permalink"),
        (RESOURCE_DOWNLOAD, "api"),
        (RESOURCE_DOWNLOAD, "web"),
    ]
    for event in catalog.store.events.list():
        assert event["dataset_id"] == dataset["id"]
        assert event["organization_id"] == publisher.organization_id
        assert event["occurred_at"].tzinfo is not None
    downloads = catalog.store.events.list(kind=RESOURCE_DOWNLOAD)
    assert {event["resource_id"] for event in downloads} == {resource["id"]}
    assert downloads[-1]["user_agent"] == BROWSER["User-Agent"]


def test_failed_reads_record_nothing(catalog: RunningCatalog, api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    api.delete(f"/datasets/{dataset['id']}/")
    anonymous.get(f"/datasets/{dataset['id']}/")
    anonymous.get("/datasets/unknown/")
    anonymous.get("/datasets/r/unknown")
    assert catalog.store.events.list() == []


def test_a_remote_resource_stable_link_counts_the_download_itself(
    catalog: RunningCatalog, api: Api, anonymous: Api, dataset: dict[str, Any]
) -> None:
    """The bytes are served elsewhere: the redirect is all the catalog sees of the download."""
    created = api.post(
        f"/datasets/{dataset['id']}/resources/", json={"title": "API", "url": "https://example.org/data.csv", "filetype": "remote"}
    )
    assert created.status_code == 201, created.text
    response = anonymous.get(created.json()["latest"], allow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "https://example.org/data.csv"
    recorded = [(event["kind"], event["channel"], event["resource_id"]) for event in catalog.store.events.list()]
    assert recorded == [(RESOURCE_DOWNLOAD, "permalink", created.json()["id"])]
