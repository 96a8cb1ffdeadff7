"""`q`'s ranking against a reference written here from the rules alone (catalog/search.py): the
datasets holding every word, those whose title holds every word first, then by the sum of each
word's weight times its inverse document frequency, then the newest. On a corpus of 300 datasets
from a small vocabulary (many matches, many ties), some private, deleted, restored or renamed, on
both backends; one-word searches (read from the ranked index) and the others (scored per match)
must both agree with it, page by page."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from dinum_pipelines.catalog import CatalogSettings, CatalogStore, bootstrap_publisher
from dinum_pipelines.catalog import listing
from dinum_pipelines.catalog.listing import DatasetQuery
from dinum_pipelines.catalog.search import listed_counts, term_rows, terms
from dinum_pipelines_tests.catalog.conftest import BACKENDS, create_postgres_database, drop_postgres_database, settings_for

VOCABULARY = ["transports", "écoles", "communes", "budget", "eau", "énergie", "électriques", "santé", "routes", "vélos"]
FILLER = ["données", "liste", "fichier", "annuel", "région", "carte"]
FORMATS = ["csv", "json", "parquet"]
TAGS = ("geo", "transport", "rare")  # held by many datasets, fewer, and fewer than the unlisted ones


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CatalogStore, dict[str, dict[str, Any]]]]:
    """Built once per backend for the module's tests, which only read it; on PostgreSQL in a
    database of its own (the session's is emptied by each test that takes it)."""
    home = tmp_path_factory.mktemp("ranking")
    if request.param == "sqlite":
        settings, dropped = settings_for("sqlite", home, request), None
    else:
        server_url, database_url = create_postgres_database("dinum_ranking")
        settings, dropped = CatalogSettings(database_url, home / "files"), (server_url, database_url)
    try:
        yield from _corpus(settings)
    finally:
        if dropped:
            drop_postgres_database(*dropped)


def _corpus(settings: CatalogSettings) -> Iterator[tuple[CatalogStore, dict[str, dict[str, Any]]]]:
    rng = random.Random(13)
    with CatalogStore(settings) as store:
        publisher = bootstrap_publisher(store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Bot")
        other = bootstrap_publisher(store, org_slug="dgfip", org_name="DGFiP", email="bot@dgfip.fr", name="Bot")
        state: dict[str, dict[str, Any]] = {}
        for _ in range(300):
            title = " ".join(rng.choices(VOCABULARY + FILLER, k=rng.randint(1, 4)))
            description = " ".join(rng.choices(VOCABULARY + FILLER * 3, k=rng.randint(0, 30)))
            organization = rng.choice((publisher, other)).organization_id
            tags = sorted(set(rng.choices(TAGS, weights=(60, 30, 3), k=2)))
            fields = {"title": title, "description": description, "private": rng.random() < 0.1,
                      "license": rng.choice(("lov2", "odc-odbl")), "tags": tags}
            dataset = store.datasets.create(fields, owner_id=None, organization_id=organization)
            formats = rng.sample(FORMATS, rng.randint(0, 2))
            for fmt in formats:
                store.datasets.add_resource(dataset["id"], {"title": fmt, "url": f"https://example.org/x.{fmt}", "format": fmt.upper()})
            state[dataset["id"]] = {
                **fields, "organization": "insee" if organization == publisher.organization_id else "dgfip", "deleted": False, "formats": set(formats),
            }
        ids = list(state)
        for dataset_id in rng.sample(ids, 40):  # a resource's format changed, or the resource deleted; a licence changed
            resources = store.datasets.require(dataset_id)["resources"]
            if resources and rng.random() < 0.5:
                fmt = rng.choice(FORMATS)
                store.datasets.update_resource(resources[0]["id"], {"format": fmt})
                state[dataset_id]["formats"] = {fmt, *(resource["format"].lower() for resource in resources[1:])}
            elif resources:
                store.datasets.delete_resource(resources[0]["id"])
                state[dataset_id]["formats"] = {resource["format"].lower() for resource in resources[1:]}
            else:
                store.datasets.update(dataset_id, {"license": "cc-by"})
                state[dataset_id]["license"] = "cc-by"
        for dataset_id in rng.sample(ids, 30):  # deleted, a third of them restored
            store.datasets.soft_delete(dataset_id)
            state[dataset_id]["deleted"] = True
        for dataset_id in [i for i in ids if state[i]["deleted"]][:10]:
            store.datasets.update(dataset_id, {}, restore=True)
            state[dataset_id]["deleted"] = False
        for dataset_id in rng.sample(ids, 30):  # made public or private, renamed
            changes = {"private": not state[dataset_id]["private"]} if rng.random() < 0.5 else {"title": rng.choice(VOCABULARY)}
            store.datasets.update(dataset_id, changes)
            state[dataset_id].update(changes)
        yield store, state


def reference_listed(state: dict[str, dict[str, Any]], *, include_private: bool = False, **filters: str) -> dict[str, dict[str, Any]]:
    """The live datasets (public ones, or all with `include_private`) that every filter keeps."""
    def kept(dataset: dict[str, Any], name: str, value: str) -> bool:
        return value in dataset["formats"] if name == "format" else value in dataset["tags"] if name == "tags" else dataset[name] == value

    return {
        i: d for i, d in state.items()
        if not d["deleted"] and (include_private or not d["private"]) and all(kept(d, name, value) for name, value in filters.items())
    }


def query_of(store: CatalogStore, filters: dict[str, Any]) -> dict[str, Any]:
    """`filters` as DatasetQuery's fields (an organization by its id, tags as a tuple)."""
    return {
        "organization_id" if name == "organization" else name: (
            store.accounts.organization(value)["id"] if name == "organization" else (value,) if name == "tags" else value
        )
        for name, value in filters.items()
    }


def reference(state: dict[str, dict[str, Any]], q: str, *, include_private: bool = False, **filters: str) -> list[str]:
    """Every matching id, in rank order, from the datasets' texts alone."""
    listed = reference_listed(state, include_private=include_private, **filters)
    rows = {i: {row["term"]: row for row in term_rows(i, d["title"], d["description"], listed=True)} for i, d in state.items()}
    words = list(dict.fromkeys(terms(q)))
    public_count = {w: sum(1 for i, d in state.items() if w in rows[i] and not d["deleted"] and not d["private"]) for w in words}
    if len(words) > 1:  # the rarest first, as the query adds the weights
        total = sum(public_count.values())
        idf = {w: math.log(1 + (total - n + 0.5) / (n + 0.5)) for w, n in public_count.items()}
        words.sort(key=lambda w: public_count[w])
    matches = [i for i in listed if all(w in rows[i] for w in words)]

    def rank(i: str) -> tuple[Any, ...]:
        hits = [rows[i][w] for w in words]
        score = hits[0]["weight"] if len(words) == 1 else sum((hit["weight"] * idf[w] for w, hit in zip(words, hits)), 0.0)
        return (all(hit["in_title"] for hit in hits), score, i)

    return sorted(matches, key=rank, reverse=True)


@pytest.mark.parametrize(
    ("q", "filters"),
    [
        ("transport", {}),  # one word: the ranked index alone
        ("Écoles", {}),
        ("communes eau", {}),  # two words: scored per match
        ("vélo electrique budget", {}),
        ("transports", {"license": "lov2"}),  # filters: read on the words' rows (search.set_filters)
        ("transport", {"format": "csv"}),
        ("communes", {"organization": "insee", "license": "odc-odbl"}),
        ("eau", {"format": "json", "tags": "transport"}),  # a tag: looked up for each match
        ("communes eau", {"organization": "dgfip"}),
        ("sante", {"include_private": True}),  # private ones too (a key's listing)
        ("ecoles", {"include_private": True, "format": "csv"}),
    ],
)
def test_search_ranks_as_the_reference_page_by_page(corpus: tuple[CatalogStore, dict[str, dict[str, Any]]], q: str, filters: dict[str, Any]) -> None:
    store, state = corpus
    expected = reference(state, q, **filters)
    assert len(expected) > 10  # several pages, ties included
    query = query_of(store, filters)
    for read in (store.datasets.search, store.datasets.search_documents):  # with their documents: the page's order kept
        seen: list[str] = []
        for page in range(1, len(expected) // 7 + 3):
            items, total = read(DatasetQuery(q=q, page=page, page_size=7, **query))
            assert total == len(expected)
            seen += item_ids(items)
        assert seen == expected


def item_ids(items: list[Any]) -> list[str]:
    """The ids of a page's datasets, records or stored documents (Datasets.search_documents)."""
    return [json.loads(item)["id"] if isinstance(item, str) else item["id"] for item in items]


def test_each_word_is_counted_among_the_listed_datasets(corpus: tuple[CatalogStore, dict[str, dict[str, Any]]]) -> None:
    """The counts the writes keep (search.term_counts) against the datasets' states, after
    creations, new titles, deletions, restorations and datasets made private or public."""
    store, state = corpus
    listed_terms = [
        term for d in state.values() if not d["deleted"] and not d["private"] for term in set(terms(d["title"]) + terms(d["description"]))
    ]
    expected = Counter(listed_terms)
    every_term = {term for d in state.values() for term in terms(d["title"]) + terms(d["description"])}
    with store.db.read() as conn:
        assert listed_counts(conn, sorted(every_term)) == {term: expected[term] for term in every_term}


@pytest.mark.parametrize(
    "filters",
    [
        {},  # the whole public listing
        {"organization": "insee"},
        {"license": "odc-odbl"},
        {"format": "json", "license": "lov2"},
        {"tags": "transport", "organization": "dgfip"},
        {"include_private": True, "format": "csv"},  # a key's listing
    ],
)
def test_a_listing_without_q_counts_every_page_as_the_reference(
    corpus: tuple[CatalogStore, dict[str, dict[str, Any]]], filters: dict[str, Any]
) -> None:
    """Its total comes with its page (listing._page_and_total), and is counted apart past the
    last page, where no row carries it: the same on every page, the newest first."""
    store, state = corpus
    filters = dict(filters)  # the parameter is shared by both backends
    include_private = filters.pop("include_private", False)
    expected = sorted(reference_listed(state, include_private=include_private, **filters), key=lambda i: (store.datasets.require(i)["created_at"], i), reverse=True)
    assert len(expected) > 10
    query = query_of(store, filters)
    for read in (store.datasets.search, store.datasets.search_documents):
        seen: list[str] = []
        for page in range(1, len(expected) // 7 + 3):  # the last one past the end
            items, total = read(DatasetQuery(page=page, page_size=7, include_private=include_private, **query))
            assert total == len(expected), page
            seen += item_ids(items)
        assert seen == expected


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("read_in_order_from", [1, 10**9])  # each row checked in the listing's order, or the members listed first
def test_a_tag_alone_counts_and_pages_its_public_datasets(
    corpus: tuple[CatalogStore, dict[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch, tag: str, read_in_order_from: int
) -> None:
    """A tag alone is counted from its own index, less its unlisted datasets when these are fewer
    (listing.public_members), or each member looked up; both against the datasets' states."""
    monkeypatch.setattr(listing, "_MEMBERS_READ_IN_ORDER", read_in_order_from)
    store, state = corpus
    public = [i for i, d in state.items() if tag in d["tags"] and not d["deleted"] and not d["private"]]
    expected = sorted(public, key=lambda i: (store.datasets.require(i)["created_at"], i), reverse=True)  # the newest first
    unlisted = sum(1 for d in state.values() if d["deleted"] or d["private"])
    members = sum(1 for d in state.values() if tag in d["tags"])
    assert (members > unlisted) == (tag != "rare")  # both ways of counting are taken
    for read in (store.datasets.search, store.datasets.search_documents):
        seen: list[str] = []
        for page in range(1, len(expected) // 9 + 2):
            items, total = read(DatasetQuery(tags=(tag,), page=page, page_size=9))
            assert total == len(expected)
            seen += item_ids(items)
        assert seen == expected
