"""A serving worker's warm-up: what its first requests would pay for, paid before it takes any.

A worker's first requests paid costs that its later ones reuse: a database connection opened for
each request thread (on PostgreSQL, a backend forked and authenticated, with empty caches of the
tables, indexes and statistics that each new statement's planning then reads from the system
catalogs), and SQLAlchemy's compilation of each shape of listing (listing._statements). At
100,000 datasets on PostgreSQL, these came on top of the first answers themselves, all in the
first second after a start or a deploy: the 260 distinct first listings of bench_catalog.py cost
10.4-13 ms of CPU each (the worker's and the database's) in a fresh worker, against 9-10.5 ms in
one warmed up this way, and their p90 latency at 50 clients was 570-600 ms against 370-440
(bench/README.md, eleventh pass).

So `serve` has each worker, before uvicorn hands it a request:
- open the connections its request threads hold, and on each run listings that read every table
  and index a listing reads (no dataset matches them: their plans are what is wanted);
- open the connections kept for plain reads (a dataset's GET), and read a dataset on each;
- compile the listings' common shapes: no filter or each one alone, a format or an organization
  with a licence, each with no word, one or two, in each usual order (98 shapes, on SQLite too).

About a second per worker at 100,000 datasets. A failure is logged and the worker serves anyway:
its first requests then pay as they did. Catalogs started in-process (tests, the demo) skip it.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

from dinum_pipelines.catalog.listing import DatasetQuery, read_page
from dinum_pipelines.catalog.store import CatalogStore

logger = logging.getLogger("dinum_pipelines.catalog")

# Values that match nothing: the statements run, plan and read an index or two, and find nothing.
_NOWHERE = "warm-up-matches-nothing"
_WORD, _TWO_WORDS = "zzwarmupzz", "zzwarmupzz yywarmupyy"
# Every table and index a listing of the public API reads: the words' rows and counts, the
# datasets' listing indexes, tags, resources' formats, stored documents.
TABLE_READING_LISTINGS = (
    DatasetQuery(q=_TWO_WORDS, organization_id=_NOWHERE, license=_NOWHERE, format=_NOWHERE, tags=(_NOWHERE,), sort=("views", True)),
    DatasetQuery(q=_WORD, organization_id=_NOWHERE, license=_NOWHERE, format=_NOWHERE),
    DatasetQuery(tags=(_NOWHERE,)),
    DatasetQuery(format=_NOWHERE),
    DatasetQuery(organization_id=_NOWHERE, license=_NOWHERE, format=_NOWHERE, sort=("title", False)),
)
_FILTERS: tuple[dict[str, Any], ...] = (
    {}, {"organization_id": _NOWHERE}, {"license": _NOWHERE}, {"format": _NOWHERE}, {"tags": (_NOWHERE,)},
    {"format": _NOWHERE, "license": _NOWHERE}, {"organization_id": _NOWHERE, "license": _NOWHERE},
)
_SORTS = (None, ("created_at", True), ("title", False), ("last_update", True), ("views", True))


def common_listings() -> Iterator[DatasetQuery]:
    """One listing of each common shape: the filters of _FILTERS, with no word, one or two, in
    each order of _SORTS (None: by relevance with words, the newest first without)."""
    for q, filters, sort in itertools.product((None, _WORD, _TWO_WORDS), _FILTERS, _SORTS):
        yield DatasetQuery(q=q, sort=sort, **filters)


def warm_up(store: CatalogStore, connections: int) -> None:
    """Open `connections` pooled connections and the plain reads' ones, warm each, and compile
    the common listing shapes (see the module's docstring). Never raises: a worker that could
    not warm up serves anyway."""
    started = time.perf_counter()
    try:
        with contextlib.ExitStack() as held:  # held together, so that the pool opens that many
            pooled = [held.enter_context(store.db.read(snapshot=False)) for _ in range(connections)]
            for index, connection in enumerate(pooled):
                for query in common_listings() if index == 0 else TABLE_READING_LISTINGS:
                    read_page(connection, query, documents=True)
        for _ in range(store.db.open_plain_reads()):  # each read takes the longest idle one: all in turn
            store.datasets.get_document(_NOWHERE)
        store.db.fresh_data_version()
    except Exception:
        logger.exception("the worker's warm-up failed; its first requests open and compile what they need")
        return
    # What it made (compiled statements, connections) lives as long as the worker: out of later
    # garbage collections, as the start's own objects are (server.freeze_startup_objects).
    gc.collect()
    gc.freeze()
    logger.info("warmed up in %.0f ms: %d connections, the common listing shapes compiled", (time.perf_counter() - started) * 1000, connections)
