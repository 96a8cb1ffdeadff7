"""Anonymous listings and datasets come from a per-process cache that any write, by any process, invalidates."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text

from dinum_pipelines.catalog import CatalogStore, RunningCatalog, bootstrap_publisher, serve_in_thread
from dinum_pipelines.catalog.app import COMPUTING_THREADS
from dinum_pipelines.catalog.db import Database, data_version
from dinum_pipelines.catalog.events import DATASET_VIEW
from dinum_pipelines.catalog.response_cache import CachedAnswer, ResponseCache, SharedAnswers, Usage
from dinum_pipelines_tests.catalog.conftest import Api


@pytest.fixture
def searches(catalog, monkeypatch):
    """How many times the database was asked for a listing."""
    calls = []
    original = catalog.store.datasets.search_documents

    def counted(query):
        calls.append(query)
        return original(query)

    monkeypatch.setattr(catalog.store.datasets, "search_documents", counted)
    return calls


def titles(api: Api, path: str = "/datasets/?sort=title") -> list[str]:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return [dataset["title"] for dataset in response.json()["data"]]


def test_a_repeated_listing_is_served_from_the_cache_until_something_is_written(api, anonymous, publisher, searches):
    first = api.create_dataset(title="Alpha", organization=publisher.organization_id)
    assert titles(anonymous) == ["Alpha"] and len(searches) == 1
    assert titles(anonymous) == ["Alpha"] and len(searches) == 1  # cached
    assert titles(anonymous, "/datasets/?sort=-title") == ["Alpha"] and len(searches) == 2  # another URL

    api.create_dataset(title="Beta", organization=publisher.organization_id)
    assert titles(anonymous) == ["Alpha", "Beta"]
    assert api.put(f"/datasets/{first['id']}/", json={"title": "Gamma"}).status_code == 200
    assert titles(anonymous) == ["Beta", "Gamma"]
    assert api.delete(f"/datasets/{first['id']}/").status_code == 204
    assert titles(anonymous) == ["Beta"]


def test_views_do_not_invalidate_but_a_write_from_another_process_does(catalog, api, anonymous, publisher, searches):
    dataset = api.create_dataset(title="Alpha", organization=publisher.organization_id)
    titles(anonymous)
    for _ in range(3):
        assert anonymous.get(f"/datasets/{dataset['id']}/").status_code == 200  # each records a view
    catalog.store.events.list()  # the views are written
    titles(anonymous)
    assert len(searches) == 1

    # Another catalog process on the same database (as `serve --workers 2`) renames the dataset:
    # this process sees it within one poll of the data version.
    other = CatalogStore(catalog.store.settings)
    try:
        other.datasets.update(dataset["id"], {"title": "Renamed elsewhere"})
    finally:
        other.close()
    written_at = time.monotonic()
    while titles(anonymous) != ["Renamed elsewhere"]:
        assert time.monotonic() - written_at < 1, "a write from another process was not seen within 1 s"
        time.sleep(0.002)
    assert len(searches) == 2


def test_callers_with_a_key_are_not_served_from_the_cache(api, publisher, searches):
    api.create_dataset(title="Brouillon", organization=publisher.organization_id, private=True)
    for _ in range(2):
        assert titles(api, f"/organizations/{publisher.organization_slug}/datasets/") == ["Brouillon"]
        assert api.get("/datasets/").status_code == 200
    assert len([q for q in searches if not q.include_private]) == 2


def test_entries_expire_and_the_oldest_go_first():
    cache = ResponseCache(max_entries=2, time_to_live=60)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"
    cache.put("c", b"3")  # "b" was used least recently
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
    expired = ResponseCache(time_to_live=-1)
    expired.put("a", b"1")
    assert expired.get("a") is None


def test_a_cached_dataset_still_counts_every_view_and_follows_writes(catalog, api, anonymous, publisher, monkeypatch):
    reads = []
    original = catalog.store.datasets.get_document
    monkeypatch.setattr(catalog.store.datasets, "get_document", lambda ref: reads.append(ref) or original(ref))
    dataset = api.create_dataset(title="Alpha", organization=publisher.organization_id)
    reads.clear()
    for _ in range(3):
        assert anonymous.get(f"/datasets/{dataset['slug']}/").json()["title"] == "Alpha"
    assert reads == [dataset["slug"]]
    views = [e for e in catalog.store.events.list() if e["kind"] == DATASET_VIEW and e["dataset_id"] == dataset["id"]]
    assert len(views) == 3  # the cached answers were views too, of the right dataset

    assert api.put(f"/datasets/{dataset['id']}/", json={"title": "Beta"}).status_code == 200
    assert anonymous.get(f"/datasets/{dataset['slug']}/").json()["title"] == "Beta"
    assert api.put(f"/datasets/{dataset['id']}/", json={"private": True}).status_code == 200
    assert anonymous.get(f"/datasets/{dataset['slug']}/").status_code == 404
    assert api.put(f"/datasets/{dataset['id']}/", json={"private": False}).status_code == 200
    assert anonymous.get(f"/datasets/{dataset['slug']}/").status_code == 200
    assert api.delete(f"/datasets/{dataset['id']}/").status_code == 204
    assert anonymous.get(f"/datasets/{dataset['slug']}/").status_code == 410


def wait_for(condition, what: str, timeout: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.002)


def test_the_data_version_is_known_without_a_query_and_unknown_while_it_cannot_be_read(tmp_path):
    url = f"sqlite:///{tmp_path}/catalog.db"
    db, other = Database.open(url), Database.open(url)
    try:
        start = db.fresh_data_version()  # read now: nobody had asked yet
        assert start == db.data_version()
        with db.write():
            pass
        assert db.fresh_data_version() == start + 1  # this process's write
        with other.write():
            pass
        wait_for(lambda: db.current_data_version() == start + 2, "another process's write seen")

        with other.engine.begin() as connection:
            data_version.drop(connection)
        wait_for(lambda: db.current_data_version() is None, "an unreadable version made unknown")
        with other.engine.begin() as connection:
            data_version.create(connection)
            connection.execute(data_version.insert().values(id=1, version=start + 2))
        wait_for(lambda: db.current_data_version() == start + 2, "the version known again")
    finally:
        db.close()
        other.close()


def test_the_data_version_is_read_on_a_few_connections_however_many_ask(tmp_path, monkeypatch):
    """Every keyed request reads the data version: many at once wait for one of the reader's few
    connections instead of opening and closing their own (on PostgreSQL, a backend forked each)."""
    db = Database.open(f"sqlite:///{tmp_path}/catalog.db")
    opened = []
    reader = db._plain_reads
    connect = reader._connect
    monkeypatch.setattr(reader, "_connect", lambda: opened.append(1) or connect())
    try:
        with ThreadPoolExecutor(16) as pool:
            versions = set(pool.map(lambda _: db.data_version(), range(2000)))
        assert versions == {db.data_version()}
        assert len(opened) <= reader.CONNECTIONS  # one connection per thread before: 16
    finally:
        db.close()


def test_the_data_version_is_read_again_after_its_connections_die(postgres_database):
    """Every keyed request reads the data version on a connection kept for it (db._PlainReads):
    when PostgreSQL drops those connections (a restart, an idle timeout), the next reads still
    answer, with the version committed."""
    db = Database.open(postgres_database.url)
    try:
        start = db.data_version()
        with db.write():
            pass
        assert postgres_database.terminate_other_connections() >= 1
        assert [db.data_version() for _ in range(3)] == [start + 1] * 3
    finally:
        db.close()


def test_readers_asking_at_once_for_an_uncached_answer_wait_for_one_computation(catalog, api, anonymous, publisher, monkeypatch):
    dataset = api.create_dataset(title="Alpha", organization=publisher.organization_id)
    computed = []
    for name in ("search_documents", "get_document"):
        original = getattr(catalog.store.datasets, name)

        def slow(query, original=original, name=name):
            computed.append(name)
            time.sleep(0.3)  # long enough for every reader to arrive while it runs
            return original(query)

        monkeypatch.setattr(catalog.store.datasets, name, slow)
    for path in ("/datasets/?sort=title", f"/datasets/{dataset['id']}/"):
        with ThreadPoolExecutor(max_workers=5) as pool:
            answers = list(pool.map(lambda _: anonymous.get(path), range(5)))
        assert [answer.status_code for answer in answers] == [200] * 5
        assert len({answer.content for answer in answers}) == 1
    assert computed == ["search_documents", "get_document"]
    views = [e for e in catalog.store.events.list() if e["kind"] == DATASET_VIEW and e["dataset_id"] == dataset["id"]]
    assert len(views) == 5  # the readers who waited still viewed it


def test_readers_waiting_for_one_first_answer_do_not_hold_up_the_others(catalog, api, anonymous, publisher, monkeypatch):
    """30 readers wait for one slow first answer (more than the 16 request threads): another first
    answer is still computed at once, since the waiting happens on the event loop, not in a thread."""
    api.create_dataset(title="Alpha", organization=publisher.organization_id)
    release = threading.Event()
    original = catalog.store.datasets.search_documents

    def held(query):
        if query.q == "lent":
            release.wait(20)
        return original(query)

    monkeypatch.setattr(catalog.store.datasets, "search_documents", held)
    with ThreadPoolExecutor(max_workers=30) as pool:
        waiting = [pool.submit(anonymous.get, "/datasets/?q=lent") for _ in range(30)]
        time.sleep(0.5)  # every reader has arrived
        started = time.monotonic()
        other = anonymous.get("/datasets/?q=alpha")
        elapsed = time.monotonic() - started
        release.set()
        assert [future.result().status_code for future in waiting] == [200] * 30
    assert other.status_code == 200 and [d["title"] for d in other.json()["data"]] == ["Alpha"]
    assert elapsed < 5, f"a different first answer waited {elapsed:.1f} s behind the held one"


def test_the_cache_is_bounded_in_bytes_too() -> None:
    """Row-API pages can be large: the oldest answers go once the bytes are over the bound."""
    cache = ResponseCache(max_entries=100, time_to_live=60, max_bytes=10)
    cache.put("a", CachedAnswer(b"123456"))
    cache.put("b", CachedAnswer(b"123456"))
    assert cache.get("a") is None and cache.get("b") == CachedAnswer(b"123456")
    cache.put("b", CachedAnswer(b"1234"))  # replaced, not counted twice
    cache.put("c", CachedAnswer(b"123456"))
    assert cache.get("b") is not None and cache.get("c") is not None


# Answers shared between the processes of one node (`serve --workers N`: SharedAnswers)


def key(version: int, path: str = "/api/1/datasets/") -> tuple:
    return (version, path, b"q=eau", None, b"catalog.test")


def test_an_answer_one_process_computed_is_read_by_the_others(tmp_path):
    """Two caches on one folder stand for two processes; the usage an answer records goes along."""
    first, second = (ResponseCache(shared=SharedAnswers(tmp_path)) for _ in range(2))
    view = Usage(DATASET_VIEW, "api", "d1")
    first.put(key(1), CachedAnswer(b'{"total": 1}', view))
    assert second.get(key(1)) == CachedAnswer(b'{"total": 1}', view)
    assert second.get(key(1, "/api/1/datasets/d2/")) is None
    assert ResponseCache().get(key(1)) is None  # a process without the folder computes its own


def test_a_newer_version_removes_the_older_answers_and_old_answers_are_not_kept(tmp_path):
    shared = SharedAnswers(tmp_path)
    shared.put(key(1), CachedAnswer(b"old"))
    shared.put(key(2), CachedAnswer(b"new"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2"]
    assert shared.get(key(1)) is None and shared.get(key(2)) == (pytest.approx(0, abs=5), CachedAnswer(b"new"))
    shared.put(key(1), CachedAnswer(b"late"))  # a write of the old version, after the new one
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2"]


def test_a_process_behind_a_newer_version_does_not_bring_back_the_removed_folder(tmp_path):
    """Another process's newer version removed the folder this one made: its late answers and
    locks of the old version are given up, and the folder stays gone."""
    behind, ahead = SharedAnswers(tmp_path), SharedAnswers(tmp_path)
    behind.put(key(1), CachedAnswer(b"old"))
    ahead.put(key(2), CachedAnswer(b"new"))  # removes version 1's folder
    behind.put(key(1, "/api/1/datasets/d2/"), CachedAnswer(b"late"))
    with behind.computing(key(1, "/api/1/datasets/d3/")):  # computed alone, without a lock file
        pass
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2"]
    assert ahead.get(key(1, "/api/1/datasets/d2/")) is None


def test_shared_answers_expire_and_each_process_writes_a_bounded_number(tmp_path):
    expired = SharedAnswers(tmp_path / "a", time_to_live=-1)
    expired.put(key(1), CachedAnswer(b"x"))
    assert expired.get(key(1)) is None
    bounded = SharedAnswers(tmp_path / "b", max_entries=2, max_bytes=100)
    for index in range(4):
        bounded.put(key(1, f"/api/1/datasets/{index}/"), CachedAnswer(b"x"))
    assert [bounded.get(key(1, f"/api/1/datasets/{index}/")) is not None for index in range(4)] == [True, True, False, False]
    bounded.put(key(2, "/big/"), CachedAnswer(b"x" * 101))
    assert bounded.get(key(2, "/big/")) is None


def test_processes_asking_at_once_for_an_uncached_answer_compute_it_once(tmp_path):
    """Each cache stands for a process: the second waits on the answer's lock file while the first
    computes, then reads its answer. Without the shared folder each computes its own."""
    for shared, expected in ((True, 1), (False, 2)):
        caches = [ResponseCache(shared=SharedAnswers(tmp_path / "shared") if shared else None) for _ in range(2)]
        computed: list[int] = []

        def answer(cache: ResponseCache, computed: list[int] = computed) -> CachedAnswer:
            with cache.single_flight(key(1)):
                found = cache.get(key(1))
                if found is None:
                    computed.append(1)
                    time.sleep(0.3)
                    found = CachedAnswer(b"computed")
                    cache.put(key(1), found)
                return found

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(answer, caches)) == [CachedAnswer(b"computed")] * 2
        assert len(computed) == expected, (shared, computed)


def test_catalogs_sharing_a_folder_serve_each_others_answers_with_their_views(catalog_settings, tmp_path):
    """Two catalogs on one database (the workers of one node) and one folder: the second serves the
    first's answer, and counts its view. The dataset is renamed in the database without moving the
    data version, so that an answer computed again would show it; a catalog without the folder does."""
    # The workers of one node share one address, hence their answers' links.
    catalog_settings = dataclasses.replace(catalog_settings, public_url="http://catalog.test")
    shared = dataclasses.replace(catalog_settings, shared_answers_dir=tmp_path / "answers")
    with CatalogStore(catalog_settings) as store:
        publisher = bootstrap_publisher(store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Bot")
        dataset = store.datasets.create({"title": "Alpha", "description": "d"}, owner_id=None, organization_id=publisher.organization_id)
    with serve_in_thread(shared) as first, serve_in_thread(shared) as second, serve_in_thread(catalog_settings) as alone:
        paths = ("/api/1/datasets/?sort=title", f"/api/1/datasets/{dataset['id']}/")
        for path in paths:
            assert requests.get(first.url + path, timeout=10).status_code == 200
        with first.store.db.engine.begin() as connection:
            connection.execute(text("UPDATE datasets SET title = 'Renamed' WHERE id = :id"), {"id": dataset["id"]})
            # and no stored document (documents.py): what it shows is rendered again
            connection.execute(text("DELETE FROM dataset_documents WHERE dataset_id = :id"), {"id": dataset["id"]})

        def title(catalog: RunningCatalog, path: str) -> str:
            body = requests.get(catalog.url + path, timeout=10).json()
            return body["data"][0]["title"] if "data" in body else body["title"]

        assert [title(second, path) for path in paths] == ["Alpha", "Alpha"]
        assert [title(alone, path) for path in paths] == ["Renamed", "Renamed"]
        first.store.events.list()
    with CatalogStore(catalog_settings) as store:
        assert len(store.events.list(kind=DATASET_VIEW)) == 3


@pytest.mark.parametrize("keyed", [False, True], ids=["anonymous", "publisher"])
def test_datasets_are_computed_a_few_at_a_time(catalog, api, anonymous, publisher, monkeypatch, keyed):
    """A dataset's GET is CPU work: a process computes COMPUTING_THREADS at once and queues the
    others (app.py), instead of sharing its cores among every request thread."""
    created = [api.create_dataset(title=f"Jeu {index}", organization=publisher.organization_id) for index in range(8)]
    computing, peak, lock = [0], [0], threading.Lock()
    original = catalog.store.datasets.get_document

    def counted(*args, **kwargs):
        with lock:
            computing[0] += 1
            peak[0] = max(peak[0], computing[0])
        try:
            time.sleep(0.05)  # long enough for the other requests to arrive meanwhile
            return original(*args, **kwargs)
        finally:
            with lock:
                computing[0] -= 1

    monkeypatch.setattr(catalog.store.datasets, "get_document", counted)
    client = api if keyed else anonymous
    with ThreadPoolExecutor(len(created)) as pool:
        answers = list(pool.map(lambda dataset: client.get(f"/datasets/{dataset['id']}/"), created))
    assert [answer.json()["title"] for answer in answers] == [dataset["title"] for dataset in created]
    assert peak[0] == COMPUTING_THREADS
