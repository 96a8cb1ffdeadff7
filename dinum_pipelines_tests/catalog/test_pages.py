"""The reusers' pages, as headless Chromium renders them from a real catalog on loopback."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any

import pytest
import requests

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.events import DATASET_VIEW, RESOURCE_DOWNLOAD
from dinum_pipelines.catalog.pages import PAGE_SIZE, downloads_chart, human_size
from dinum_pipelines_tests import browser
from dinum_pipelines_tests.catalog.conftest import Api

CSV = "code_commune;nom\n01001;L'Abergement-Clémenciat\n2A004;Ajaccio\n".encode() * 400
LONG_DESCRIPTION = "La liste des communes françaises au 1er janvier, avec leur code INSEE et leur nom officiel. " * 3
BROWSER_HEADERS = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"}


def card_titles(page: browser.Element) -> list[str]:
    return [card.find("h3").text for card in page.find_all("article", class_="dataset-card")]


def html(catalog: RunningCatalog, path: str) -> tuple[int, browser.Element]:
    """The page as served (status included), parsed; for checks where the status is the point."""
    response = requests.get(catalog.url + path, timeout=10)
    return response.status_code, browser.parse_html(response.text)


@pytest.fixture
def published(api: Api, publisher: Publisher) -> dict[str, dict[str, Any]]:
    """Two public datasets of Insee, one private and one deleted."""
    org = publisher.organization_id
    communes = api.create_dataset(
        title="Communes de France", description=LONG_DESCRIPTION, organization=org, license="lov2",
        frequency="annual", tags=["communes", "insee"], temporal_coverage={"start": "2024-01-01", "end": "2024-12-31"},
    )
    resource = api.upload(communes["id"], "communes.csv", CSV).json()
    schema = {"schema": {"name": "etalab/schema-communes", "version": "1.0.0"}}
    assert api.put(f"/datasets/{communes['id']}/resources/{resource['id']}/", json=schema).status_code == 200
    carburants = api.create_dataset(
        title="Prix des carburants", description="Les prix relevés en station.", organization=org,
        license="odc-odbl", tags=["energie"],
    )
    api.upload(carburants["id"], "prix.xlsx", b"PK\x03\x04 not really a spreadsheet")
    private = api.create_dataset(title="Brouillon confidentiel", organization=org, private=True)
    deleted = api.create_dataset(title="Ancienne base supprimée", organization=org)
    assert api.delete(f"/datasets/{deleted['id']}/").status_code == 204
    return {"communes": communes, "carburants": carburants, "private": private, "deleted": deleted}


def test_home_lists_published_datasets_and_search_narrows_them(
    chromium: Path, catalog: RunningCatalog, published: dict[str, dict[str, Any]]
) -> None:
    home = browser.dump_dom(catalog.url + "/")
    assert sorted(card_titles(home)) == ["Communes de France", "Prix des carburants"]
    assert home.by_id("result-count").text == "2 jeux de données"

    searched = browser.dump_dom(catalog.url + "/?q=CARBURANT")
    assert card_titles(searched) == ["Prix des carburants"]
    assert searched.by_id("q").attrs["value"] == "CARBURANT"  # the form keeps the query

    by_format = browser.dump_dom(catalog.url + "/?format=csv&license=lov2")
    assert card_titles(by_format) == ["Communes de France"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tag=energie", ["Prix des carburants"]),
        ("license=odc-odbl", ["Prix des carburants"]),
        ("format=XLSX", ["Prix des carburants"]),
        ("format=csv&tag=energie", []),
        ("organization=insee&q=communes", ["Communes de France"]),
        ("organization=dgfip", []),
        ("q=confidentiel", []),  # private datasets never show
        ("q=supprim", []),
    ],
)
def test_each_search_filter(catalog: RunningCatalog, published: dict[str, Any], query: str, expected: list[str]) -> None:
    status, page = html(catalog, f"/?{query}")
    assert status == 200
    assert card_titles(page) == expected


def test_search_pages_through_results(catalog: RunningCatalog, api: Api, publisher: Publisher) -> None:
    for number in range(PAGE_SIZE + 3):
        api.create_dataset(title=f"Jeu {number:02d}", organization=publisher.organization_id, tags=["lot"])
    _, first = html(catalog, "/?tag=lot")
    assert len(card_titles(first)) == PAGE_SIZE
    next_link = first.find("a", rel="next").attrs["href"]
    assert next_link == "?tag=lot&page=2"
    _, second = html(catalog, f"/{next_link}")
    assert len(card_titles(second)) == 3
    assert not set(card_titles(first)) & set(card_titles(second))
    assert second.find("a", rel="prev").attrs["href"] == "?tag=lot"
    assert html(catalog, "/?page=0")[0] == 404


def test_dataset_page_shows_resources_quality_usage_and_chart(
    chromium: Path, catalog: RunningCatalog, published: dict[str, dict[str, Any]]
) -> None:
    communes = published["communes"]
    resource = catalog.store.datasets.require(communes["id"])["resources"][0]  # not through the API: no view
    by_months = {"2026-08": 5, "2026-10": 40, "2026-09": 20}
    catalog.store.datasets.transform_doc_field(
        communes["id"], "metrics", lambda _old: {"views": 17, "resources_downloads": 65, "resources_downloads_by_months": by_months}
    )

    page = browser.dump_dom(f"{catalog.url}/datasets/{communes['slug']}/")

    assert page.find("h1").text == "Communes de France"
    assert page.by_id("license").text == "Licence Ouverte / Open Licence version 2.0"
    assert page.by_id("frequency").text == "Annuelle"
    assert page.by_id("temporal-coverage").text == "1 janv. 2024 – 31 déc. 2024"
    shown = page.find("article", data_resource_id=resource["id"])
    assert shown.find("h3").text == "communes.csv"
    assert shown.find(class_="format").text == "csv"
    assert shown.find(class_="size").text == human_size(len(CSV)) == "24,2 Ko"
    assert shown.find("code", class_="checksum").text == hashlib.sha1(CSV).hexdigest()
    assert shown.find(class_="schema").text == "etalab/schema-communes (version 1.0.0)"
    link = shown.find("a", class_="download").attrs["href"]
    assert link == f"{catalog.url}/api/1/datasets/r/{resource['id']}"

    # 7 of 9: no spatial coverage, and the resource has no description nor documentation.
    assert page.by_id("quality-score").text == "78 %"
    criteria = {item.attrs["data-criterion"]: item.attrs["class"] for item in page.by_id("quality").find_all("li")}
    assert len(criteria) == 9
    assert criteria["license"] == "met" and criteria["spatial"] == "unmet"
    assert list(criteria.values()).count("met") == 7

    assert (page.by_id("views").text, page.by_id("downloads").text) == ("17", "65")
    bars = page.by_id("downloads-chart").find_all("g", class_="bar")
    assert [(bar.attrs["data-month"], bar.attrs["data-value"]) for bar in bars] == [
        ("2026-08", "5"), ("2026-09", "20"), ("2026-10", "40"),
    ]
    heights = [float(bar.find("rect").attrs["height"]) for bar in bars]
    assert heights[0] < heights[1] < heights[2]
    assert [bar.find("text", class_="label").text for bar in bars] == ["août 26", "sept. 26", "oct. 26"]

    # The browser's page load was a web view; the download link serves the bytes and is logged.
    assert [(e["kind"], e["channel"]) for e in catalog.store.events.list()] == [(DATASET_VIEW, "web")]
    download = requests.get(link, headers=BROWSER_HEADERS, timeout=10)
    assert download.content == CSV
    downloads = catalog.store.events.list(kind=RESOURCE_DOWNLOAD)
    # How many rows one download through the stable link makes is events.py's rule; here: it counts.
    assert downloads and {e["resource_id"] for e in downloads} == {resource["id"]}
    assert downloads[0]["channel"] == "permalink"


def test_chart_has_an_empty_state_without_figures(
    chromium: Path, catalog: RunningCatalog, published: dict[str, dict[str, Any]]
) -> None:
    page = browser.dump_dom(f"{catalog.url}/datasets/{published['carburants']['id']}/")
    assert "Pas encore de statistiques" in page.by_id("chart-empty").text
    assert page.find_all("svg") == []
    assert page.by_id("views").text == "0"


def test_organization_page_lists_its_public_datasets_and_members(
    chromium: Path, catalog: RunningCatalog, publisher: Publisher, published: dict[str, dict[str, Any]]
) -> None:
    colleague = catalog.store.accounts.create_user("jeanne@insee.fr", "Jeanne", "Dupont")
    catalog.store.accounts.set_member(publisher.organization_id, colleague["id"], "admin")
    page = browser.dump_dom(f"{catalog.url}/organizations/insee/")
    assert page.find("h1").text == "Insee"
    assert sorted(card_titles(page)) == ["Communes de France", "Prix des carburants"]
    assert (page.by_id("dataset-count").text, page.by_id("member-count").text) == ("2", "2")
    assert html(catalog, "/organizations/nobody/")[0] == 404


def test_private_deleted_and_unknown_datasets(
    chromium: Path, catalog: RunningCatalog, published: dict[str, dict[str, Any]]
) -> None:
    private = published["private"]
    rendered = browser.dump_dom(f"{catalog.url}/datasets/{private['slug']}/")
    assert "Brouillon confidentiel" not in rendered.text
    assert rendered.find(class_="error-code").text == "Erreur 404"
    assert html(catalog, f"/datasets/{private['id']}/")[0] == 404
    status, gone = html(catalog, f"/datasets/{published['deleted']['id']}/")
    assert status == 410 and "supprimé" in gone.find("h1").text
    assert html(catalog, "/datasets/inconnu/")[0] == 404
    assert catalog.store.events.list() == []  # none of these is a view


def test_head_requests_are_not_views(catalog: RunningCatalog, published: dict[str, dict[str, Any]]) -> None:
    assert requests.head(f"{catalog.url}/datasets/{published['communes']['slug']}/", timeout=10).status_code == 200
    assert catalog.store.events.list() == []


def test_publisher_text_is_escaped(chromium: Path, catalog: RunningCatalog, api: Api, publisher: Publisher) -> None:
    hostile = api.create_dataset(
        title='<script>document.title="pwned"</script>Communes',
        description='<img src=x onerror="alert(1)"> & co', organization=publisher.organization_id,
    )
    page = browser.dump_dom(f"{catalog.url}/datasets/{hostile['id']}/")
    assert page.find_all("script") == [] and page.find_all("img") == []
    assert page.find("h1").text == '<script>document.title="pwned"</script>Communes'
    assert page.find("title").text.startswith('<script>document.title="pwned"</script>')


def test_downloads_chart_geometry() -> None:
    assert downloads_chart({}) is None
    chart = downloads_chart({"2026-02": 0, "2026-01": 10})
    assert chart is not None
    assert [bar.month for bar in chart.bars] == ["2026-01", "2026-02"]
    assert chart.bars[1].height == 0 and chart.bars[0].y + chart.bars[0].height == chart.baseline
    assert chart.bars[0].x + chart.bars[0].width < chart.bars[1].x


@pytest.mark.parametrize(
    ("size", "text"), [(None, "taille inconnue"), (0, "0 o"), (850, "850 o"), (1536, "1,5 Ko"), (5 * 1024**3, "5,0 Go"), (200 * 1024**2, "200 Mo")]
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


def test_screenshot_of_the_dataset_page(
    chromium: Path, catalog: RunningCatalog, published: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    catalog.store.datasets.transform_doc_field(
        published["communes"]["id"], "metrics",
        lambda _old: {"resources_downloads_by_months": {f"2026-{month:02d}": month * 7 % 30 for month in range(1, 13)}},
    )
    shot = browser.screenshot(f"{catalog.url}/datasets/{published['communes']['slug']}/", tmp_path / "dataset.png")
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1280, 1600)
