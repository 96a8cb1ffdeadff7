"""`q` becomes a French full-text search ranked by relevance (catalog/search.py).

Revision ID: 0011_french_full_text_search
Revises: 0010_organization_url_and_extras
Create Date: 2026-12-06

The trigram index of revision 0006 answered "does the folded text contain this substring": no
stemming (`transports` missed `transport`), no ranking, and at 100,000 datasets a common word
matched tens of thousands of rows in arbitrary order. It is replaced by:

- PostgreSQL: the `unaccent` extension (trusted since PostgreSQL 13: a database owner may create
  it), a text search configuration `french_unaccent` (French snowball stemmer after unaccent), a
  stored generated column `search_vector` (title weight A, description B) and a GIN index on it.
  The generated column fills itself for existing rows and follows every write.
- Both: the index on `id` gets the filter columns (`organization_id`, `license`) after the
  listing ones, so that a search checks its matches against the filters from the index alone.
- SQLite: `search_text` now holds search.search_text(title, description) (recomputed here for
  existing rows), and an FTS5 table `datasets_fts` (title, description; unicode61 tokenizer)
  filled from it by triggers; `datasets_search_ids` (revision 0006) still numbers the datasets.

Neither is in db.py's metadata (db.SEARCH_INDEX_OBJECTS names them). A later batch migration of
`datasets` on SQLite (table copied and renamed) drops the triggers: it must recreate them
(`create_sqlite_triggers` here).
"""

from __future__ import annotations

from importlib import import_module

import sqlalchemy as sa
from alembic import op

from dinum_pipelines.catalog.ids import fold
from dinum_pipelines.catalog.search import terms

# This revision's index, replaced by revision 0015's.
TEXT_SEARCH_CONFIG = "french_unaccent"
SEARCH_VECTOR = "search_vector"


def search_text(title: str, description: str) -> str:
    """`datasets.search_text`: the title's terms, a newline, the description's (the triggers split them)."""
    return " ".join(terms(title)) + "\n" + " ".join(terms(description or ""))

revision = "0011_french_full_text_search"
down_revision = "0010_organization_url_and_extras"
branch_labels = None
depends_on = None

_datasets = sa.table(
    "datasets", sa.column("id", sa.String), sa.column("title", sa.String), sa.column("description", sa.Text),
    sa.column("search_text", sa.Text),
)
_BATCH = 2000

# search_text is "<title terms>\n<description terms>": the triggers split it at the newline.
_TITLE = "substr(new.search_text, 1, instr(new.search_text, char(10)) - 1)"
_DESCRIPTION = "substr(new.search_text, instr(new.search_text, char(10)) + 1)"
SQLITE_TRIGGERS = {
    "datasets_fts_insert": f"""
        CREATE TRIGGER datasets_fts_insert AFTER INSERT ON datasets BEGIN
            INSERT INTO datasets_search_ids (dataset_id) VALUES (new.id);
            INSERT INTO datasets_fts (rowid, title, description)
                SELECT id, {_TITLE}, {_DESCRIPTION} FROM datasets_search_ids WHERE dataset_id = new.id;
        END""",
    "datasets_fts_update": f"""
        CREATE TRIGGER datasets_fts_update AFTER UPDATE OF search_text ON datasets BEGIN
            DELETE FROM datasets_fts WHERE rowid = (SELECT id FROM datasets_search_ids WHERE dataset_id = old.id);
            INSERT INTO datasets_fts (rowid, title, description)
                SELECT id, {_TITLE}, {_DESCRIPTION} FROM datasets_search_ids WHERE dataset_id = old.id;
        END""",
    "datasets_fts_delete": """
        CREATE TRIGGER datasets_fts_delete AFTER DELETE ON datasets BEGIN
            DELETE FROM datasets_fts WHERE rowid = (SELECT id FROM datasets_search_ids WHERE dataset_id = old.id);
            DELETE FROM datasets_search_ids WHERE dataset_id = old.id;
        END""",
}
_OLD_SQLITE_TRIGGERS = ("datasets_search_insert", "datasets_search_update", "datasets_search_delete")


def create_sqlite_triggers() -> None:
    for statement in SQLITE_TRIGGERS.values():
        op.execute(statement)


def rewrite_search_text(connection: sa.Connection, compute: object) -> None:
    rows = connection.execute(sa.select(_datasets.c.id, _datasets.c.title, _datasets.c.description)).all()
    for start in range(0, len(rows), _BATCH):
        connection.execute(
            _datasets.update().where(_datasets.c.id == sa.bindparam("row_id")).values(search_text=sa.bindparam("text")),
            [{"row_id": row.id, "text": compute(row.title, row.description)} for row in rows[start : start + _BATCH]],  # type: ignore[operator]
        )


# Searches read each match's filter columns from the id's index (db.py).
_BY_ID_INDEX = "ix_datasets_listed_with_id"
_BY_ID_BEFORE = ("id", "private", "deleted_at")
_BY_ID_AFTER = (*_BY_ID_BEFORE, "organization_id", "license")


def _replace_by_id_index(columns: tuple[str, ...]) -> None:
    op.drop_index(_BY_ID_INDEX, table_name="datasets")
    op.create_index(_BY_ID_INDEX, "datasets", list(columns))


def upgrade() -> None:
    connection = op.get_bind()
    rewrite_search_text(connection, search_text)
    _replace_by_id_index(_BY_ID_AFTER)
    if connection.dialect.name == "sqlite":
        for name in _OLD_SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE datasets_search")
        create_sqlite_fts()
    elif connection.dialect.name == "postgresql":
        op.execute("DROP INDEX ix_datasets_search_text_trgm")
        create_postgresql_vector()


def create_sqlite_fts() -> None:
    """The FTS5 table, filled from `search_text`, and the triggers that keep it (revision 0015's downgrade too)."""
    op.execute("CREATE VIRTUAL TABLE datasets_fts USING fts5(title, description, tokenize='unicode61')")
    op.execute(
        f"INSERT INTO datasets_fts (rowid, title, description) "
        f"SELECT ids.id, {_TITLE.replace('new.', 'datasets.')}, {_DESCRIPTION.replace('new.', 'datasets.')} "
        "FROM datasets JOIN datasets_search_ids AS ids ON ids.dataset_id = datasets.id"
    )
    create_sqlite_triggers()


def create_postgresql_vector() -> None:
    """The text search configuration, the generated tsvector and its index (revision 0015's downgrade too)."""
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute(f"CREATE TEXT SEARCH CONFIGURATION {TEXT_SEARCH_CONFIG} (COPY = french)")
    op.execute(
        f"ALTER TEXT SEARCH CONFIGURATION {TEXT_SEARCH_CONFIG} "
        "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, french_stem"
    )
    op.execute(
        f"ALTER TABLE datasets ADD COLUMN {SEARCH_VECTOR} tsvector GENERATED ALWAYS AS ("
        f"setweight(to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, title), 'A') || "
        f"setweight(to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, description), 'B')) STORED"
    )
    op.execute(f"CREATE INDEX ix_datasets_{SEARCH_VECTOR} ON datasets USING gin ({SEARCH_VECTOR})")


def downgrade() -> None:
    connection = op.get_bind()
    _replace_by_id_index(_BY_ID_BEFORE)
    rewrite_search_text(connection, lambda title, description: fold(f"{title}\n{description}"))
    if connection.dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE datasets_fts")
        op.execute("CREATE VIRTUAL TABLE datasets_search USING fts5(search_text, tokenize='trigram')")
        op.execute(
            "INSERT INTO datasets_search (rowid, search_text) "
            "SELECT ids.id, datasets.search_text FROM datasets JOIN datasets_search_ids AS ids ON ids.dataset_id = datasets.id"
        )
        for statement in import_module("dinum_pipelines.catalog.migrations.versions.0006_search_index_and_views").SQLITE_TRIGGERS.values():
            op.execute(statement)
    elif connection.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE datasets DROP COLUMN {SEARCH_VECTOR}")
        op.execute(f"DROP TEXT SEARCH CONFIGURATION {TEXT_SEARCH_CONFIG}")
        op.execute("CREATE INDEX ix_datasets_search_text_trgm ON datasets USING gin (search_text gin_trgm_ops)")
