"""udata's `q` as a French full-text search, ranked, on the catalog's own database (revision 0015).

data.gouv.fr answers `q` with Elasticsearch; we answer it with an inverted index kept in a table
of the database the catalog already runs, the same on SQLite and PostgreSQL: `dataset_terms`
(db.py), one row per (dataset, searchable word). A dataset matches when every searched word is
in its title or description, as a word, whatever its case, accents, plural or feminine form
(`terms`: folded, French stop words dropped, a light stemmer for plural and feminine endings;
queries go through the same function). Matches come ranked: a dataset whose title holds every
word first, then by relevance, then the newest.

Relevance is BM25F, computed when a dataset is written rather than when it is searched: each row
holds its word's `weight` in that dataset (the word's count in the title and in the description,
each saturated and normalized by the field's length, the title counting 4 times the description;
fixed average lengths stand for the corpus's), and whether the title holds it (`in_title`). A
query of several words adds its words' weights, each times an inverse document frequency taken
from how many datasets hold each word. An index (word, listed, in_title, weight, dataset) holds
every word's datasets in rank order: the first page of a one-word search is its first rows, and
its count one row of `term_counts` (revision 0019), whatever the number of matches. Before this (revision 0011:
FTS5 and bm25 on SQLite, a tsvector and ts_rank_cd on PostgreSQL) every match was read and scored
for every search, 40 ms for a typical word at 100,000 datasets and 500 ms for a common one
(bench/README.md), and the two engines stemmed differently.

`listed` is the public listing's condition (public and not deleted), copied from the dataset
with its organization, licence and resource formats (revision 0017): a search with q and filters
checks each match in the word's index, without looking it up. `index_dataset` rewrites a
dataset's rows when its title or description changes, and `set_filters` copies its filters at
the end of every write to it (datasets.py), in the same transaction; both move the counts of the
words whose listed rows they add or remove. The statements of a listing are listing.py's.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Float, FromClause, Join, and_, bindparam, case, delete, func, insert, literal, select, update
from sqlalchemy.ext.compiler import compiles

from dinum_pipelines.catalog.db import TERMS_BY_WORD_INDEX, dataset_terms, dialect_insert, term_counts
from dinum_pipelines.catalog.ids import fold

_WORD = re.compile(r"[^\W_]+")
# Words too common to tell datasets apart; dropped from texts and queries alike.
STOP_WORDS = frozenset(
    "a au aux avec ce ces cet cette d dans de des du elle en et il ils l la le les leur leurs lui ma "
    "mais me mes n ne nos notre nous on ou par pas pour qu que qui s sa se ses son sur t ta te tes "
    "un une vos votre vous y".split()
)
_DOUBLED_FINALS = ("ll", "nn", "tt")  # "culturelle" -> "culturel", "ancienne" -> "ancien", "nette" -> "net"
TERM_LENGTH = 64  # longer words are cut, in texts and queries alike (db.py's column)

# BM25F: the title counts TITLE_WEIGHT times the description; K1 is how fast repeats saturate, B
# how much a field's length normalizes (Elasticsearch's defaults); the average lengths stand for the
# corpus's (data.gouv.fr's titles and descriptions, in terms), fixed so that a weight, once written,
# never needs computing again.
TITLE_WEIGHT, DESCRIPTION_WEIGHT = 4.0, 1.0
K1, B = 1.2, 0.75
AVERAGE_TITLE_TERMS, AVERAGE_DESCRIPTION_TERMS = 6.0, 60.0


def stem(word: str) -> str:
    """A light French stemmer for a folded word: plural and feminine endings only.

    transports -> transport, électriques -> electriqu (as électrique), régionaux -> regional,
    bureaux -> bureau, collectives -> collectif, culturelles -> culturel. Short words are kept.
    """
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("eaux"):
        word = word[:-1]
    elif word.endswith("aux") and len(word) > 4:
        word = word[:-3] + "al"
    elif word[-1] in "sx":
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
        if word.endswith(_DOUBLED_FINALS):
            word = word[:-1]
        elif word.endswith("iv"):
            word = word[:-2] + "if"
    return word


def terms(text: str) -> list[str]:
    """The searchable words of `text`, in order: folded, stop words dropped, stemmed."""
    return [stem(word)[:TERM_LENGTH] for word in _WORD.findall(fold(text)) if word not in STOP_WORDS]


def _saturated(count: int, length: int, average: float) -> float:
    return count * (K1 + 1) / (count + K1 * (1 - B + B * length / average)) if count else 0.0


def term_rows(dataset_id: str, title: str, description: str, *, listed: bool) -> list[dict[str, Any]]:
    """The `dataset_terms` rows of a dataset: each of its words, its weight, whether the title holds it."""
    title_terms, description_terms = terms(title), terms(description or "")
    in_title, in_description = Counter(title_terms), Counter(description_terms)
    return [
        {
            "dataset_id": dataset_id, "term": term, "listed": listed, "in_title": term in in_title,
            "weight": round(
                TITLE_WEIGHT * _saturated(in_title[term], len(title_terms), AVERAGE_TITLE_TERMS)
                + DESCRIPTION_WEIGHT * _saturated(in_description[term], len(description_terms), AVERAGE_DESCRIPTION_TERMS),
                9,
            ),
        }
        for term in dict.fromkeys([*title_terms, *description_terms])
    ]


def index_dataset(conn: Connection, dataset_id: str, title: str, description: str, *, listed: bool) -> None:
    """Write a dataset's words anew (a new dataset, or a new title or description)."""
    before = _listed_terms(conn, dataset_id)
    conn.execute(delete(dataset_terms).where(dataset_terms.c.dataset_id == dataset_id))
    rows = term_rows(dataset_id, title, description, listed=listed)
    if rows:
        conn.execute(insert(dataset_terms), rows)
    after = {row["term"] for row in rows} if listed else set()
    _count_listed(conn, {**dict.fromkeys(before - after, -1), **dict.fromkeys(after - before, 1)})


def set_filters(
    conn: Connection, dataset_id: str, *, listed: bool, organization_id: str | None, license: str, formats: Iterable[str]
) -> None:
    """Copy the dataset's filters to its words' rows: whether it is on the public listing, its
    organization, its licence and its resources' (normalized) formats. Called by every write
    to a dataset (datasets.py), after `index_dataset` if its text changed."""
    moved = conn.scalars(select(dataset_terms.c.term).where(dataset_terms.c.dataset_id == dataset_id, dataset_terms.c.listed.is_not(listed)))
    _count_listed(conn, dict.fromkeys(moved, 1 if listed else -1))
    conn.execute(
        update(dataset_terms).where(dataset_terms.c.dataset_id == dataset_id).values(
            listed=listed, organization_id=organization_id, license=license, formats=formats_text(formats)
        )
    )


def _listed_terms(conn: Connection, dataset_id: str) -> set[str]:
    return set(conn.scalars(select(dataset_terms.c.term).where(dataset_terms.c.dataset_id == dataset_id, dataset_terms.c.listed.is_(True))))


def _count_listed(conn: Connection, changes: Mapping[str, int]) -> None:
    """Move `term_counts` by `changes` (word -> 1 or -1), in the words' order: writers sharing
    words lock their rows in one order and wait for each other, never in a circle."""
    if not changes:
        return
    statement = dialect_insert(conn, term_counts)
    upsert = statement.on_conflict_do_update(index_elements=[term_counts.c.term], set_={"listed": term_counts.c.listed + statement.excluded.listed})
    conn.execute(upsert, [{"term": term, "listed": changes[term]} for term in sorted(changes)])


def count_terms(conn: Connection) -> None:
    """`term_counts` anew from `dataset_terms` (after a bulk load that wrote the words' rows itself)."""
    conn.execute(delete(term_counts))
    listed = select(dataset_terms.c.term, func.count()).where(dataset_terms.c.listed.is_(True)).group_by(dataset_terms.c.term)
    conn.execute(insert(term_counts).from_select(["term", "listed"], listed))


# Control characters are refused in what the API stores (call.Call.json): none is in a format.
FORMAT_SEPARATOR = "\x1f"


def formats_text(formats: Iterable[str]) -> str:
    """`dataset_terms.formats`: each format between two separators, so that one is found whole."""
    return FORMAT_SEPARATOR + "".join(f"{value}{FORMAT_SEPARATOR}" for value in sorted(set(formats)))


def normal_format(value: str | None) -> str | None:
    """A resource format as the `resources.format` column holds it, and filters compare it."""
    return value.strip().lower() or None if value else None


_LIKE_ESCAPE = "/"


def format_pattern(format: str | None) -> str | None:
    """The LIKE pattern finding the normal `format` in `dataset_terms.formats` (`formats_text`)."""
    if format is None:
        return None
    escaped = "".join(f"{_LIKE_ESCAPE}{char}" if char in f"%_{_LIKE_ESCAPE}" else char for char in formats_text([format]))
    return f"%{escaped}%"


def is_listed(private: bool, deleted_at: Any) -> bool:
    return not private and deleted_at is None


_LISTED_COUNTS = select(term_counts.c.term, term_counts.c.listed).where(term_counts.c.term.in_(bindparam("words", expanding=True)))


def listed_counts(conn: Connection, words: list[str]) -> dict[str, int]:
    """How many listed datasets hold each of `words` (terms), in one statement."""
    found: dict[str, int] = dict(conn.execute(_LISTED_COUNTS, {"words": words}).all())
    return {word: found.get(word, 0) for word in words}


class _CrossJoin(Join):
    """SQLite's CROSS JOIN, its right table read through `index`: the same as JOIN but for the
    planner, which keeps the tables in the order written. Searches are driven by the words' rows,
    each match then looked up by its id. Left to itself, SQLite started from a filter's index (a
    licence: 25,000 rows at 100,000 datasets) and looked each row up in the matches: 10 to 1,000
    times slower. PostgreSQL plans the same query with a plain JOIN."""

    inherit_cache = True

    def __init__(self, left: FromClause, right: FromClause, onclause: ColumnElement[bool], index: str | None = None) -> None:
        super().__init__(left, right, onclause)
        self.index = index


@compiles(_CrossJoin, "sqlite")
def _render_cross_join(join: _CrossJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left, right, on = (compiler.process(part, **kw) for part in (join.left, join.right, join.onclause))
    indexed_by = f" INDEXED BY {join.index}" if join.index else ""
    return f"{left} CROSS JOIN {right}{indexed_by} ON {on}"


class Match:
    """The words of `q`, as a search binds them (`MatchStatement` holds the statement's parts).

    `words`: the query's distinct terms, the rarest first once `weigh` has read how many datasets
    hold each (the rarest drives the query: its rows are read, the others' looked up per match).
    A query with nothing searchable in it (stop words, punctuation) matches nothing.
    """

    def __init__(self, q: str) -> None:
        self.words = list(dict.fromkeys(terms(q)))
        self._idf: dict[str, float] = {word: 1.0 for word in self.words}

    def weigh(self, counts: Mapping[str, int]) -> None:
        """Given how many listed datasets hold each word (`listed_counts`; several words only):
        the rarest drives the query, and each word's weights count by its inverse document
        frequency, the rarer the more (BM25's, with the query's own words standing for the corpus)."""
        if len(self.words) < 2:
            return
        total = sum(counts[word] for word in self.words)
        self._idf = {word: math.log(1 + (total - counts[word] + 0.5) / (counts[word] + 0.5)) for word in self.words}
        self.words.sort(key=lambda word: counts[word])

    @property
    def searchable(self) -> bool:
        return bool(self.words)

    def params(self) -> dict[str, Any]:
        """The values of `MatchStatement(len(words))`'s parameters: each word and its weight, in order."""
        return {
            **{f"word_{index}": word for index, word in enumerate(self.words)},
            **{f"idf_{index}": self._idf[word] for index, word in enumerate(self.words)},
        }


class MatchStatement:
    """What a search for `count` words adds to a dataset query, the words bound by name (`word_0`,
    the one that drives the query, `word_1`... and their weights `idf_0`...: Match.params).

    `source` joins the words' rows (and, if asked, `datasets`); `dataset_id` is the matches' id,
    `listed` the public listing's condition read from the words' rows, `columns` what `order`
    ranks by.
    """

    def __init__(self, count: int) -> None:
        self._aliases = [dataset_terms.alias(f"term_{index}") for index in range(count)]

    @property
    def _driver(self) -> Any:
        return self._aliases[0]

    @property
    def dataset_id(self) -> Any:
        return self._driver.c.dataset_id

    @property
    def listed(self) -> ColumnElement[bool]:
        return self._driver.c.listed.is_(True)

    @property
    def listed_count(self) -> Any:
        """How many listed datasets hold the driving word (`term_counts`), as a scalar subquery."""
        return select(term_counts.c.listed).where(term_counts.c.term == bindparam("word_0")).scalar_subquery()

    @property
    def condition(self) -> ColumnElement[bool]:
        return self._driver.c.term == bindparam("word_0")

    def filters(self, *, organization: bool, license: bool, format: bool) -> list[ColumnElement[bool]]:
        """The public listing's filters, read from the driving word's rows (`set_filters`), bound
        as `organization_id`, `license` and `format_pattern` (`format_pattern`)."""
        driver = self._driver.c
        return [
            *([driver.organization_id == bindparam("organization_id")] if organization else []),
            *([driver.license == bindparam("license")] if license else []),
            *([driver.formats.like(bindparam("format_pattern"), escape=_LIKE_ESCAPE)] if format else []),
        ]

    def source(self, datasets: Any = None, index: str | None = None) -> FromClause:
        joined: FromClause = self._driver
        for position, alias in enumerate(self._aliases[1:], start=1):
            on = and_(alias.c.dataset_id == self.dataset_id, alias.c.term == bindparam(f"word_{position}"))
            joined = _CrossJoin(joined, alias, on, index=TERMS_BY_WORD_INDEX)
        if datasets is not None:
            joined = _CrossJoin(joined, datasets, datasets.c.id == self.dataset_id, index=index)
        return joined

    @property
    def columns(self) -> list[Any]:
        every_in_title = and_(*(alias.c.in_title.is_(True) for alias in self._aliases))
        score: Any = self._driver.c.weight if len(self._aliases) == 1 else sum(
            (alias.c.weight * bindparam(f"idf_{position}", type_=Float) for position, alias in enumerate(self._aliases)), literal(0.0)
        )
        return [case((every_in_title, 1), else_=0).label("title_hit"), score.label("score")]

    @staticmethod
    def order(ranked: Any) -> list[Any]:
        """The relevance order, each descending, on a subquery of the query that selected `columns`."""
        return [ranked.c.title_hit, ranked.c.score]

    @property
    def ranked_order(self) -> list[tuple[Any, bool]]:
        """One word's ranking, straight from its index (`term`, `listed`, `in_title`, `weight`, id):
        (column, descending) pairs."""
        driver = self._driver
        return [(driver.c.in_title, True), (driver.c.weight, True), (driver.c.dataset_id, True)]
