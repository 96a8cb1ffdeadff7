"""Two publications of a changed source by real Dagster runs, and the history the catalog keeps.

The demo administration serves the charging stations; the dataset's job runs, the source changes
(a station added, one removed, one modified), the job runs again. The published asset's metadata
and the catalog's versions of both files then hold the same change summary, counted by primary
key, and the first files stay downloadable at their version's URL, byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from dinum_pipelines.defs.keys import job_name, published_key
from dinum_pipelines.demo.runner import QUIET_RUN_CONFIG
from dinum_pipelines_tests import browser
from dinum_pipelines_tests.e2e.test_demo_end_to_end import Demo, demo  # noqa: F401 (fixture)

SLUG = "bornes_recharge"

pytestmark = pytest.mark.slow


def run_job(running: Demo) -> dict[str, Any]:
    """Run the dataset's job; the published asset's metadata."""
    job = running.defs.resolve_job_def(job_name(SLUG))
    result = job.execute_in_process(instance=running.instance, run_config=QUIET_RUN_CONFIG)
    assert result.success
    [published] = [
        event.materialization for event in result.get_asset_materialization_events()
        if event.asset_key == published_key(SLUG)
    ]
    return {name: value.value for name, value in published.metadata.items()}


def test_a_second_publication_keeps_the_first_files_and_says_what_changed(demo: Demo) -> None:  # noqa: F811 (the fixture)
    first = run_job(demo)
    assert "changes" not in first  # nothing to compare with yet
    files = demo.layout.clean_files(SLUG)
    first_bytes = {"csv": files.csv.read_bytes(), "parquet": files.parquet.read_bytes()}

    path = next(p for p in demo.admin.paths if "bornes" in p)
    feed = json.loads(demo.admin.get(path).content)
    records = feed["data"]["records"]
    removed = records.pop()
    records[0] = {**records[0], "nbre_pdc": records[0]["nbre_pdc"] + 1}
    records.append({**records[1], "id_station_itinerance": "FRDEMP99999", "nom_station": "Nouvelle station"})
    demo.admin.publish(path, json.dumps(feed).encode())

    second = run_job(demo)
    expected = {
        "key": ["id_station_itinerance"], "rows_before": len(records), "rows_after": len(records),
        "rows_added": 1, "rows_removed": 1, "rows_modified": 1, "columns_added": [], "columns_removed": [],
    }
    assert second["changes"] == expected

    dataset = demo.api(f"datasets/{second['dataset_id']}/")
    for role in ("csv", "parquet"):
        resource_id = second[f"{role}_resource_id"]
        assert resource_id == first[f"{role}_resource_id"]
        versions = demo.api(f"datasets/{dataset['id']}/resources/{resource_id}/versions/")
        assert [(v["version"], v["latest"], v["changes"]) for v in versions] == [(2, True, expected), (1, False, None)]
        assert versions[0]["sha256"] == second[f"{role}_sha256"] and versions[1]["sha256"] == first[f"{role}_sha256"]
        old = requests.get(versions[1]["url"], timeout=10)
        assert old.status_code == 200 and old.content == first_bytes[role]
        assert demo.download(resource_id) == (files.csv if role == "csv" else files.parquet).read_bytes()
    assert removed["id_station_itinerance"].encode() in first_bytes["csv"]

    # The dataset page says it in French, for each file.
    page = browser.parse_html(requests.get(dataset["page"], timeout=10).text)
    histories = page.by_id("historique").find_all("article", class_="history")
    assert {entry.attrs["data-resource-id"] for entry in histories} == {second["csv_resource_id"], second["parquet_resource_id"]}
    for entry in histories:
        assert [row.find("td", class_="changes").text for row in entry.find_all("tr", class_="version")] == [
            "+1 ligne, −1 ligne, 1 modifiée", "Première version",
        ]
