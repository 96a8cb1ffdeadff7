"""Hostile paging (issue 12): integers out of range are a 400 with udata's JSON body, never a 500,
and `page_size` is capped, on SQLite and PostgreSQL, on the API and on the pages."""

from __future__ import annotations

import pytest
import requests

from dinum_pipelines.catalog.validation import MAX_PAGE, MAX_PAGE_SIZE

HUGE = "99999999999999999999"


@pytest.mark.parametrize("page", [HUGE, "4611686018427387904", str(MAX_PAGE + 1), "-1", "0", "1e3", "１"])
def test_a_page_out_of_range_is_a_400_naming_it(anonymous, dataset, page):
    response = anonymous.get("/datasets/", params={"page": page})
    assert response.status_code == 400, response.text
    assert "page" in response.json()["errors"]


def test_the_last_page_served_is_empty_not_an_error(anonymous, dataset):
    response = anonymous.get("/datasets/", params={"page": MAX_PAGE, "page_size": MAX_PAGE_SIZE})
    assert response.status_code == 200 and response.json()["data"] == []


@pytest.mark.parametrize("size", ["1000000", HUGE, str(MAX_PAGE_SIZE + 1)])
def test_page_size_is_capped(anonymous, dataset, size):
    response = anonymous.get("/datasets/", params={"page_size": size})
    assert response.status_code == 200, response.text
    assert response.json()["page_size"] == MAX_PAGE_SIZE


def test_bounds_hold_on_organization_listings_pages_and_the_metric_api(anonymous, catalog, publisher, dataset):
    org = anonymous.get(f"/organizations/{publisher.organization_id}/").json()
    assert anonymous.get(f"/organizations/{org['id']}/datasets/", params={"page": HUGE}).status_code == 400
    for path in ("/", f"/organizations/{org['slug']}/"):
        page = requests.get(catalog.url + path, params={"page": HUGE}, timeout=10)
        assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    metrics = requests.get(f"{catalog.url}/api/datasets/data/", params={"page": HUGE}, timeout=10)
    assert metrics.status_code == 400 and metrics.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("field", ["title", "description"])
def test_control_characters_in_a_field_are_a_400_naming_it(api, publisher, field):
    payload = {"title": "Base Sirene", "description": "Les entreprises.", "organization": publisher.organization_id}
    response = api.post("/datasets/", json={**payload, field: "Base\x00 Sirene\x07"})
    assert response.status_code == 400 and list(response.json()["errors"]) == [field]


@pytest.mark.parametrize("param", ["q", "tag", "license", "organization", "sort"])
def test_control_characters_in_a_query_are_a_400_naming_it(anonymous, dataset, param):
    response = anonymous.get("/datasets/", params={param: "ab\x00c"})
    assert response.status_code == 400 and list(response.json()["errors"]) == [param]


def test_resources_keep_no_control_character(api, dataset):
    uploaded = api.upload(dataset["id"], "rapport\x00\x01.csv", b"a,b\n1,2\n")
    assert uploaded.status_code == 201 and uploaded.json()["title"] == "rapport.csv"
    renamed = api.put(f"/datasets/{dataset['id']}/resources/{uploaded.json()['id']}/", json={"title": "x\x00y"})
    assert renamed.status_code == 400 and list(renamed.json()["errors"]) == ["title"]


def test_the_search_page_drops_control_characters(catalog, dataset):
    page = requests.get(f"{catalog.url}/", params={"q": "Sirene\x00"}, timeout=10)
    assert page.status_code == 200 and "Base Sirene" in page.text


def test_an_unexpected_error_is_a_json_500_with_a_request_id_in_the_log(catalog, anonymous, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(catalog.store.datasets, "search", broken)  # the page's
    monkeypatch.setattr(catalog.store.datasets, "search_documents", broken)  # the API's
    with caplog.at_level("ERROR", logger="dinum_pipelines.catalog"):
        response = anonymous.get("/datasets/", params={"q": "x"})
        page = requests.get(f"{catalog.url}/", params={"q": "x"}, timeout=10)
    assert response.status_code == 500 and response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["message"] == "Internal server error" and "fire" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]
    assert page.status_code == 500 and "text/html" in page.headers["content-type"] and page.headers["x-request-id"] in page.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert body["request_id"] in logged and page.headers["x-request-id"] in logged


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"extras": {"source": "insee\x00"}}, "extras"),
        ({"extras": {"clé\x01": "v"}}, "extras"),
        ({"spatial": {"zones": ["country:fr\x00"]}}, "spatial"),
        ({"tags": ["ok", "a\x1fb"]}, "tags"),
    ],
)
def test_control_characters_anywhere_in_a_body_are_a_400_naming_the_field(api, dataset, body, field):
    response = api.put(f"/datasets/{dataset['id']}/", json=body)
    assert response.status_code == 400 and list(response.json()["errors"]) == [field], response.text


def test_a_lone_surrogate_is_a_400_not_a_500(api, dataset):
    # Python's json reads "\ud800" into a string no database encoding can store.
    raw = b'{"description": "caf\\ud800"}'
    response = api.put(f"/datasets/{dataset['id']}/", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["description"], response.text
    extras = api.put(f"/api/2/datasets/{dataset['id']}/extras/", data=b'{"k": "\\udfff"}', headers={"Content-Type": "application/json"})
    assert extras.status_code == 400


@pytest.mark.parametrize("path", ["/api/1/datasets/abc%00/", "/api/1/organizations/in%00see/", "/api/1/datasets/r/%01", "/datasets/a%00b/"])
def test_a_control_character_in_the_path_is_a_400(catalog, dataset, path):
    response = requests.get(f"{catalog.url}{path}", timeout=10)
    assert response.status_code == 400, response.text
    if path.startswith("/api/"):
        assert response.json()["errors"] == {"path": ["The path cannot contain control characters (NUL and the like)."]}
    else:
        assert response.headers["content-type"].startswith("text/html")
