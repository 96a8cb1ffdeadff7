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
