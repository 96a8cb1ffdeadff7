"""`q` on French queries, as reusers type them: plurals, missing accents, several words, with
filters; the datasets whose title holds the words first. Through the API and the HTML search page,
on SQLite (FTS5) and PostgreSQL (french_unaccent text search): catalog/search.py."""

from __future__ import annotations

from typing import Any

import pytest

from dinum_pipelines.catalog import RunningCatalog
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.catalog.test_pages import card_titles, html

LYON = "Transports en commun de Lyon"
HORAIRES = "Horaires des lignes scolaires"
BORNES = "Bornes de recharge pour véhicules électriques"
RESEAU = "Réseau électrique haute tension"
AIR = "Qualité de l'air"
ECOLES = "Écoles maternelles et élémentaires"
MUSIQUE = "École de musique"


@pytest.fixture
def corpus(api: Api, outsider: Api, publisher: Any) -> None:
    """Seven public datasets (one of them another organization's) and a private one."""
    insee = publisher.organization_id
    for client, title, description, extra in (
        (api, LYON, "Lignes de bus et de tramway, arrêts et horaires.", {}),
        # The word four times in the description: still after the dataset with it in its title.
        (api, HORAIRES, "Les transports scolaires du département : transports du matin, transports du soir, transports adaptés.", {}),
        (api, BORNES, "Points de charge ouverts au public.", {"license": "lov2"}),
        (api, RESEAU, "Lignes électriques exploitées par le gestionnaire du réseau.", {"license": "odc-odbl"}),
        (api, AIR, "Mesures de pollution par station, chaque heure.", {}),
        (outsider, ECOLES, "Annuaire des écoles publiques et privées.", {"tags": ["education"]}),
        (api, MUSIQUE, "Conservatoire municipal : cours et inscriptions.", {"tags": ["culture"]}),
        (api, "Transports confidentiels", "Un brouillon.", {"private": True}),
    ):
        organization = {"organization": "dgfip" if client is outsider else insee}
        client.create_dataset(title=title, description=description, **organization, **extra)


def search(anonymous: Api, **params: Any) -> tuple[list[str], int]:
    response = anonymous.get("/datasets/", params=params)
    assert response.status_code == 200, response.text
    return [dataset["title"] for dataset in response.json()["data"]], response.json()["total"]


@pytest.mark.parametrize("q", ["transport", "transports", "TRANSPORTS", "Transport"])
def test_singular_and_plural_find_each_other_and_the_title_match_comes_first(anonymous: Api, corpus: None, q: str) -> None:
    assert search(anonymous, q=q) == ([LYON, HORAIRES], 2)  # the private one never


@pytest.mark.parametrize("q", ["electrique", "électriques", "ELECTRIQUES", "Électrique"])
def test_accents_and_case_do_not_matter(anonymous: Api, corpus: None, q: str) -> None:
    titles, total = search(anonymous, q=q)
    assert sorted(titles) == sorted([BORNES, RESEAU]) and total == 2


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ecole", [ECOLES, MUSIQUE]),
        ("municipale", [MUSIQUE]),  # the feminine finds the masculine
        ("lignes bus", [LYON]),  # every word, here both in the description
        ("lignes électriques", [RESEAU]),
        ("recharge véhicules électriques", [BORNES]),
        ("pollution de l'air", [AIR]),  # "de", "l'": stop words
        ("piscine", []),
        ("transports piscine", []),  # one word missing: no match
        ("de la du et", []),  # nothing to search for (stop words)
        ("«  »", []),
    ],
)
def test_words_and_phrases(anonymous: Api, corpus: None, q: str, expected: list[str]) -> None:
    titles, total = search(anonymous, q=q)
    assert sorted(titles) == sorted(expected) and total == len(expected)


def test_a_title_match_outranks_a_description_match(anonymous: Api, api: Api, publisher: Any, corpus: None) -> None:
    api.create_dataset(title="Inventaire", description="Horaires, horaires et encore horaires des horaires.",
                       organization=publisher.organization_id)
    assert search(anonymous, q="horaire")[0] == [HORAIRES, "Inventaire", LYON]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "ecoles", "organization": "dgfip"}, [ECOLES]),
        ({"q": "école", "tag": "culture"}, [MUSIQUE]),
        ({"q": "electrique", "license": "lov2"}, [BORNES]),
        ({"q": "transports", "organization": "dgfip"}, []),
        ({"q": "transport", "sort": "title"}, [HORAIRES, LYON]),  # an explicit sort overrides relevance
        ({"q": "transport", "sort": "-created"}, [HORAIRES, LYON]),
    ],
)
def test_filters_and_sorts_combine_with_q(anonymous: Api, corpus: None, params: dict[str, str], expected: list[str]) -> None:
    assert search(anonymous, **params) == (expected, len(expected))


def test_pages_of_ranked_matches_add_up(anonymous: Api, api: Api, publisher: Any) -> None:
    for number in range(7):
        api.create_dataset(title=f"Marché public n°{number}", description="Avis de marchés.", organization=publisher.organization_id)
    for number in range(3):
        api.create_dataset(title=f"Annonce {number}", description="Un marché public.", organization=publisher.organization_id)
    seen: list[str] = []
    page = anonymous.get("/datasets/", params={"q": "marches publics", "page_size": 4}).json()
    while True:
        assert page["total"] == 10 and len(page["data"]) <= 4
        seen += [dataset["title"] for dataset in page["data"]]
        if not page["next_page"]:
            break
        page = anonymous.get(page["next_page"]).json()
    assert page["page"] == 3 and len(seen) == len(set(seen)) == 10
    assert all(title.startswith("Marché") for title in seen[:7])  # the title matches, on the first pages
    past = anonymous.get("/datasets/", params={"q": "marches publics", "page_size": 4, "page": 4}).json()
    assert (past["data"], past["total"]) == ([], 10)


def test_the_search_page_ranks_as_the_api(catalog: RunningCatalog, corpus: None) -> None:
    status, page = html(catalog, "/?q=transports")
    assert status == 200
    assert card_titles(page) == [LYON, HORAIRES]
    assert page.by_id("result-count").text == "2 jeux de données"


def test_the_index_follows_changes_and_deletions(anonymous: Api, api: Api, corpus: None) -> None:
    [lyon] = api.get("/datasets/", params={"q": "lyon"}).json()["data"]
    assert api.put(f"/datasets/{lyon['id']}/", json={"title": "Réseau de bus de Lyon"}).status_code == 200
    assert search(anonymous, q="transports") == ([HORAIRES], 1)  # no longer in the title nor the description
    titles, total = search(anonymous, q="réseaux")
    assert sorted(titles) == sorted([RESEAU, "Réseau de bus de Lyon"]) and total == 2
    assert api.delete(f"/datasets/{lyon['id']}/").status_code == 204
    assert search(anonymous, q="bus") == ([], 0)
