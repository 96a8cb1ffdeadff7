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
not on the other; the rules the relevance tests pin hold on both.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, column, func, literal_column, select, table

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


class Match:
    """The condition a dataset matching `q` meets, and the ORDER BY ranking the matches.

    `dataset_ids` is None on PostgreSQL (the condition is on `datasets` itself); on SQLite it is
    the ranked matches' subquery (dataset_id, title_hit, score) that the caller joins.
    """

    def __init__(self, dialect: str, q: str, id_column: Any) -> None:
        self.dialect = dialect
        if dialect == "postgresql":
            query = func.websearch_to_tsquery(literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig"), bindparam("q", q))
            vector = literal_column(f"datasets.{SEARCH_VECTOR}")
            self.condition: ColumnElement[bool] = vector.op("@@")(query)
            title_hit = func.ts_filter(vector, literal_column("'{a}'::\"char\"[]")).op("@@")(query)
            score = func.ts_rank_cd(literal_column(f"'{_PG_WEIGHTS}'::float4[]"), vector, query)
            self.order = [case((title_hit, 1), else_=0).desc(), score.desc()]
            self.ranked = None
            return
        words = terms(q)
        if not words:  # nothing searchable in q (stop words, punctuation): nothing matches
            self.condition = id_column.is_(None)
            self.order = []
            self.ranked = None
            return
        # Terms are letters and digits only: quoting them is enough for FTS5's syntax.
        expression = " AND ".join(f'"{word}"' for word in words)
        fts = literal_column(datasets_fts.name)
        in_title = select(datasets_fts.c.rowid).where(fts.match(f"title : ({expression})"))
        score = func.bm25(fts, _BM25_TITLE_WEIGHT, _BM25_DESCRIPTION_WEIGHT)
        self.ranked = (
            select(
                datasets_search_ids.c.dataset_id,
                case((datasets_search_ids.c.id.in_(in_title), 1), else_=0).label("title_hit"),
                score.label("score"),
            )
            .select_from(datasets_fts.join(datasets_search_ids, datasets_search_ids.c.id == datasets_fts.c.rowid))
            .where(fts.match(expression))
            .subquery("matches")
        )
        matching_rows = select(datasets_fts.c.rowid).where(fts.match(expression))
        self.condition = id_column.in_(
            select(datasets_search_ids.c.dataset_id).where(datasets_search_ids.c.id.in_(matching_rows))
        )
        self.order = [self.ranked.c.title_hit.desc(), self.ranked.c.score.asc()]  # bm25: lower is better
