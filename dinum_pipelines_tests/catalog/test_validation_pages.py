"""`/valider/` and a dataset's conformance page, on a real catalog on loopback; the report as
headless Chromium renders it."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, bootstrap_publisher, serve_in_thread
from dinum_pipelines.catalog.validation_pages import InputError, refuse_private_address
from dinum_pipelines.lib.conformance.report import row_ranges
from dinum_pipelines.lib.publish.publishing import ROLE_EXTRA
from dinum_pipelines_tests import browser
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.conformance import real_pairs

SCHEMA = {
    "name": "subventions",
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "nomAttribuant", "type": "string", "constraints": {"required": True}},
        {"name": "montant", "type": "number", "constraints": {"minimum": 0}},
        {"name": "date", "type": "date"},
    ],
}
CSV = "id,NomAttribuant,montant,date,extra\n1,Ville,-5,2024-01-31,x\n1,Ville,3,31/01/2024,y\n\n2,,4,2024-02-01,z\n"


@pytest.fixture
def catalog(tmp_path):
    settings = CatalogSettings.in_directory(tmp_path / "catalog")
    settings.schemas_dir.mkdir(parents=True)
    (settings.schemas_dir / "subventions.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    with serve_in_thread(settings) as running:
        yield running


def groups(page: browser.Element) -> dict[tuple[str, str], int]:
    return {
        (article.attrs["data-field"], article.attrs["data-code"]): int(article.attrs["data-count"])
        for article in page.find_all("article", class_="fault-group")
    }


EXPECTED = {
    ("", "extra-label"): 1,
    ("nomAttribuant", "label-case-or-accents"): 1,
    ("montant", "constraint-error"): 1,
    ("date", "type-error"): 1,
    ("", "blank-row"): 1,
    ("nomAttribuant", "constraint-error"): 1,
    ("id", "unique-error"): 1,
}


def test_the_form_and_a_posted_file_with_an_uploaded_schema(catalog):
    form = requests.get(f"{catalog.url}/valider/", timeout=10)
    assert form.status_code == 200 and 'name="file"' in form.text and "subventions.json" in form.text
    response = requests.post(
        f"{catalog.url}/valider/",
        files={"file": ("subventions.csv", CSV.encode()), "schema_file": ("schema.json", json.dumps(SCHEMA).encode())},
        timeout=30,
    )
    assert response.status_code == 200
    assert groups(browser.parse_html(response.text)) == EXPECTED


def test_a_catalog_schema_and_every_fault_of_a_real_file(catalog):
    pair = next(pair for pair in real_pairs.PAIRS if pair.data.name == "registre_entrees__StEtienne.csv")
    schema_name = "registre.json"
    (catalog.settings.schemas_dir / schema_name).write_bytes(pair.schema.read_bytes())
    response = requests.post(
        f"{catalog.url}/valider/",
        files={"file": (pair.data.name, pair.data.read_bytes())},
        data={"schema": schema_name},
        timeout=120,
    )
    page = browser.parse_html(response.text)
    report = page.find("section", id="report")
    assert report.attrs["data-valid"] == "false"
    assert int(report.attrs["data-errors"]) == len(real_pairs.ours(pair).faults)
    assert sum(groups(page).values()) == int(report.attrs["data-errors"])  # every fault counted, none capped


@pytest.mark.parametrize(
    ("data", "files", "message"),
    [
        ({}, {"schema_file": ("s.json", b"{}")}, "Choisissez un fichier"),
        ({}, {"file": ("f.csv", b"a\n1\n")}, "Choisissez un schéma"),
        ({"schema": "../../etc/passwd"}, {"file": ("f.csv", b"a\n1\n")}, "n'est pas proposé"),
        ({}, {"file": ("f.csv", b"a\n1\n"), "schema_file": ("s.json", b"<html>")}, "not valid JSON"),
        ({"url": "file:///etc/passwd", "schema": "subventions.json"}, {}, "doit commencer par http"),
    ],
)
def test_inputs_it_cannot_use_get_a_400_saying_why(catalog, data, files, message):
    response = requests.post(f"{catalog.url}/valider/", data=data, files=files or None, timeout=10)
    assert response.status_code == 400
    error = browser.parse_html(response.text).find("p", id="validate-error")
    assert message in error.text


def test_a_validata_style_link_rendered_by_chromium(catalog, chromium, tmp_path):
    publisher = bootstrap_publisher(catalog.store, org_slug="ville", org_name="Ville", email="bot@ville.fr", name="Bot")
    api = Api(catalog, publisher.token)
    dataset = api.create_dataset(title="Subventions", organization=publisher.organization_id)
    resource = api.upload(dataset["id"], "subventions.csv", CSV.encode()).json()
    link = f"{catalog.url}/valider/?url={resource['url']}&schema=subventions.json"
    page = browser.dump_dom(link)
    assert groups(page) == EXPECTED
    assert page.find("code", id="report-source").text == resource["url"]
    rows = {
        article.attrs["data-code"]: article.find_all("span", class_="rows")[0].text
        for article in page.find_all("article", class_="fault-group")
        if article.find_all("span", class_="rows")
    }
    assert rows["blank-row"] == "4" and rows["unique-error"] == "3"
    browser.screenshot(link, tmp_path / "valider.png")


def test_a_datasets_conformance_page_and_its_link(catalog, chromium):
    publisher = bootstrap_publisher(catalog.store, org_slug="ville", org_name="Ville", email="bot@ville.fr", name="Bot")
    api = Api(catalog, publisher.token)
    dataset = api.create_dataset(title="Subventions", organization=publisher.organization_id, description="x" * 120)
    report = {
        "valid": False, "source": "https://ville.example/subventions.csv", "schema": "subventions", "rows": 3,
        "error_count": 1, "counts": {"type-error": 1}, "schema_warnings": [], "detected": {},
        "errors": [{"code": "type-error", "field": "date", "row": 3, "value": "31/01/2024", "message": "La valeur « 31/01/2024 »…"}],
    }
    data = api.upload(dataset["id"], "subventions.csv", b"id\n1\n").json()
    extras = {ROLE_EXTRA: "csv", "validation-report:validator": "dinum-validate", "validation-report:valid_resource": False, "validation-report:nb_errors": 1}
    assert api.put(f"/datasets/{dataset['id']}/resources/{data['id']}/", json={"extras": extras}).status_code == 200
    document = api.upload(dataset["id"], "conformance.json", json.dumps(report).encode()).json()
    assert api.put(f"/datasets/{dataset['id']}/resources/{document['id']}/", json={"extras": {ROLE_EXTRA: "conformance"}}).status_code == 200
    page = browser.dump_dom(f"{catalog.url}/datasets/{dataset['slug']}/")
    link = page.find("a", class_="conformance-link")
    assert link.attrs["href"] == f"/datasets/{dataset['slug']}/conformite/"
    report_page = browser.dump_dom(f"{catalog.url}{link.attrs['href']}")
    assert groups(report_page) == {("date", "type-error"): 1}
    missing = requests.get(f"{catalog.url}/datasets/inconnu/conformite/", timeout=10)
    assert missing.status_code == 404


def test_row_ranges():
    assert row_ranges([9, 2, 3, 4, 4]) == "2-4, 9" and row_ranges([]) == ""


def test_a_deployed_catalog_does_not_fetch_from_its_own_network(tmp_path):
    settings = dataclasses.replace(CatalogSettings.in_directory(tmp_path / "catalog"), fetch_private_urls=False)
    with serve_in_thread(settings) as running:
        linked = requests.post(
            f"{running.url}/valider/",
            data={"url": f"{running.url}/api/1/datasets/", "schema_url": "http://10.1.2.3/schema.json"},
            timeout=10,
        )
        assert linked.status_code == 400 and "réseau privé" in browser.parse_html(linked.text).find("p", id="validate-error").text
        uploaded = requests.post(
            f"{running.url}/valider/",
            files={"file": ("f.csv", CSV.encode()), "schema_file": ("s.json", json.dumps(SCHEMA).encode())},
            timeout=30,
        )
        assert uploaded.status_code == 200  # uploads need no fetching


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://[::1]/x", "http://10.0.0.1/x", "http://192.168.1.1/x", "http://169.254.169.254/latest"])
def test_private_addresses_are_refused(url):
    with pytest.raises(InputError, match="réseau privé"):
        refuse_private_address(url)


def test_public_addresses_are_allowed():
    refuse_private_address("http://93.184.216.34/data.csv")  # a literal address: no DNS lookup
