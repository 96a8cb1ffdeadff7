"""A serving worker's warm-up (catalog/warm_up.py): the connections it opens are held by the pool
for its requests, the common listing shapes are compiled before any request asks for them, it
changes no data, and a failure leaves the worker serving."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from dinum_pipelines.catalog import CatalogSettings, CatalogStore, listing
from dinum_pipelines.catalog.listing import read_page
from dinum_pipelines.catalog.warm_up import TABLE_READING_LISTINGS, common_listings, warm_up


@pytest.fixture(autouse=True)
def _unfreeze() -> Iterator[None]:
    """The warm-up freezes what the process holds out of garbage collections (as a serving worker
    should): the test process gets its collections back."""
    yield
    gc.unfreeze()


def test_a_warmed_up_worker_holds_its_connections_and_has_compiled_the_common_listings(catalog_settings: CatalogSettings) -> None:
    listing._statements.cache_clear()  # shapes compiled by earlier tests in this process would hide a warm-up that compiles none
    with CatalogStore(catalog_settings) as store:
        version = store.db.fresh_data_version()
        warm_up(store, 8)
        assert store.db.engine.pool.checkedin() >= 8  # type: ignore[attr-defined]  # QueuePool: open and idle, for the request threads
        compiled = listing._statements.cache_info()
        assert compiled.currsize >= 60
        with store.db.read(snapshot=False) as connection:
            for query in [*common_listings(), *TABLE_READING_LISTINGS]:
                assert read_page(connection, query, documents=True) == ([], 0)
        assert listing._statements.cache_info().misses == compiled.misses  # every shape was there already
        assert store.db.fresh_data_version() == version  # nothing written


def test_a_failed_warm_up_is_logged_and_the_worker_goes_on(catalog_settings: CatalogSettings, caplog: pytest.LogCaptureFixture) -> None:
    store = CatalogStore(catalog_settings)
    store.close()  # its plain reads' connections refuse to open: the warm-up fails half-way
    with caplog.at_level(logging.ERROR, logger="dinum_pipelines.catalog"):
        warm_up(store, 2)
    assert [record.getMessage() for record in caplog.records] == [
        "the worker's warm-up failed; its first requests open and compile what they need"
    ]
