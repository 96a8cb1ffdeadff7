"""An index for `q`, a `views` column for `sort=-views`, filter indexes that win on SQLite.

Revision ID: 0006_search_index_and_views
Revises: 0005_format_covering_index
Create Date: 2026-11-23

`q` matches datasets whose folded title and description (`search_text`) contain the folded query
anywhere, words or parts of words (`LIKE '%q%'`): no B-tree helps, every search read all 10,000
rows (~23 ms). Trigram indexes answer exactly that question, so the semantics stay as they are:

- SQLite: an FTS5 table `datasets_search` with the trigram tokenizer, kept in step with
  `datasets.search_text` by triggers; a quoted phrase query matches a substring.
  `datasets_search_ids` numbers the datasets for it. FTS5 cannot
  index fewer than 3 characters: shorter queries still scan (datasets.py).
- PostgreSQL: `pg_trgm` and a GIN index on `search_text`, which `LIKE '%q%'` uses as is.

Neither object is in db.py's metadata (SQLAlchemy has no type for them): `db.SEARCH_INDEX_OBJECTS`
names them, the schema comparison skips them, and `db.missing_search_index_objects` checks them.
A later batch migration of `datasets` on SQLite (table copied and renamed) drops the triggers:
it must recreate them (`create_sqlite_triggers` here).

`views` copies `doc.metrics.views` (written with the document: datasets.py, metrics_api.py) so
the most-viewed listing reads an index instead of extracting JSON from every row (~40 ms).

The `organization` and `license` filters' indexes get the listing columns (`private`,
`deleted_at`) after their own: SQLite, without statistics, preferred a listing index matching two
equalities to `ix_datasets_organization_id` matching one, and counted by reading every row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_search_index_and_views"
down_revision = "0005_format_covering_index"
branch_labels = None
depends_on = None

FILTER_COLUMNS = ("organization_id", "license")
_datasets = sa.table("datasets", sa.column("id", sa.String), sa.column("doc", sa.JSON), sa.column("views", sa.BigInteger))

# FTS5 rows are numbered; datasets_search_ids gives each dataset a number of its own (the implicit
# rowid of `datasets` is not stable: VACUUM may renumber a table without an INTEGER PRIMARY KEY).
# Reading a match's dataset id from this narrow table is 3x faster than from the FTS5 content.
SQLITE_TRIGGERS = {
    "datasets_search_insert": """
        CREATE TRIGGER datasets_search_insert AFTER INSERT ON datasets BEGIN
            INSERT INTO datasets_search_ids (dataset_id) VALUES (new.id);
            INSERT INTO datasets_search (rowid, search_text)
                SELECT id, new.search_text FROM datasets_search_ids WHERE dataset_id = new.id;
        END""",
    "datasets_search_update": """
        CREATE TRIGGER datasets_search_update AFTER UPDATE OF search_text ON datasets BEGIN
            DELETE FROM datasets_search WHERE rowid = (SELECT id FROM datasets_search_ids WHERE dataset_id = old.id);
            INSERT INTO datasets_search (rowid, search_text)
                SELECT id, new.search_text FROM datasets_search_ids WHERE dataset_id = old.id;
        END""",
    "datasets_search_delete": """
        CREATE TRIGGER datasets_search_delete AFTER DELETE ON datasets BEGIN
            DELETE FROM datasets_search WHERE rowid = (SELECT id FROM datasets_search_ids WHERE dataset_id = old.id);
            DELETE FROM datasets_search_ids WHERE dataset_id = old.id;
        END""",
}


def create_sqlite_triggers() -> None:
    for statement in SQLITE_TRIGGERS.values():
        op.execute(statement)


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("views", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_datasets_listed_by_views", "datasets", ["private", "deleted_at", "views", "id"])
    for column in FILTER_COLUMNS:
        op.drop_index(f"ix_datasets_{column}", table_name="datasets")
        op.create_index(f"ix_datasets_listed_with_{column}", "datasets", [column, "private", "deleted_at"])
    connection = op.get_bind()
    rows = [
        {"row_id": row.id, "views": int(((row.doc or {}).get("metrics") or {}).get("views") or 0)}
        for row in connection.execute(sa.select(_datasets.c.id, _datasets.c.doc))
    ]
    if rows:
        connection.execute(_datasets.update().where(_datasets.c.id == sa.bindparam("row_id")).values(views=sa.bindparam("views")), rows)

    if connection.dialect.name == "sqlite":
        op.execute("CREATE TABLE datasets_search_ids (id INTEGER PRIMARY KEY, dataset_id VARCHAR(24) NOT NULL UNIQUE)")
        op.execute("CREATE VIRTUAL TABLE datasets_search USING fts5(search_text, tokenize='trigram')")
        op.execute("INSERT INTO datasets_search_ids (dataset_id) SELECT id FROM datasets")
        op.execute(
            "INSERT INTO datasets_search (rowid, search_text) "
            "SELECT ids.id, datasets.search_text FROM datasets JOIN datasets_search_ids AS ids ON ids.dataset_id = datasets.id"
        )
        create_sqlite_triggers()
    elif connection.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_datasets_search_text_trgm ON datasets USING gin (search_text gin_trgm_ops)")


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE datasets_search")
        op.execute("DROP TABLE datasets_search_ids")
    elif connection.dialect.name == "postgresql":
        op.execute("DROP INDEX ix_datasets_search_text_trgm")
    op.drop_index("ix_datasets_listed_by_views", table_name="datasets")
    for column in FILTER_COLUMNS:
        op.drop_index(f"ix_datasets_listed_with_{column}", table_name="datasets")
        op.create_index(f"ix_datasets_{column}", "datasets", [column])
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("views")
