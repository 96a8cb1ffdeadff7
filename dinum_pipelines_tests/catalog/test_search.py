"""GET /api/1/datasets/ as udata answers it: each filter, each sort, the pager and its errors,
on SQLite and on PostgreSQL (the `catalog` fixture runs every test on both)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog, bootstrap_publisher
from dinum_pipelines.catalog.metrics_api import MetricsStore
from dinum_pipelines.lib.metrics.schema import METRIC_MODELS
from dinum_pipelines_tests.catalog.conftest import Api


@pytest.fixture
def published(api: Api, publisher: Publisher, catalog: RunningCatalog) -> dict[str, dict[str, Any]]:
    """Five datasets differing in every filtered field; created in this order (oldest first)."""
    other = bootstrap_publisher(catalog.store, org_slug="dgfip", org_name="DGFiP", email="bot@dgfip.fr", name="DGFiP Bot")
    other_api = Api(catalog, other.token)
    insee = publisher.organization_id
    specs = {
        "communes": (api, {"title": "Communes de France", "license": "lov2", "tags": ["geo", "communes"], "organization": insee}, "communes.csv"),
        "elus": (api, {"title": "Répertoire des élus", "license": "lov2", "tags": ["elus"], "organization": insee}, "elus.xlsx"),
        "budget": (other_api, {"title": "Budget de l'État", "license": "odc-odbl", "tags": ["finances", "geo"], "organization": other.organization_id}, "budget.CSV"),
        "adresses": (api, {"title": "Adresses", "description": "Base Adresse Nationale, avec les communes.", "license": "odc-odbl", "tags": ["geo"], "organization": insee}, "adresses.parquet"),
        "brouillon": (api, {"title": "Brouillon", "private": True, "tags": ["geo"], "organization": insee}, "brouillon.csv"),
    }
    created = {}
    for name, (client, fields, filename) in specs.items():
        dataset = client.create_dataset(**fields)
        assert client.upload(dataset["id"], filename, b"a,b\n1,2\n").status_code == 201
        created[name] = dataset
    return created


def names(response_json: dict[str, Any], published: dict[str, dict[str, Any]]) -> list[str]:
    by_id = {dataset["id"]: name for name, dataset in published.items()}
    return [by_id[dataset["id"]] for dataset in response_json["data"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["adresses", "budget", "elus", "communes"]),  # newest first; private ones hidden
        ("q=COMMUNES", ["communes", "adresses"]),  # title or description, case-insensitive; the title match first
        ("q=etat", ["budget"]),  # accents folded
        ("q=nothing-like-this", []),
        ("organization=dgfip", ["budget"]),  # by slug
        ("organization=unknown-org", []),
        ("tag=geo", ["adresses", "budget", "communes"]),
        ("tag=geo&tag=communes", ["communes"]),  # repeated: all of them
        ("tag=geo&tag=elus", []),
        ("license=lov2", ["elus", "communes"]),
        ("license=odc-odbl&tag=geo", ["adresses", "budget"]),
        ("format=csv", ["budget", "communes"]),  # budget.CSV counts: formats are lower-cased
        ("format=CSV", ["budget", "communes"]),
        ("format=parquet&organization=insee", ["adresses"]),
        ("format=pdf", []),
    ],
)
def test_each_filter(anonymous: Api, published: dict[str, dict[str, Any]], query: str, expected: list[str]) -> None:
    response = anonymous.get(f"/datasets/?{query}")
    assert response.status_code == 200, response.text
    assert names(response.json(), published) == expected
    assert response.json()["total"] == len(expected)


def test_organization_filter_takes_an_id_too(anonymous: Api, publisher: Publisher, published: dict[str, dict[str, Any]]) -> None:
    response = anonymous.get("/datasets/", params={"organization": publisher.organization_id, "sort": "title"})
    assert names(response.json(), published) == ["adresses", "communes", "elus"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("title", ["adresses", "budget", "communes", "elus"]),
        ("-title", ["elus", "communes", "budget", "adresses"]),
        ("created", ["communes", "elus", "budget", "adresses"]),
        ("-created", ["adresses", "budget", "elus", "communes"]),
    ],
)
def test_sort_by_columns(anonymous: Api, published: dict[str, dict[str, Any]], sort: str, expected: list[str]) -> None:
    assert names(anonymous.get(f"/datasets/?sort={sort}").json(), published) == expected


def test_sort_by_last_update_follows_resource_changes(api: Api, anonymous: Api, published: dict[str, dict[str, Any]]) -> None:
    assert api.upload(published["communes"]["id"], "communes-2.csv", b"a,b\n3,4\n").status_code == 201
    ordered = names(anonymous.get("/datasets/?sort=-last_update").json(), published)
    assert ordered == ["communes", "adresses", "budget", "elus"]
    assert names(anonymous.get("/datasets/?sort=last_update").json(), published) == ordered[::-1]


def test_sort_by_views_reads_the_pushed_metrics(catalog: RunningCatalog, anonymous: Api, published: dict[str, dict[str, Any]]) -> None:
    for name, views in {"elus": 40, "budget": 7, "communes": 300}.items():  # adresses: no metrics yet, counts as 0
        catalog.store.datasets.transform_doc_field(published[name]["id"], "metrics", lambda _current, v=views: {"views": v})
    assert names(anonymous.get("/datasets/?sort=-views").json(), published) == ["communes", "elus", "budget", "adresses"]
    assert names(anonymous.get("/datasets/?sort=views").json(), published) == ["adresses", "budget", "elus", "communes"]
    # udata also accepts followers and reuses; nobody follows or reuses here, so ties break by id.
    for sort in ("followers", "-reuses"):
        assert anonymous.get(f"/datasets/?sort={sort}").json()["total"] == 4


@pytest.mark.parametrize("sort", ["size", "-", "created_at", "-popularity"])
def test_unknown_sort_is_a_validation_error(anonymous: Api, sort: str) -> None:
    response = anonymous.get("/datasets/", params={"sort": sort})
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation error" and list(body["errors"]) == ["sort"]


def test_pager_links_keep_every_filter(anonymous: Api, published: dict[str, dict[str, Any]]) -> None:
    first = anonymous.get("/datasets/?tag=geo&tag=communes&page_size=1&format=csv").json()
    assert (first["page"], first["page_size"], first["total"], first["previous_page"], first["next_page"]) == (1, 1, 1, None, None)

    first = anonymous.get("/datasets/?tag=geo&license=odc-odbl&page_size=1&sort=title").json()
    assert set(first) == {"data", "page", "page_size", "total", "next_page", "previous_page"}
    assert (first["total"], first["previous_page"]) == (2, None)
    assert parse_qs(urlsplit(first["next_page"]).query) == {
        "tag": ["geo"], "license": ["odc-odbl"], "page_size": ["1"], "sort": ["title"], "page": ["2"],
    }
    second = anonymous.get(first["next_page"]).json()
    assert names(first, published) + names(second, published) == ["adresses", "budget"]
    assert second["next_page"] is None
    assert anonymous.get(second["previous_page"]).json() == first


def test_a_page_past_the_end_is_empty_not_an_error(anonymous: Api, published: dict[str, dict[str, Any]]) -> None:
    response = anonymous.get("/datasets/?page=9&page_size=2")
    assert response.status_code == 200
    assert (response.json()["data"], response.json()["total"], response.json()["next_page"]) == ([], 4, None)


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=two", "page_size=0"])
def test_page_and_page_size_below_one_are_rejected(anonymous: Api, query: str) -> None:
    response = anonymous.get(f"/datasets/?{query}")
    assert response.status_code == 400
    field = query.split("=")[0]
    assert response.json()["message"] == "Validation error" and list(response.json()["errors"]) == [field]


# `q` matches words, whatever their case, accents and plural, every word of it, ranked by
# relevance (a title match first); French queries in depth: test_search_relevance.py.


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("commune", ["communes", "adresses"]),  # the plural found, the title's match first
        ("COMMUNES.", ["communes", "adresses"]),
        ("de France", ["communes"]),  # "de" is a stop word
        ("l'état", ["budget"]),  # punctuation and accents
        ("ETAT", ["budget"]),
        ("adresse communes", ["adresses"]),  # every word, in the title or the description
        ("ommun", []),  # parts of words do not match
        ("%", []),
        ("commu_es", []),
        ('"communes"', ["communes", "adresses"]),
    ],
)
def test_q_matches_words(anonymous: Api, published: dict[str, dict[str, Any]], q: str, expected: list[str]) -> None:
    response = anonymous.get("/datasets/", params={"q": q})
    assert response.status_code == 200, response.text
    assert names(response.json(), published) == expected
    assert response.json()["total"] == len(expected)


def test_q_follows_title_and_description_changes_and_deletions(api: Api, anonymous: Api, published: dict[str, dict[str, Any]]) -> None:
    communes = published["communes"]["id"]
    assert api.put(f"/datasets/{communes}/", json={"title": "Villes et villages"}).status_code == 200
    assert names(anonymous.get("/datasets/?q=villages").json(), published) == ["communes"]
    assert names(anonymous.get("/datasets/?q=de france").json(), published) == []
    assert api.put(f"/datasets/{communes}/", json={"description": "Toutes les communes de France."}).status_code == 200
    assert names(anonymous.get("/datasets/?q=de france").json(), published) == ["communes"]
    assert api.delete(f"/datasets/{published['adresses']['id']}/").status_code == 204
    assert names(anonymous.get("/datasets/?q=communes").json(), published) == ["communes"]


def test_sort_by_views_follows_a_metrics_push(catalog: RunningCatalog, anonymous: Api, published: dict[str, dict[str, Any]]) -> None:
    """The pipeline's push rewrites `doc.metrics` (metrics_api.py); the indexed `views` copy follows."""
    nothing = {"default": {}, "by_id": {}}
    by_id = {published[name]["id"]: {"views": views} for name, views in {"budget": 5, "adresses": 90}.items()}
    objects = {"datasets": {"default": {"views": 0}, "by_id": by_id}, "resources": nothing, "organizations": nothing}
    MetricsStore(catalog.store.db).replace({name: [] for name in METRIC_MODELS}, objects)
    assert names(anonymous.get("/datasets/?sort=-views").json(), published)[:2] == ["adresses", "budget"]  # then 0 views, ties by id
    assert anonymous.get("/datasets/?sort=-views").json()["data"][0]["metrics"]["views"] == 90


@pytest.mark.parametrize(("fmt", "expected"), [("geo_json", ["underscore"]), ("geo%json", ["percent"]), ("geo/json", ["slash"]), ("geo_", [])])
def test_a_format_is_matched_whole_and_literally_with_q_and_without(api: Api, anonymous: Api, publisher: Publisher, fmt: str, expected: list[str]) -> None:
    """A format filter compares the whole value, its characters literal: with q it is read from
    the words' rows through LIKE (search.format_pattern), where `_` and `%` are wildcards."""
    published = {}
    for name, value in (("underscore", "geo_json"), ("percent", "geo%json"), ("slash", "geo/json"), ("plain", "geoxjson")):
        dataset = api.create_dataset(title=f"Carte {name}", organization=publisher.organization_id)
        response = api.post(f"/datasets/{dataset['id']}/resources/", json={"title": name, "url": "https://example.org/map", "filetype": "remote", "format": value})
        assert response.status_code == 201, response.text
        published[name] = dataset
    for query in (f"format={quote(fmt)}", f"q=carte&format={quote(fmt)}"):
        response = anonymous.get(f"/datasets/?{query}")
        assert response.status_code == 200, response.text
        assert sorted(names(response.json(), published)) == expected, query
