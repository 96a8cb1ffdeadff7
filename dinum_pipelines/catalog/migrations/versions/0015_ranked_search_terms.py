"""`q` answered from an index of the datasets' words, ranked when written (catalog/search.py).

Revision ID: 0015_ranked_search_terms
Revises: 0014_tabular_channel
Create Date: 2026-12-07

Revision 0011's indexes (FTS5 on SQLite, a tsvector on PostgreSQL) found the matches of a word at
once, but every search read and scored every match: 40 ms for a typical word at 100,000 datasets,
500 ms for a common one, each first answer. They are replaced, on both engines, by one table,
`dataset_terms`: one row per (dataset, word), with the word's weight in the dataset and whether
the dataset is listed, filled here from the existing datasets. The FTS5 table, its triggers and
`datasets_search_ids` (SQLite), the generated `search_vector` column, its index and the
`french_unaccent` configuration (PostgreSQL), and `datasets.search_text`, which fed FTS5, go.

A partial index on the unlisted datasets (private or deleted) lets a tag's or a format's count
subtract the few unlisted members from all of them (datasets.public_members).
"""

from __future__ import annotations

from importlib import import_module

import sqlalchemy as sa
from alembic import op

from dinum_pipelines.catalog.search import is_listed, term_rows

revision = "0015_ranked_search_terms"
down_revision = "0014_tabular_channel"
branch_labels = None
depends_on = None

_revision_0011 = import_module("dinum_pipelines.catalog.migrations.versions.0011_french_full_text_search")
_datasets = sa.table(
    "datasets", sa.column("id", sa.String), sa.column("title", sa.String), sa.column("description", sa.Text),
    sa.column("private", sa.Boolean), sa.column("deleted_at", sa.DateTime), sa.column("search_text", sa.Text),
)
_BATCH = 2000


def upgrade() -> None:
    connection = op.get_bind()
    terms = op.create_table(
        "dataset_terms",
        sa.Column("dataset_id", sa.String(24), sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("term", sa.String(64), primary_key=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("in_title", sa.Boolean(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_dataset_terms_ranked", "dataset_terms", ["term", "listed", "in_title", "weight", "dataset_id"])
    unlisted = sa.text("(private OR deleted_at IS NOT NULL)")
    op.create_index("ix_datasets_unlisted", "datasets", ["id"], sqlite_where=unlisted, postgresql_where=unlisted)
    rows = connection.execute(sa.select(_datasets.c.id, _datasets.c.title, _datasets.c.description, _datasets.c.private, _datasets.c.deleted_at))
    while batch := rows.fetchmany(_BATCH):
        values = [
            value for row in batch
            for value in term_rows(row.id, row.title, row.description, listed=is_listed(row.private, row.deleted_at))
        ]
        if values:
            connection.execute(sa.insert(terms), values)
    if connection.dialect.name == "sqlite":
        for name in _revision_0011.SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE datasets_fts")
        op.execute("DROP TABLE datasets_search_ids")
        op.execute("ALTER TABLE datasets DROP COLUMN search_text")
    elif connection.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE datasets DROP COLUMN {_revision_0011.SEARCH_VECTOR}")
        op.execute(f"DROP TEXT SEARCH CONFIGURATION {_revision_0011.TEXT_SEARCH_CONFIG}")
        op.drop_column("datasets", "search_text")


def downgrade() -> None:
    """Revision 0011's indexes, built again from the datasets' texts."""
    connection = op.get_bind()
    op.add_column("datasets", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    _revision_0011.rewrite_search_text(connection, _revision_0011.search_text)
    if connection.dialect.name == "sqlite":
        op.execute("CREATE TABLE datasets_search_ids (id INTEGER PRIMARY KEY, dataset_id VARCHAR(24) NOT NULL UNIQUE)")
        op.execute("INSERT INTO datasets_search_ids (dataset_id) SELECT id FROM datasets")
        _revision_0011.create_sqlite_fts()
    elif connection.dialect.name == "postgresql":
        _revision_0011.create_postgresql_vector()
    op.drop_table("dataset_terms")
    op.drop_index("ix_datasets_unlisted", table_name="datasets")
