"""A page of the dataset listing (udata's `GET /api/1/datasets/` and the catalog's own pages): its
statements, built once per shape, and the page read with its stored documents.

A listing's statements depend on which filters it has, how many tags and words, its sort and
whether it is the public listing: its shape. Its values (the words, the organization, the page)
are bound parameters. Each shape's statements are built once, and their compiled SQL is
SQLAlchemy's to cache. Built for every request, aliases, subqueries and their column collections
were a quarter of a first listing's CPU in the catalog's process (py-spy, 100,000 datasets).

The page's statement also reads the stored documents of the datasets it lists (documents.py),
joined to the page's 20 ids, and carries the total: a first page is one statement (after the
words' counts for a search of several words, which choose its plan; after the count for a lone
tag or format, which chooses it too), where it was up to four.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, case, func, literal, literal_column, or_, select, text

from dinum_pipelines.catalog.db import UNLISTED, UNLISTED_INDEX, dataset_documents, dataset_tags, datasets, listing_index, resources
from dinum_pipelines.catalog.documents import holds
from dinum_pipelines.catalog.ids import slugify
from dinum_pipelines.catalog.search import Match, MatchStatement, format_pattern, listed_counts, normal_format


@dataclass(frozen=True)
class DatasetQuery:
    """udata's dataset search: every given filter must match (tags too: all of them)."""

    q: str | None = None
    organization_id: str | None = None
    tags: tuple[str, ...] = ()
    license: str | None = None
    format: str | None = None  # a resource format, e.g. "csv" (case-insensitive)
    sort: tuple[str, bool] | None = None  # (field, descending), field a key of SORT_KEYS; None = by relevance with q, else newest first
    page: int = 1
    page_size: int = 20
    include_private: bool = False
    deleted: bool = False  # the deleted datasets instead of the live ones (with `editable_by`)
    editable_by: tuple[str, tuple[str, ...]] | None = None  # (user id, its organizations' ids): only what they may edit, private ones included


def _metric(name: str) -> Any:
    """A count from the dataset's `metrics` document, 0 when absent (JSON paths work on both databases)."""
    return func.coalesce(datasets.c.doc[("metrics", name)].as_integer(), 0)


# What udata's `sort` values order by: columns, or the metrics the metrics pipeline pushed (views
# has a column and an index of its own; followers and reuses are read from the documents).
SORT_KEYS: dict[str, Any] = {
    "title": datasets.c.title,
    "created_at": datasets.c.created_at,
    "created": datasets.c.created_at,
    "last_update": datasets.c.last_update,
    "last_modified": datasets.c.last_modified,
    "views": datasets.c.views,
    "followers": _metric("followers"),
    "reuses": _metric("reuses"),
}

# A tag or format held by at least this many public datasets: its listing is read in the sort's order,
# each row checked (at 100,000 datasets, a tag of 3,500: 8.4 -> 0.6 ms; a format of 40,000, page 2:
# 26 -> 0.2 ms); under it, its members are listed first (a tag of 10 would read the whole listing).
_MEMBERS_READ_IN_ORDER = 1000
# The public listing: live and public datasets (the complement of db.UNLISTED).
_PUBLIC_LISTING = (datasets.c.deleted_at.is_(None), datasets.c.private.is_(False))
# A search reads its matches' filter columns from this index: (id, private, deleted_at, organization_id, license).
_DATASETS_BY_ID = listing_index("id")


class PageRow(NamedTuple):
    id: str
    document: str | None  # its stored document, if asked for and it holds now


@dataclass(frozen=True)
class _Shape:
    """What a listing's statements depend on, its values apart."""

    dialect: str
    public: bool  # the public listing: live, public datasets, whoever asks
    deleted: bool
    editable: bool  # only what `editable_by` may edit
    include_private: bool
    organization: bool
    license: bool
    format: bool
    tags: int
    words: int  # in q; 0 without q
    sort: tuple[str, bool] | None
    documents: bool
    members_in_order: bool = False  # a lone tag or format with many members (_MEMBERS_READ_IN_ORDER)

    @property
    def on_words(self) -> bool:
        """A search of the public listing: its filters are read from the words' rows (search.set_filters)."""
        return self.public and self.words > 0

    @property
    def lone_membership(self) -> bool:
        """A tag or a format alone on the public listing: counted from its own index (public_members)."""
        return not self.words and self.public and self.tags + self.format == 1 and not (self.organization or self.license)

    @property
    def ranked_alone(self) -> bool:
        """One word on the public listing, by relevance, nothing else: its index holds the ranking."""
        return self.on_words and self.words == 1 and not (self.organization or self.license or self.format or self.tags or self.sort)


def read_page(conn: Connection, query: DatasetQuery, *, documents: bool) -> tuple[list[PageRow], int]:
    """One page of the live (or deleted) datasets matching `query`, in order, each with its stored
    document if `documents`, and the total number of matches."""
    match = Match(query.q) if query.q else None
    if match is not None and not match.searchable:  # nothing searchable in q (stop words, punctuation): nothing matches
        return [], 0
    public = not query.deleted and query.editable_by is None and not query.include_private
    shape = _Shape(
        dialect=conn.dialect.name, public=public, deleted=query.deleted, editable=query.editable_by is not None,
        include_private=query.include_private, organization=bool(query.organization_id), license=bool(query.license),
        format=bool(query.format), tags=len(query.tags), words=len(match.words) if match else 0, sort=query.sort, documents=documents,
    )
    params: dict[str, Any] = {
        "offset": (query.page - 1) * query.page_size, "limit": query.page_size,
        "organization_id": query.organization_id, "license": query.license,
        "format": normal_format(query.format), "format_pattern": format_pattern(normal_format(query.format)),
        **{f"tag_{index}": slugify(tag) for index, tag in enumerate(query.tags)},
    }
    if query.editable_by is not None:
        params["user_id"], params["organization_ids"] = query.editable_by[0], list(query.editable_by[1])
    if match is None:
        if shape.lone_membership:
            total = public_members(conn, shape.dialect, "tag" if shape.tags else "format", params)
            shape = replace(shape, members_in_order=total >= _MEMBERS_READ_IN_ORDER)
            rows = conn.execute(_statements(shape).page, params).all() if total else []
        else:
            rows, total = _page_and_total(conn, _statements(shape), params)
    else:
        if len(match.words) > 1:  # the rarest word drives the query, and each weighs by its rarity
            match.weigh(listed_counts(conn, match.words))
        params.update(match.params())
        rows, total = _page_and_total(conn, _statements(shape), params)
    return [PageRow(row.id, row.body if documents and row.body is not None and holds(row.valid_until) else None) for row in rows], total


def _page_and_total(conn: Connection, statements: _Statements, params: dict[str, Any]) -> tuple[list[Any], int]:
    """The page's rows and the total they carry (`_Statements.page`); past the last page, where
    no row carries it, the total counted apart. One statement where a first page took two: each
    is a round trip, a plan and, in the catalog's process, most of a millisecond of CPU."""
    rows = conn.execute(statements.page, params).all()
    return rows, rows[0].total if rows else conn.scalar(statements.count, params) or 0


class _Statements(NamedTuple):
    count: Select[Any]  # the total
    page: Select[Any]  # the page's ids (and documents), in order


@lru_cache(maxsize=512)
def _statements(shape: _Shape) -> _Statements:
    """A shape's statements, its values bound by name: `read_page`'s params and Match.params."""
    words = MatchStatement(shape.words) if shape.words else None
    conditions: list[Any] = []
    if shape.public:
        if words is None:
            conditions.extend(_PUBLIC_LISTING)
    else:
        conditions.append(datasets.c.deleted_at.is_not(None) if shape.deleted else datasets.c.deleted_at.is_(None))
        if shape.editable:
            conditions.append(or_(
                datasets.c.organization_id.in_(bindparam("organization_ids", expanding=True)),
                and_(datasets.c.organization_id.is_(None), datasets.c.owner_id == bindparam("user_id")),
            ))
        elif not shape.include_private:
            conditions.append(datasets.c.private.is_(False))
    if shape.organization and not shape.on_words:
        conditions.append(datasets.c.organization_id == bindparam("organization_id"))
    if shape.license and not shape.on_words:
        conditions.append(datasets.c.license == bindparam("license"))
    memberships = [_membership("tag", index) for index in range(shape.tags)]
    if shape.format and not shape.on_words:  # a dataset may have several resources of one format
        memberships.append(_membership("format"))
    if shape.lone_membership:
        # Many members: the listing's index in order, each row looked up in the filter's index,
        # finds a page's rows first; few: listing them all first does.
        conditions.append(_listed_in(*memberships[0], per_row=shape.members_in_order))
    else:
        candidate = words.dataset_id if shape.on_words else datasets.c.id
        conditions.extend(_listed_in(*membership, per_row=words is not None, candidate=candidate) for membership in memberships)
    field, descending = shape.sort or ("created_at", True)
    column = SORT_KEYS[field]
    if words is None:
        count = select(func.count()).select_from(datasets).where(*conditions)
        # A lone tag's or format's total is counted first (public_members): its page depends on it.
        total = [] if shape.lone_membership else [count.scalar_subquery().label("total")]
        # The id breaks ties in the same direction, so one index serves the whole ORDER BY (db.py).
        ids = select(datasets.c.id, *total).where(*conditions)
        return _Statements(count, _page(ids, [(column, descending), (datasets.c.id, descending)], shape))
    if shape.on_words:
        conditions.extend(words.filters(organization=shape.organization, license=shape.license, format=shape.format))
    conditions = [words.condition, *([words.listed] if shape.public else []), *conditions]
    if shape.ranked_alone:  # its total is the word's count (search.term_counts)
        count = select(func.coalesce(words.listed_count, 0))
        ranked = select(words.dataset_id.label("id"), words.listed_count.label("total")).select_from(words.source()).where(*conditions)
        return _Statements(count, _page(ranked, words.ranked_order, shape))
    # Every condition of the public listing's is on the words' rows; the others need the dataset's.
    needs_datasets = not shape.public or shape.sort is not None
    source = words.source(datasets if needs_datasets else None, index=_DATASETS_BY_ID)
    ordering = [column.label("sort_key")] if shape.sort else words.columns
    matches = select(words.dataset_id.label("id"), *ordering).select_from(source).where(*conditions).subquery("matches")
    if shape.sort is None:  # relevance, then the newest (ids grow with time); an explicit sort overrides it
        order = [*((key, True) for key in words.order(matches)), (matches.c.id, True)]
    else:
        order = [(matches.c.sort_key, descending), (matches.c.id, descending)]
    page = _page(select(matches.c.id, func.count().over().label("total")), order, shape)
    return _Statements(select(func.count()).select_from(source).where(*conditions), page)


def _page(ids: Select[Any], order: list[tuple[Any, bool]], shape: _Shape) -> Select[Any]:
    """`ids` (a select of `id`, and `total` perhaps) in `order` ((expression, descending) pairs),
    one page of them; with each one's stored document, if the shape asks for them."""
    page = ids.order_by(*_ordered(order)).offset(bindparam("offset")).limit(bindparam("limit"))
    if not shape.documents:
        return page
    # The page first, then its documents: its ORDER BY repeated on its keys, which it carries.
    keyed = page.add_columns(*(key.label(f"key_{index}") for index, (key, _) in enumerate(order))).subquery("page")
    keys = [(keyed.c[f"key_{index}"], descending) for index, (_, descending) in enumerate(order)]
    return (
        select(*(column for column in keyed.c if not column.key.startswith("key_")), dataset_documents.c.body, dataset_documents.c.valid_until)
        .select_from(keyed.outerjoin(dataset_documents, dataset_documents.c.dataset_id == keyed.c.id))
        .order_by(*_ordered(keys))
    )


def _ordered(order: list[tuple[Any, bool]]) -> list[Any]:
    return [key.desc() if descending else key.asc() for key, descending in order]


def _membership(kind: str, index: int = 0) -> tuple[Any, Any]:
    """A tag's (the `index`th of the query's) or the format's rows: (their dataset id, their condition)."""
    if kind == "tag":
        return dataset_tags.c.dataset_id, dataset_tags.c.tag == bindparam(f"tag_{index}")
    return resources.c.dataset_id, resources.c.format == bindparam("format")


def public_members(conn: Connection, dialect: str, kind: str, params: dict[str, Any]) -> int:
    """How many public, live datasets have the tag or the format of `params` (`kind`). When the
    unlisted datasets (private or deleted) are fewer than its members, all its members counted
    from the filter's index less its unlisted ones (a tag of 3,500 at 100,000 datasets: 13.5 ->
    0.4 ms; a format of 40,000: 70 -> 16 ms); else each member looked up, as before."""
    return conn.scalar(_public_member_count(dialect, kind), params) or 0


@lru_cache(maxsize=8)
def _public_member_count(dialect: str, kind: str) -> Select[Any]:
    """`public_members`' one statement: the two counts that choose the way, then the way chosen
    (each scalar subquery runs when its branch is taken, on both databases)."""
    dataset_id, condition = _membership(kind)
    member_rows = select(dataset_id).where(condition)
    # A dataset holds a tag once (the key of dataset_tags); it may have several resources of a
    # format, whose distinct datasets are read in the index's order (PostgreSQL's count(DISTINCT)
    # sorts them again: 22 against 16 ms for a format of 40,000 resources).
    members = select(func.count()).where(condition) if kind == "tag" else select(func.count()).select_from(member_rows.distinct().subquery())
    # SQLite's planner, without statistics, prefers a whole covering index to the partial one; the
    # FROM is then text, and the member check names the outer row's id as text too.
    unlisted_rows = text(f"datasets INDEXED BY {UNLISTED_INDEX}") if dialect == "sqlite" else datasets
    is_member = select(dataset_id).where(condition, dataset_id == literal_column("datasets.id")).exists()
    # OFFSET 0 keeps the two counts in their subquery, each run once (neither database flattens a
    # subquery with an OFFSET, which would copy each count to every place that reads it).
    counts = select(members.scalar_subquery().label("members"), select(func.count()).select_from(unlisted_rows).where(UNLISTED).scalar_subquery().label("unlisted")).offset(0).subquery("counts")
    unlisted_members = select(func.count()).select_from(unlisted_rows).where(UNLISTED, is_member).scalar_subquery()
    listed_members = select(func.count()).select_from(datasets).where(*_PUBLIC_LISTING, _listed_in(dataset_id, condition, per_row=False)).scalar_subquery()
    return select(case((counts.c.unlisted < counts.c.members, counts.c.members - unlisted_members), else_=listed_members)).select_from(counts)


def _listed_in(dataset_id: Any, condition: Any, *, per_row: bool, candidate: Any = datasets.c.id) -> ColumnElement[bool]:
    """The `candidate` dataset id is among the `dataset_id`s of the rows meeting `condition` (a
    tag's, a format's). `per_row` when few datasets are candidates (the matches of `q`): each is
    looked up in the (condition, dataset_id) index instead of SQLite listing every tagged dataset
    first (40,000 for a format at 100,000 datasets)."""
    if per_row:
        # A scalar subquery, not EXISTS: PostgreSQL turns EXISTS into a join and, estimating the
        # matches many, hashed every member first (a format's 40,000 resources for 489 matches: 90 ms).
        return select(literal(1)).where(condition, dataset_id == candidate).limit(1).scalar_subquery().is_not(None)
    return candidate.in_(select(dataset_id).where(condition))

