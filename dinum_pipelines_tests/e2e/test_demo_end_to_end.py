"""End to end over loopback: demo administrations -> Dagster runs -> the udata-compatible catalog.

Everything is real: HTTP servers on 127.0.0.1, the catalog on SQLite and a folder, Great
Expectations validation, Dagster materializations on a real instance.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from urllib.parse import urlencode

import dagster as dg
import pandas as pd
import pytest
import requests

from dinum_pipelines.catalog.server import serve_in_thread
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.demo.runner import bootstrap_demo_publisher, run_datasets
from dinum_pipelines.demo.server import serve_administrations
from dinum_pipelines.lib.publish.column_profile import PROFILE_EXTRA
from dinum_pipelines.lib.storage.layout import DataLayout
from dinum_pipelines.lib.declare.registry import load_registry
from dinum_pipelines_tests import browser

GOOD = ("subventions_associations", "bornes_recharge")
BAD = "effectifs_ecoles"
# Not conformant to its Table Schema in many ways, all of which cleaning fixes: published, with warnings.
NONCONFORMANT = "fontaines_eau"

pytestmark = pytest.mark.slow


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Demo:
    """The demo's moving parts, started for one test in a temporary folder."""

    def __init__(self, tmp_path, monkeypatch):
        self.registry = load_registry()
        self.admin = serve_administrations()
        self.settings = CatalogSettings.in_directory(tmp_path / "catalog")
        self.catalog = serve_in_thread(self.settings)
        organizations = {s.organization.slug: s.organization.name for s in self.registry.values()}
        key = bootstrap_demo_publisher(self.catalog.store, "publisher@test.local", organizations)
        self.layout = DataLayout(tmp_path / "data")
        monkeypatch.setenv("DINUM_DEMO_ADMIN_URL", self.admin.url)
        monkeypatch.setenv("DINUM_CATALOG_URL", self.catalog.url)
        monkeypatch.setenv("DINUM_CATALOG_API_KEY", key)
        monkeypatch.setenv("DINUM_DATA_DIR", str(self.layout.root))
        self.defs = build_definitions()
        self.instance = dg.DagsterInstance.ephemeral()

    def run(self):
        return {o.slug: o for o in run_datasets(self.defs, self.registry, self.instance)}

    def api(self, path: str):
        response = requests.get(f"{self.catalog.url}/api/1/{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def download(self, resource_id: str) -> bytes:
        response = requests.get(f"{self.catalog.url}/api/1/datasets/r/{resource_id}", timeout=10)
        response.raise_for_status()
        return response.content

    def stop(self):
        self.catalog.stop()
        self.admin.stop()


@pytest.fixture
def demo(tmp_path, monkeypatch):
    running = Demo(tmp_path, monkeypatch)
    yield running
    running.stop()


def published_by_slug(demo: Demo) -> dict[str, dict]:
    listing = demo.api("datasets/?page_size=100")
    return {d["extras"]["dinum:slug"]: d for d in listing["data"]}


def test_demo_publishes_good_datasets_blocks_the_bad_one_and_is_idempotent(demo):
    outcomes = demo.run()
    for slug in GOOD:
        assert outcomes[slug].status == "published", outcomes[slug]
        assert outcomes[slug].check_passed is True
    assert outcomes[BAD].status == "blocked"
    assert "code_commune" in outcomes[BAD].detail and "2C" in outcomes[BAD].detail

    fontaines = outcomes[NONCONFORMANT]
    assert fontaines.status == "published" and fontaines.check_passed is True and fontaines.check_warnings
    assert sum(fontaines.conformance.values()) == 152 and fontaines.conformance["blank-row"] == 3

    datasets = published_by_slug(demo)
    assert set(datasets) == {*GOOD, NONCONFORMANT}  # the blocked dataset never reached the catalog
    for slug in GOOD:
        dataset = datasets[slug]
        assert dataset["license"] == "lov2"
        files = demo.layout.clean_files(slug)
        by_title = {r["title"]: r for r in dataset["resources"]}
        assert set(by_title) == {files.csv.name, files.parquet.name}
        for path in (files.csv, files.parquet):
            resource = by_title[path.name]
            downloaded = demo.download(resource["id"])
            assert sha256(downloaded) == sha256(path.read_bytes())
            assert resource["checksum"] == {"type": "sha1", "value": hashlib.sha1(path.read_bytes()).hexdigest()}
            report = json.loads(files.quality_report.read_text(encoding="utf-8"))
            assert resource["extras"]["validation-report:valid_resource"] is True
            assert resource["extras"]["validation-report:nb_rules"] == len(report["outcomes"])

    # The source that breaks its schema: clean files published, and its conformance report beside them.
    files = demo.layout.clean_files(NONCONFORMANT)
    by_role = {r["extras"]["dinum:role"]: r for r in datasets[NONCONFORMANT]["resources"]}
    assert set(by_role) == {"csv", "parquet", "conformance"}
    assert by_role["conformance"]["type"] == "documentation"
    assert sha256(demo.download(by_role["conformance"]["id"])) == sha256(files.conformance_report.read_bytes())
    for role in ("csv", "parquet"):
        extras = by_role[role]["extras"]
        assert extras["validation-report:validator"] == "dinum-validate"
        assert extras["validation-report:valid_resource"] is False and extras["validation-report:nb_errors"] == 152
        assert extras["validation-report:schema_name"] == "demo-fontaines-eau"
    page = requests.get(f"{demo.catalog.url}/datasets/{datasets[NONCONFORMANT]['id']}/conformite/", timeout=10)
    assert page.status_code == 200 and 'data-errors="152"' in page.text

    # Same sources again: nothing new in the catalog.
    before = {slug: demo.api(f"datasets/{d['id']}/") for slug, d in datasets.items()}
    outcomes = demo.run()
    assert {outcomes[slug].status for slug in (*GOOD, NONCONFORMANT)} == {"unchanged"}
    assert "304 Not Modified" in outcomes[GOOD[0]].detail
    assert outcomes[BAD].status == "blocked" and outcomes[BAD].check_passed is False
    after = {slug: demo.api(f"datasets/{d['id']}/") for slug, d in datasets.items()}
    for slug in (*GOOD, NONCONFORMANT):
        assert after[slug]["last_modified"] == before[slug]["last_modified"]
        assert [(r["id"], r["checksum"], r["last_modified"]) for r in after[slug]["resources"]] == [
            (r["id"], r["checksum"], r["last_modified"]) for r in before[slug]["resources"]
        ]


def test_a_changed_source_replaces_files_in_place_and_bad_data_never_replaces_good(demo):
    slug = "bornes_recharge"
    demo.run()
    dataset = published_by_slug(demo)[slug]
    csv_resource = next(r for r in dataset["resources"] if r["title"].endswith(".csv"))
    published_csv = demo.download(csv_resource["id"])
    path = next(p for p in demo.admin.paths if "bornes" in p)
    original = demo.admin.get(path).content

    # A new version with one record fewer: the same resources get the new files.
    feed = json.loads(original)
    feed["data"]["records"] = feed["data"]["records"][:-1]
    demo.admin.publish(path, json.dumps(feed).encode())
    assert demo.run()[slug].status == "published"
    updated = demo.api(f"datasets/{dataset['id']}/")
    new_csv = next(r for r in updated["resources"] if r["id"] == csv_resource["id"])
    assert new_csv["checksum"] != csv_resource["checksum"]
    good_bytes = demo.download(csv_resource["id"])
    assert good_bytes != published_csv

    # A broken version (two stations under one id) is blocked; the published files stay as they were.
    # (A record merely repeated would be dropped by cleaning, not blocked.)
    feed["data"]["records"].append({**feed["data"]["records"][0], "nom_station": "Une autre station"})
    demo.admin.publish(path, json.dumps(feed).encode())
    outcome = demo.run()[slug]
    assert outcome.status == "blocked", outcome
    assert sha256(demo.download(csv_resource["id"])) == sha256(good_bytes)


def test_make_demo_command_prints_summary_and_catalog_url(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dinum_pipelines.demo", "--home", str(tmp_path / "home"), "--no-serve",
         "--catalog-port", "0", "--admin-port", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    catalog_lines = [line for line in lines if line.startswith("catalog: http://127.0.0.1:")]
    assert len(catalog_lines) == 1
    assert "3 dataset(s) in the catalog; checks: 3 passed, 1 failed." in result.stdout
    assert f"- {BAD}: BLOCKED" in result.stdout
    assert f"- {NONCONFORMANT}: PUBLISHED (check passed with warnings)" in result.stdout
    assert "source file vs its Table Schema: NOT conformant, 152 fault(s)" in result.stdout
    [link] = [line.split("would: ", 1)[1] for line in lines if "check its source as a producer would" in line]
    assert link.startswith("http://127.0.0.1:") and "/valider/?url=" in link
    assert (tmp_path / ".env").exists()
    assert (tmp_path / "home" / "dagster_home").is_dir()


def test_published_tables_carry_their_profile_and_their_page_shows_the_data(demo):
    """Issue 14, part 2: the profile the pipeline computed at publication (pandas as the oracle on
    the clean Parquet), and the dataset page as a browser renders it: the preview's rows are the
    row API's, its filter and pages work through the page's URL, the columns show their type,
    description and profile, the history lists the file's version, and the "use the data" calls
    name this resource."""
    browser.ensure_chromium()
    demo.run()
    datasets = published_by_slug(demo)
    slug = GOOD[0]
    spec = demo.registry[slug]
    files = demo.layout.clean_files(slug)
    frame = pd.read_parquet(files.parquet)
    by_role = {r["extras"]["dinum:role"]: r for r in datasets[slug]["resources"]}
    for role in ("csv", "parquet"):
        profile = by_role[role]["extras"][PROFILE_EXTRA]
        assert profile["total_lines"] == len(frame)
        assert list(profile["columns"]) == list(frame.columns)
        for column in frame.columns:
            shown = profile["profile"][column]
            assert shown["nb_missing_values"] == int(frame[column].isna().sum()), column
            assert shown["nb_distinct"] == int(frame[column].nunique()), column
            counts = frame[column].value_counts()
            assert [top["count"] for top in shown["tops"]] == [int(n) for n in counts[counts > 1].head(5)], column
        declared = {c.name: c.description for c in spec.columns}
        assert {name: c["description"] for name, c in profile["columns"].items()} == {name: declared.get(name, "") for name in frame.columns}

    parquet_id = by_role["parquet"]["id"]
    data_url = f"{demo.catalog.url}/api/resources/{parquet_id}/data/"
    for column in frame.columns:  # the row API against pandas on the demo's clean Parquet
        values = frame[column].dropna()
        value = values.iloc[len(values) // 2]
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        mask = (frame[column] == value).fillna(False).astype(bool)
        answer = requests.get(data_url, params={f"{column}__exact": text, "page_size": 1000}, timeout=10).json()
        assert answer["meta"]["total"] == int(mask.sum()) > 0, column
        assert [r["__id"] for r in answer["data"]] == [int(i) + 1 for i in frame.index[mask][:1000]], column
        empty = requests.get(data_url, params={f"{column}__isnull": ""}, timeout=10).json()
        assert empty["meta"]["total"] == int(frame[column].isna().sum()), column
    page = browser.dump_dom(f"{demo.catalog.url}/datasets/{datasets[slug]['slug']}/")
    preview = page.by_id(f"apercu-{parquet_id}")
    api_rows = requests.get(f"{demo.catalog.url}/api/resources/{parquet_id}/data/", params={"page_size": 10}, timeout=10).json()
    shown_rows = preview.find("table", class_="preview-table").find("tbody").find_all("tr")
    assert [row.attrs["data-row-id"] for row in shown_rows] == [str(r["__id"]) for r in api_rows["data"]]
    first = shown_rows[0].find_all("td")
    assert [cell.text for cell in first[1:]] == ["" if v is None else str(v) for k, v in api_rows["data"][0].items() if k != "__id"]
    assert preview.find("h2").find(class_="count").text == f"{len(frame)} lignes"
    columns = {row.attrs["data-column"]: row for row in preview.find("table", class_="columns-table").find_all("tr", class_="column")}
    assert list(columns) == list(frame.columns)
    some = next(c for c in spec.columns if c.description)
    assert columns[some.name].find(class_="description").text == " ".join(some.description.split())
    assert columns[some.name].find(class_="nulls").text == str(int(frame[some.name].isna().sum()))
    history = page.by_id("historique").find("article", data_resource_id=parquet_id)  # the same page shows the history
    assert [row.attrs["data-version"] for row in history.find_all("tr", class_="version")] == ["1"]
    assert parquet_id in preview.find("code", class_="snippet-curl").text
    assert f"/api/1/datasets/r/{parquet_id}" in preview.find("code", class_="snippet-duckdb").text

    # Filter and sort through the page's URL: the same rows as the row API's answer to that query.
    column = frame.columns[0]
    value = str(frame[column].dropna().iloc[0])
    query = {"apercu": parquet_id, "colonne": column, "operateur": "exact", "valeur": value, "tri": f"{frame.columns[1]}:desc"}
    filtered = browser.dump_dom(f"{demo.catalog.url}/datasets/{datasets[slug]['slug']}/?{urlencode(query)}").by_id(f"apercu-{parquet_id}")
    api_filtered = requests.get(
        f"{demo.catalog.url}/api/resources/{parquet_id}/data/",
        params={f"{column}__exact": value, f"{frame.columns[1]}__sort": "desc", "page_size": 10}, timeout=10,
    ).json()
    assert [r.attrs["data-row-id"] for r in filtered.find("table", class_="preview-table").find("tbody").find_all("tr")] == [
        str(r["__id"]) for r in api_filtered["data"]
    ]
    assert filtered.find("a", class_="api-call").attrs["href"].endswith(urlencode({f"{column}__exact": value, f"{frame.columns[1]}__sort": "desc"}))
    second = browser.dump_dom(f"{demo.catalog.url}/datasets/{datasets[slug]['slug']}/?apercu={parquet_id}&page_apercu=2").by_id(f"apercu-{parquet_id}")
    api_second = requests.get(f"{demo.catalog.url}/api/resources/{parquet_id}/data/", params={"page_size": 10, "page": 2}, timeout=10).json()
    assert [r.attrs["data-row-id"] for r in second.find("table", class_="preview-table").find("tbody").find_all("tr")] == [
        str(r["__id"]) for r in api_second["data"]
    ]
    refused = browser.dump_dom(
        f"{demo.catalog.url}/datasets/{datasets[slug]['slug']}/?{urlencode({**query, 'operateur': 'greater', 'colonne': frame.columns[-1], 'valeur': 'pas une valeur'})}"
    )
    assert refused.by_id(f"apercu-{parquet_id}").find(class_="preview-error").text.startswith("Filtre refusé")
