"""The usage log the metrics pipeline aggregates: views and downloads, recorded by the request."""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dinum_pipelines.catalog import (
    CatalogSettings,
    CatalogStore,
    Publisher,
    RunningCatalog,
    bootstrap_publisher,
    serve_in_thread,
)
from dinum_pipelines.catalog.events import DATASET_VIEW, RESOURCE_DOWNLOAD, Events, simulated_time
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


def test_a_group_of_events_reads_back_as_recorded(catalog: RunningCatalog, publisher: Publisher, dataset: dict[str, Any]) -> None:
    """Every field of every event of one group, on each backend (PostgreSQL is sent the group as
    one binary COPY, SQLite one row at a time: events._DriverInsert): the time from another
    zone, to the microsecond; text with tabs, newlines, quotes, backslashes and non-ASCII; NULLs;
    the organization given, or the dataset's, or none."""
    log = Events(catalog.store.db, commit_interval=60)  # nothing written before `list`: one group
    paris, new_york = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
    agent = 'Navigateur « été »\t\\N\n"quoted" \\ back\\slash %s \x01\x7f \u2028 日本 😀'
    resource_id = "5b1a5e8c-3d1f-4e7a-9b0e-0c2f4a6d8e10"
    recorded = [  # (when, fields)
        (datetime(2026, 7, 1, 1, 59, 59, 999999, tzinfo=paris), {
            "kind": DATASET_VIEW, "channel": "web", "user_agent": agent, "dataset_id": dataset["id"],
        }),
        (datetime(2026, 7, 1, tzinfo=UTC), {  # the organization given, not the dataset's
            "kind": RESOURCE_DOWNLOAD, "channel": "permalink", "user_agent": None,
            "dataset_id": dataset["id"], "resource_id": resource_id, "organization_id": "o" * 24,
        }),
        (datetime(2026, 7, 1, 0, 0, 0, 1, tzinfo=UTC), {"kind": DATASET_VIEW, "channel": "api", "user_agent": "", "dataset_id": "d" * 24}),
        (datetime(1999, 12, 31, 23, 0, tzinfo=new_york), {"kind": RESOURCE_DOWNLOAD, "channel": "api", "user_agent": "curl/8.5.0"}),
    ]
    for when, fields in recorded:
        with simulated_time(when):
            log.record(**fields)
    try:
        written = [{name: value for name, value in event.items() if name != "id"} for event in log.list()]
    finally:
        log.close()
    assert written == [
        {
            "occurred_at": datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=UTC), "kind": DATASET_VIEW, "channel": "web",
            "user_agent": agent, "dataset_id": dataset["id"], "resource_id": None, "organization_id": publisher.organization_id,
        },
        {
            "occurred_at": datetime(2026, 7, 1, tzinfo=UTC), "kind": RESOURCE_DOWNLOAD, "channel": "permalink", "user_agent": None,
            "dataset_id": dataset["id"], "resource_id": resource_id, "organization_id": "o" * 24,
        },
        {
            "occurred_at": datetime(2026, 7, 1, 0, 0, 0, 1, tzinfo=UTC), "kind": DATASET_VIEW, "channel": "api", "user_agent": None,
            "dataset_id": "d" * 24, "resource_id": None, "organization_id": None,  # an unknown dataset has no organization
        },
        {
            "occurred_at": datetime(2000, 1, 1, 4, 0, tzinfo=UTC), "kind": RESOURCE_DOWNLOAD, "channel": "api", "user_agent": "curl/8.5.0",
            "dataset_id": None, "resource_id": None, "organization_id": None,
        },
    ]


# Views are queued by the request and written in groups by a writer thread (events.py): what a
# reader, an export and a clean stop must still see.

CONCURRENT_CLIENTS = 8
VIEWS_PER_CLIENT = 15


def view_concurrently(catalog: RunningCatalog, dataset_id: str) -> None:
    """CONCURRENT_CLIENTS clients each viewing the dataset VIEWS_PER_CLIENT times, all answered."""

    def client(_index: int) -> list[int]:
        session = Api(catalog)
        return [session.get(f"/datasets/{dataset_id}/").status_code for _ in range(VIEWS_PER_CLIENT)]

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        statuses = [status for statuses in pool.map(client, range(CONCURRENT_CLIENTS)) for status in statuses]
    assert statuses == [200] * CONCURRENT_CLIENTS * VIEWS_PER_CLIENT


def test_the_export_sees_every_view_answered_before_it(catalog: RunningCatalog, api: Api, publisher: Publisher, dataset: dict[str, Any]) -> None:
    catalog.store.accounts.grant_sysadmin(publisher.user_id)
    since = datetime.now(UTC) - timedelta(minutes=1)
    view_concurrently(catalog, dataset["id"])
    response = api.get("/events/", params={"since": since.isoformat(), "until": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()})
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == CONCURRENT_CLIENTS * VIEWS_PER_CLIENT
    assert {(row["kind"], row["dataset_id"], row["organization_id"]) for row in rows} == {
        (DATASET_VIEW, dataset["id"], publisher.organization_id)
    }


def test_a_clean_stop_writes_every_queued_view(catalog_settings: CatalogSettings) -> None:
    running = serve_in_thread(catalog_settings)
    try:
        publisher = bootstrap_publisher(running.store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Bot")
        dataset = Api(running, publisher.token).create_dataset(organization=publisher.organization_id)
        view_concurrently(running, dataset["id"])
    finally:
        running.stop()
    # Another store on the same database: it has queued nothing, so this reads only what the
    # stopped server wrote.
    with CatalogStore(running.settings) as store:
        assert len(store.events.list(kind=DATASET_VIEW)) == CONCURRENT_CLIENTS * VIEWS_PER_CLIENT


def test_an_event_carries_the_time_it_was_recorded_not_written(catalog_settings: CatalogSettings) -> None:
    with CatalogStore(catalog_settings) as store:
        store.events = Events(store.db, commit_interval=0.5)  # a long pause before each group is written
        before = datetime.now(UTC)
        store.events.record(DATASET_VIEW, channel="api", user_agent=None, dataset_id="d" * 24)
        recorded = datetime.now(UTC)
        [event] = store.events.list()
        assert before <= event["occurred_at"] <= recorded
        assert event["organization_id"] is None  # an unknown dataset has no organization


def test_events_recorded_during_a_groups_pause_join_that_group(catalog_settings: CatalogSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy process writes one transaction per pause, not one per event: an event queued while
    the writer lets its group gather does not wake it (it once did, and under load the usage log
    committed one or two events at a time)."""
    with CatalogStore(catalog_settings) as store:
        store.events = Events(store.db, commit_interval=0.3)
        writes = []
        write = store.db.write

        def counted(*args: Any, **kwargs: Any) -> Any:
            writes.append(kwargs.get("changes_data"))
            return write(*args, **kwargs)

        monkeypatch.setattr(store.db, "write", counted)
        for number in range(20):  # within the first group's pause (0.3 s)
            store.events.record(DATASET_VIEW, channel="api", user_agent=f"client {number}")
            time.sleep(0.005)
        store.events.flush()
        assert len(store.events.list(kind=DATASET_VIEW)) == 20
        assert len(writes) <= 2, writes  # the writer woken by each event: 10 transactions


def test_closing_writes_the_queued_events_then_refuses_new_ones(catalog_settings: CatalogSettings) -> None:
    store = CatalogStore(catalog_settings)
    store.events = Events(store.db, commit_interval=60)  # only the close can get this one written in time
    store.events.record(RESOURCE_DOWNLOAD, channel="web", user_agent="Mozilla/5.0", organization_id="o" * 24)
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.events.record(DATASET_VIEW, channel="api", user_agent=None)
    with CatalogStore(catalog_settings) as reopened:
        assert [(e["kind"], e["organization_id"]) for e in reopened.events.list()] == [(RESOURCE_DOWNLOAD, "o" * 24)]
