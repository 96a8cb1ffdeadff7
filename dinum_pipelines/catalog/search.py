"""udata's `q` as a French full-text search, on the database engine the catalog runs on.

data.gouv.fr answers `q` with Elasticsearch; we answer it with what we already run (revision
0011). A dataset matches when every searched word is in its title or description, as a word,
whatever its case, accents, plural or feminine form; matches come ranked, a dataset whose title
holds every word first, then by the engine's relevance score.

- PostgreSQL: `search_vector`, a generated tsvector column (title weighted A, description B)
  under the `french_unaccent` text search configuration (French snowball stemmer after
  `unaccent`), a GIN index on it, `websearch_to_tsquery` for the query and `ts_rank_cd`.
- SQLite: an FTS5 table `datasets_fts` (title, description), filled by triggers from
  `datasets.search_text`, which holds the two texts normalized here in Python (`terms`): folded,
  French stop words dropped, a light stemmer for plural and feminine endings. Queries go through
  the same function, and are ranked by bm25 with the title weighted over the description.

The two stemmers differ (snowball is more aggressive), so a few words match on one engine and
not on the other; the rules the relevance tests pin hold on both. `search_text` is stored: a
change to `terms` needs a revision that recomputes it for existing rows, as 0011 does.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Join, Label, Table, bindparam, case, column, func, literal_column, select, table
from sqlalchemy.ext.compiler import compiles

from dinum_pipelines.catalog.ids import fold

# PostgreSQL
TEXT_SEARCH_CONFIG = "french_unaccent"
SEARCH_VECTOR = "search_vector"
# ts_rank_cd's weights for D, C, B, A: the title (A) counts 2.5 times the description (B).
_PG_WEIGHTS = "{0.1, 0.2, 0.4, 1.0}"

# SQLite: the FTS5 table and the one numbering the datasets for it (revision 0006)
datasets_fts = table("datasets_fts", column("rowid"), column("title"), column("description"))
datasets_search_ids = table("datasets_search_ids", column("id"), column("dataset_id"))
# bm25's weights for the FTS5 columns (title, description).
_BM25_TITLE_WEIGHT, _BM25_DESCRIPTION_WEIGHT = 4.0, 1.0
_DATASETS_BY_ID = "ix_datasets_listed_with_id"  # (id, private, deleted_at): db.py

_WORD = re.compile(r"[^\W_]+")
# Words too common to tell datasets apart; dropped from texts and queries alike.
STOP_WORDS = frozenset(
    "a au aux avec ce ces cet cette d dans de des du elle en et il ils l la le les leur leurs lui ma "
    "mais me mes n ne nos notre nous on ou par pas pour qu que qui s sa se ses son sur t ta te tes "
    "un une vos votre vous y".split()
)
_DOUBLED_FINALS = ("ll", "nn", "tt")  # "culturelle" -> "culturel", "ancienne" -> "ancien", "nette" -> "net"


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
    return [stem(word) for word in _WORD.findall(fold(text)) if word not in STOP_WORDS]


def search_text(title: str, description: str) -> str:
    """`datasets.search_text`: the title's terms, a newline, the description's (SQLite's triggers
    split them into the FTS5 table's two columns)."""
    return " ".join(terms(title)) + "\n" + " ".join(terms(description or ""))


class _CrossJoin(Join):
    """SQLite's CROSS JOIN, its right table read through `index`: the same as JOIN but for the
    planner, which keeps the tables in the order written. Searches are driven by the full-text
    matches, each looked up in `datasets` by its id. Left to itself, SQLite started from a filter's
    index (a licence: 25,000 rows at 100,000 datasets) and looked each row up in the matches, or
    read `datasets` through the organization's index for every match: 10 to 1,000 times slower."""

    inherit_cache = True

    def __init__(self, left: FromClause, right: FromClause, onclause: ColumnElement[bool], index: str | None = None) -> None:
        super().__init__(left, right, onclause)
        self.index = index


@compiles(_CrossJoin)
def _render_cross_join(join: _CrossJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left, right, on = (compiler.process(part, **kw) for part in (join.left, join.right, join.onclause))
    indexed_by = f" INDEXED BY {join.index}" if join.index else ""
    return f"{left} CROSS JOIN {right}{indexed_by} ON {on}"


class Match:
    """What a search for `q` adds to a dataset query: `condition`, and the `columns` that `order`
    ranks the matches by. On SQLite the query must select from `source` (the matches, then `datasets`); on
    PostgreSQL `source` is `datasets` itself.
    """

    def __init__(self, dialect: str, q: str, datasets: Table) -> None:
        self.source: FromClause = datasets
        if dialect == "postgresql":
            query = func.websearch_to_tsquery(literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig"), bindparam("q", q))
            vector = literal_column(f"datasets.{SEARCH_VECTOR}")
            self.condition: ColumnElement[bool] = vector.op("@@")(query)
            title_hit = func.ts_filter(vector, literal_column("'{a}'::\"char\"[]")).op("@@")(query)
            score = func.ts_rank_cd(literal_column(f"'{_PG_WEIGHTS}'::float4[]"), vector, query)
            self._rank_by(case((title_hit, 1), else_=0), score, lower_scores_first=False)
            return
        words = terms(q)
        if not words:  # nothing searchable in q (stop words, punctuation): nothing matches
            self.condition = datasets.c.id.is_(None)
            self._rank_by(literal_column("0"), literal_column("0"), lower_scores_first=True)
            return
        # Terms are letters and digits only: quoting them is enough for FTS5's syntax.
        expression = " AND ".join(f'"{word}"' for word in words)
        fts = literal_column(datasets_fts.name)
        self.source = _CrossJoin(
            _CrossJoin(datasets_fts, datasets_search_ids, datasets_search_ids.c.id == datasets_fts.c.rowid),
            datasets, datasets.c.id == datasets_search_ids.c.dataset_id, index=_DATASETS_BY_ID,
        )
        self.condition = fts.match(expression)
        in_title = select(datasets_fts.c.rowid).where(fts.match(f"title : ({expression})"))
        score = func.bm25(fts, _BM25_TITLE_WEIGHT, _BM25_DESCRIPTION_WEIGHT)
        self._rank_by(case((datasets_fts.c.rowid.in_(in_title), 1), else_=0), score, lower_scores_first=True)  # bm25: lower is better

    def _rank_by(self, title_hit: ColumnElement[int], score: ColumnElement[float], *, lower_scores_first: bool) -> None:
        self.columns: list[Label[Any]] = [title_hit.label("title_hit"), score.label("score")]
        self.lower_scores_first = lower_scores_first

    def order(self, ranked: Any) -> list[Any]:
        """The relevance ORDER BY, on a subquery of the query that selected `columns`."""
        return [ranked.c.title_hit.desc(), ranked.c.score.asc() if self.lower_scores_first else ranked.c.score.desc()]
