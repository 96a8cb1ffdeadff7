"""Datasets through the HTTP API: the udata v1 behaviours the publisher relies on."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dinum_pipelines.catalog import Publisher
from dinum_pipelines_tests.catalog.conftest import Api


def test_create_sets_server_fields_and_defaults(api: Api, publisher: Publisher) -> None:
    created = api.create_dataset(
        organization={"id": publisher.organization_id},
        license="lov2",
        frequency="fortnighly",  # a legacy id udata maps onto the current one
        tags=["Économie", "entreprises"],
        temporal_coverage={"start": "2020-01-01T00:00:00.000000Z", "end": "2024-12-31"},
        spatial={"zones": ["country:fr"], "granularity": "fr:commune"},
        extras={"source": "insee"},
    )
    assert len(created["id"]) == 24
    assert created["slug"] == "base-sirene"
    assert created["frequency"] == "biweekly"
    assert created["tags"] == ["economie", "entreprises"]
    assert created["temporal_coverage"] == {"start": "2020-01-01", "end": "2024-12-31"}
    assert created["spatial"]["granularity"] == "fr:commune"
    assert created["organization"]["slug"] == "insee"
    assert created["owner"] is None
    assert created["resources"] == []
    assert created["metrics"]["views"] == 0
    assert created["uri"] == api.url(f"/datasets/{created['id']}/")
    assert created["created_at"] == created["last_modified"] == created["last_update"]

    defaults = api.create_dataset(title="Sans licence")
    assert (defaults["license"], defaults["frequency"], defaults["private"]) == ("notspecified", "unknown", False)
    assert defaults["organization"] is None and defaults["owner"]["first_name"] == "Insee"


def test_get_by_id_or_slug(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    for key in (dataset["id"], dataset["slug"]):
        response = anonymous.get(f"/datasets/{key}/")
        assert response.status_code == 200
        assert response.json()["id"] == dataset["id"]
    assert anonymous.get(f"/datasets/{dataset['id']}").status_code == 200  # no trailing slash
    unknown = anonymous.get("/datasets/nope/")
    assert unknown.status_code == 404 and "message" in unknown.json()


def test_slugs_strip_accents_and_stay_unique(api: Api) -> None:
    slugs = [api.create_dataset(title="Élections législatives : résultats")["slug"] for _ in range(3)]
    assert slugs == [
        "elections-legislatives-resultats",
        "elections-legislatives-resultats-1",
        "elections-legislatives-resultats-2",
    ]


def test_put_is_partial_and_bumps_last_modified_only_on_change(api: Api, dataset: dict[str, Any]) -> None:
    path = f"/datasets/{dataset['id']}/"
    time.sleep(0.01)
    same = api.put(path, json={"title": dataset["title"], "id": "ignored", "slug": "ignored"}).json()
    assert same["last_modified"] == dataset["last_modified"]
    assert same["slug"] == dataset["slug"]

    changed = api.put(path, json={"temporal_coverage": "2021-01-01 - 2021-12-31"}).json()
    assert changed["temporal_coverage"] == {"start": "2021-01-01", "end": "2021-12-31"}
    assert changed["title"] == dataset["title"] and changed["description"] == dataset["description"]
    assert changed["last_modified"] > dataset["last_modified"]
    assert changed["last_update"] == dataset["last_update"]  # metadata, not data


def test_put_validates_sent_fields(api: Api, dataset: dict[str, Any]) -> None:
    response = api.put(f"/datasets/{dataset['id']}/", json={"title": "", "license": "gpl"})
    assert response.status_code == 400
    assert response.json()["message"] == "Validation error"
    assert set(response.json()["errors"]) == {"title", "license"}


def test_soft_delete_then_410(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    path = f"/datasets/{dataset['id']}/"
    assert api.delete(path).status_code == 204
    gone = anonymous.get(path)
    assert gone.status_code == 410
    assert gone.json() == {"message": "Dataset has been deleted"}
    assert api.put(path, json={"title": "x"}).status_code == 410
    assert api.get("/datasets/").json()["total"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"description": "sans titre"}, "title"),
        ({"title": "sans description"}, "description"),
        ({"title": "t", "description": "d", "frequency": "sometimes"}, "frequency"),
        ({"title": "t", "description": "d", "tags": ["ok-tag", "x"]}, "tags"),
        ({"title": "t", "description": "d", "temporal_coverage": {"start": "2024-02-01", "end": "2024-01-01"}}, "temporal_coverage"),
        ({"title": "t", "description": "d", "spatial": {"granularity": "planet"}}, "spatial"),
        ({"title": "t", "description": "d", "private": "yes"}, "private"),
    ],
)
def test_create_validation_errors(api: Api, payload: dict[str, Any], field: str) -> None:
    response = api.post("/datasets/", json=payload)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation error"
    assert isinstance(body["errors"][field], list)


def test_create_requires_json_content_type(api: Api) -> None:
    response = api.post("/datasets/", data="title=t&description=d", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "Content-Type" in response.json()["errors"]


def test_organization_must_be_one_of_the_callers(api: Api, outsider: Api, publisher: Publisher) -> None:
    response = outsider.post("/datasets/", json={"title": "t", "description": "d", "organization": publisher.organization_id})
    assert response.status_code == 400
    assert "organization" in response.json()["errors"]


def test_pagination_shape_and_links(api: Api, anonymous: Api) -> None:
    for number in range(5):
        api.create_dataset(title=f"Jeu {number}")
    first = anonymous.get("/datasets/", params={"page_size": 2, "sort": "title"}).json()
    assert set(first) == {"data", "page", "page_size", "total", "next_page", "previous_page"}
    assert (first["page"], first["page_size"], first["total"], first["previous_page"]) == (1, 2, 5, None)
    assert [item["title"] for item in first["data"]] == ["Jeu 0", "Jeu 1"]
    titles = [item["title"] for item in first["data"]]
    page = first
    while page["next_page"]:
        page = anonymous.get(page["next_page"]).json()
        titles += [item["title"] for item in page["data"]]
    assert titles == [f"Jeu {number}" for number in range(5)]
    assert page["page"] == 3 and page["previous_page"] is not None


@pytest.mark.parametrize("params", [{"page": 0}, {"page_size": 0}, {"page": "abc"}, {"sort": "popularity"}])
def test_bad_list_parameters_give_400(anonymous: Api, params: dict[str, Any]) -> None:
    assert anonymous.get("/datasets/", params=params).status_code == 400


def test_list_filters_and_sorts(api: Api, outsider: Api, anonymous: Api, publisher: Publisher) -> None:
    api.create_dataset(title="Résultats des élections", organization=publisher.organization_id, tags=["vote", "politique"])
    api.create_dataset(title="Prix des carburants", description="Relevés quotidiens.", tags=["energie"])
    outsider.create_dataset(title="Impôts locaux", organization="dgfip", tags=["vote"])

    def titles(**params: Any) -> list[str]:
        return [item["title"] for item in anonymous.get("/datasets/", params=params).json()["data"]]

    assert titles(q="ELECTIONS") == ["Résultats des élections"]  # case and accents ignored
    assert titles(q="relevés QUOTIDIENS") == ["Prix des carburants"]
    assert titles(q="100%_") == []  # LIKE wildcards are literal
    assert sorted(titles(tag="vote")) == ["Impôts locaux", "Résultats des élections"]
    assert titles(tag=["vote", "politique"]) == ["Résultats des élections"]
    assert titles(organization="insee") == titles(organization=publisher.organization_id) == ["Résultats des élections"]
    assert titles(organization="unknown") == []
    assert titles(sort="title") == ["Impôts locaux", "Prix des carburants", "Résultats des élections"]
    assert titles(sort="-title") == list(reversed(titles(sort="title")))
    assert titles(sort="-created")[0] == "Impôts locaux"


def test_private_datasets(api: Api, anonymous: Api, outsider: Api, publisher: Publisher) -> None:
    draft = api.create_dataset(title="Brouillon", organization=publisher.organization_id, private=True)
    assert anonymous.get("/datasets/").json()["total"] == 0
    assert anonymous.get(f"/datasets/{draft['id']}/").status_code == 404
    assert outsider.get(f"/datasets/{draft['id']}/").status_code == 404
    assert api.get(f"/datasets/{draft['id']}/").status_code == 200

    org_listing = "/organizations/insee/datasets/"
    assert anonymous.get(org_listing).json()["total"] == 0
    assert [item["id"] for item in api.get(org_listing).json()["data"]] == [draft["id"]]


def test_organization_endpoints(api: Api, anonymous: Api, publisher: Publisher) -> None:
    api.create_dataset(organization=publisher.organization_id)
    org = anonymous.get("/organizations/insee/").json()
    assert org["id"] == publisher.organization_id
    assert org["metrics"]["datasets"] == 1
    assert org["members"][0]["role"] == "editor"
    assert anonymous.get(f"/organizations/{publisher.organization_id}/").json()["slug"] == "insee"
    assert anonymous.get("/organizations/nope/").status_code == 404
    assert anonymous.get("/organizations/nope/datasets/").status_code == 404


def test_reference_lists(anonymous: Api) -> None:
    licenses = anonymous.get("/datasets/licenses/").json()
    assert {"lov2", "notspecified"} <= {item["id"] for item in licenses}
    assert {"id": "daily", "label": "Daily"} in anonymous.get("/datasets/frequencies/").json()
    assert "main" in {item["id"] for item in anonymous.get("/datasets/resource_types/").json()}
    assert "fr:commune" in {item["id"] for item in anonymous.get("/spatial/granularities/").json()}


def test_x_fields_mask(api: Api, dataset: dict[str, Any]) -> None:
    response = api.get("/datasets/", headers={"X-Fields": "data{id,organization{slug}},next_page"})
    assert response.json() == {"data": [{"id": dataset["id"], "organization": {"slug": "insee"}}], "next_page": None}


def test_unknown_route_answers_json(anonymous: Api) -> None:
    response = anonymous.get("/nothing-here/")
    assert response.status_code == 404 and "message" in response.json()


def test_concurrent_publishers_do_not_collide(api: Api, publisher: Publisher) -> None:
    """Parallel writes (as parallel Dagster runs make them) neither fail on SQLite locks nor share a slug."""
    from concurrent.futures import ThreadPoolExecutor

    dataset = api.create_dataset(title="Parallèle", organization=publisher.organization_id)

    def work(number: int) -> tuple[int, int, str]:
        created = api.post("/datasets/", json={"title": "Parallèle", "description": "d"})
        uploaded = api.upload(dataset["id"], f"part-{number}.csv", f"n\n{number}\n".encode())
        return created.status_code, uploaded.status_code, created.json().get("slug", "")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(16)))
    assert {(created, uploaded) for created, uploaded, _ in results} == {(201, 201)}
    assert len({slug for _, _, slug in results} | {dataset["slug"]}) == 17
    assert len(api.get(f"/datasets/{dataset['id']}/").json()["resources"]) == 16
