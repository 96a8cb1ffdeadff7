"""The catalog's usage-metrics endpoints over real HTTP: log export, simulated clock, push, metric API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from dinum_pipelines.catalog import CatalogSettings, Publisher, RunningCatalog, serve_in_thread
from dinum_pipelines.catalog.metrics_api import SIMULATED_TIME_HEADER
from dinum_pipelines.lib.metrics.usage import UsageTables, catalog_payload
from dinum_pipelines.lib.metrics.schema import EVENT_COLUMNS
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.metrics.conftest import catalog_figures, publish_sample_datasets

PROGRAM = {"User-Agent": "curl/8.5.0"}


def at(when: datetime) -> dict[str, str]:
    return {**PROGRAM, SIMULATED_TIME_HEADER: when.isoformat()}


def exported(api: Api, since: datetime, until: datetime) -> list[dict[str, str]]:
    response = api.get("/events/", params={"since": since.isoformat(), "until": until.isoformat()})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_log_export_and_metrics_push_are_for_sysadmins_only(anonymous: Api, api: Api, admin_api: Api) -> None:
    window = {"since": "2026-10-01T00:00:00+00:00", "until": "2026-10-02T00:00:00+00:00"}
    assert anonymous.get("/events/", params=window).status_code == 401
    assert api.get("/events/", params=window).status_code == 403
    assert admin_api.get("/events/", params=window).status_code == 200
    assert anonymous.put("/metrics/", json={}).status_code == 401
    assert api.put("/metrics/", json={}).status_code == 403
    assert admin_api.put("/metrics/", json={}).status_code == 400
    assert admin_api.get("/events/", params={**window, "since": "2026-10-01"}).status_code == 400  # no time zone


def test_the_export_is_the_window_start_included_end_excluded(
    catalog: RunningCatalog, api: Api, admin_api: Api, publisher: Publisher
) -> None:
    dataset = api.create_dataset(organization=publisher.organization_id)
    start = datetime(2026, 10, 30, 23, 0, tzinfo=UTC)  # 31 October, 00:00 in Paris
    for offset in (timedelta(microseconds=-1), timedelta(0), timedelta(hours=5), timedelta(days=1, microseconds=-1), timedelta(days=1)):
        assert admin_api.get(f"/datasets/{dataset['id']}/", headers=at(start + offset)).status_code == 200
    rows = exported(admin_api, start, start + timedelta(days=1))
    assert [datetime.fromisoformat(row["occurred_at"]) - start for row in rows] == [
        timedelta(0), timedelta(hours=5), timedelta(days=1, microseconds=-1)
    ]
    assert list(rows[0]) == list(EVENT_COLUMNS)
    assert rows[0]["kind"] == "dataset.view" and rows[0]["channel"] == "api" and rows[0]["user_agent"] == "curl/8.5.0"
    assert rows[0]["dataset_id"] == dataset["id"] and rows[0]["organization_id"] == publisher.organization_id


def test_the_simulated_clock_is_for_sysadmins_and_the_past(
    catalog: RunningCatalog, api: Api, admin_api: Api, anonymous: Api, publisher: Publisher, tmp_path: Any
) -> None:
    dataset = api.create_dataset(organization=publisher.organization_id)
    path = f"/datasets/{dataset['id']}/"
    past = datetime(2026, 10, 5, 12, tzinfo=UTC)
    assert anonymous.get(path, headers=at(past)).status_code == 403
    assert api.get(path, headers=at(past)).status_code == 403
    assert admin_api.get(path, headers=at(datetime.now(UTC) + timedelta(hours=1))).status_code == 400
    assert admin_api.get(path, headers={SIMULATED_TIME_HEADER: "2026-10-05T12:00:00"}).status_code == 400  # no zone
    assert [event["occurred_at"] for event in catalog.store.events.list()] == []
    assert admin_api.get(path, headers=at(past)).status_code == 200
    assert [event["occurred_at"] for event in catalog.store.events.list()] == [past]

    # A catalog started without the simulated clock ignores the header: the event is now.
    with serve_in_thread(CatalogSettings.in_directory(tmp_path / "production")) as production:
        other = Api(production, production_admin_token(production))
        created = other.create_dataset()
        before = datetime.now(UTC)
        assert other.get(f"/datasets/{created['id']}/", headers=at(past)).status_code == 200
        assert production.store.events.list()[0]["occurred_at"] >= before


def production_admin_token(catalog: RunningCatalog) -> str:
    from dinum_pipelines.catalog import bootstrap_publisher

    admin = bootstrap_publisher(catalog.store, org_slug="etalab", org_name="Etalab", email="a@etalab.fr", name="A B")
    catalog.store.accounts.grant_sysadmin(admin.user_id)
    return admin.token


def sample_payload(datasets: list[dict[str, Any]], views: int) -> dict[str, Any]:
    """A push built from daily counts: `views` API views of the first dataset on 2026-10-30 and
    2026-11-02, and 2 permalink downloads of its first file on 2026-11-02."""
    first = datasets[0]
    org = first["organization"]["id"]
    resource = first["resources"][0]["id"]
    rows = [
        ("2026-10-30", "dataset.view", "api", org, first["id"], None, views),
        ("2026-11-02", "dataset.view", "api", org, first["id"], None, views),
        ("2026-11-02", "resource.download", "permalink", org, first["id"], resource, 2),
    ]
    counts = pd.DataFrame(rows, columns=["day", "kind", "channel", "organization_id", "dataset_id", "resource_id", "count"])
    return catalog_payload(UsageTables.from_counts(counts), datetime(2026, 11, 23).date())


def test_a_push_sets_the_objects_metrics_and_the_metric_api(
    api: Api, admin_api: Api, anonymous: Api, publisher: Publisher
) -> None:
    datasets = publish_sample_datasets(api, publisher)
    first, second = datasets
    response = admin_api.put("/metrics/", json=sample_payload(datasets, views=3))
    assert response.status_code == 200, response.text
    assert response.json()["tables"]["datasets"] == 2 and response.json()["unknown"]["datasets"] == 0

    metrics = anonymous.get(f"/datasets/{first['id']}/").json()["metrics"]
    assert metrics["views"] == 6 and metrics["resources_downloads"] == 2
    assert len(metrics["resources_downloads_by_months"]) == 13
    assert metrics["resources_downloads_by_months"]["2026-11"] == 2
    assert metrics["resources_downloads_by_months"]["2026-10"] == 0
    assert metrics["views_by_months"]["2026-10"] == 3 and metrics["views_by_months"]["2026-11"] == 3
    assert metrics["followers"] == 0  # keys the pipeline does not own keep their default
    resources = anonymous.get(f"/datasets/{first['id']}/").json()["resources"]
    assert [resource["metrics"]["views"] for resource in resources] == [2, 0]
    assert anonymous.get(f"/datasets/{second['id']}/").json()["metrics"]["views"] == 0
    org = anonymous.get(f"/organizations/{publisher.organization_slug}/").json()["metrics"]
    assert org["views"] == 6 and org["resources_downloads"] == 2 and org["datasets"] == 2
    org_page = anonymous.get(f"{anonymous.catalog.url}/organizations/{publisher.organization_slug}/").text
    assert '<strong id="view-count">6</strong>' in org_page and '<strong id="download-count">2</strong>' in org_page

    page = anonymous.get("/api/datasets/data/", params={"dataset_id__exact": first["id"], "metric_month__sort": "desc"}).json()
    assert [(row["metric_month"], row["monthly_visit"], row["monthly_download_resource"]) for row in page["data"]] == [
        ("2026-11", 3, 2), ("2026-10", 3, 0)
    ]
    assert all("__id" in row for row in page["data"])
    assert page["meta"] == {"page": 1, "page_size": 20, "total": 2} and page["links"]["next"] is None
    assert anonymous.get("/api/datasets/data/", params={"monthly_download_resource__greater": 2}).json()["meta"]["total"] == 1
    assert anonymous.get("/api/datasets/data/", params={"monthly_download_resource__strictly_greater": 2}).json()["meta"]["total"] == 0
    assert anonymous.get("/api/datasets/data/", params={"metric_month__less": "2026-10"}).json()["meta"]["total"] == 1
    paged = anonymous.get("/api/datasets/data/", params={"page_size": 1}).json()
    assert paged["meta"]["total"] == 2 and len(paged["data"]) == 1 and "page=2" in paged["links"]["next"]
    second_page = anonymous.get(paged["links"]["next"]).json()
    assert second_page["links"]["prev"] is not None and second_page["data"][0]["__id"] != paged["data"][0]["__id"]
    totals = anonymous.get("/api/resources_total/data/", params={"dataset_id__exact": first["id"]}).json()["data"]
    assert [(row["resource_id"], row["download_resource"], row["download_resource_permalink"]) for row in totals] == [
        (first["resources"][0]["id"], 2, 2)
    ]

    for params, status in (({"nope__exact": 1}, 400), ({"monthly_visit__near": 1}, 400), ({"page_size": 51}, 400),
                           ({"monthly_visit__exact": "x"}, 400), ({"metric_month__sort": "up"}, 400)):
        answer = anonymous.get("/api/datasets/data/", params=params)
        assert answer.status_code == status and answer.json()["errors"][0]["detail"], params
    assert anonymous.get("/api/reuses/data/").status_code == 404


def test_a_failed_push_leaves_every_previous_figure(api: Api, admin_api: Api, anonymous: Api, publisher: Publisher) -> None:
    datasets = publish_sample_datasets(api, publisher)
    assert admin_api.put("/metrics/", json=sample_payload(datasets, views=3)).status_code == 200
    before = catalog_figures(anonymous, datasets)

    # Refused midway: the last table repeats a row, which only the database's unique constraint
    # sees, after every other table was replaced inside the transaction.
    repeated = sample_payload(datasets, views=7)
    last = repeated["tables"]["organizations_total"]["rows"]
    last.append(list(last[0]))
    response = admin_api.put("/metrics/", json=repeated)
    assert response.status_code == 409, response.text
    assert catalog_figures(anonymous, datasets) == before

    invalid = sample_payload(datasets, views=7)
    invalid["tables"]["resources"]["rows"][0][-1] = -1
    assert admin_api.put("/metrics/", json=invalid).status_code == 400
    assert catalog_figures(anonymous, datasets) == before

    # The same push again changes nothing.
    again = admin_api.put("/metrics/", json=sample_payload(datasets, views=3)).json()
    assert again["updated"] == {"datasets": 0, "resources": 0, "organizations": 0}
    assert catalog_figures(anonymous, datasets) == before


def test_the_cli_creates_a_sysadmin(tmp_path: Any, capsys: Any) -> None:
    from dinum_pipelines.catalog.__main__ import main
    from dinum_pipelines.catalog.store import CatalogStore

    storage = ["--database-url", f"sqlite:///{tmp_path / 'catalog.db'}", "--files-dir", str(tmp_path / "files")]
    assert main(["create-user", "--email", "stats@etalab.fr", "--name", "Usage Metrics", "--sysadmin", *storage]) == 0
    assert main(["create-user", "--email", "jeanne@etalab.fr", "--name", "Jeanne Dupont", *storage]) == 0
    stats_id, jeanne_id = capsys.readouterr().out.split()
    with CatalogStore(CatalogSettings(storage[1], tmp_path / "files")) as store:
        assert store.accounts.is_sysadmin(stats_id) and not store.accounts.is_sysadmin(jeanne_id)
