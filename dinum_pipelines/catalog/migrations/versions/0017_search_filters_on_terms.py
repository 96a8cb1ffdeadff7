"""A search with q checks its organization, licence and format filters on the words' rows.

Revision ID: 0017_search_filters_on_terms
Revises: 0016_stored_documents
Create Date: 2026-12-07

`dataset_terms` gains a copy of each dataset's organization, licence and resource formats
(search.set_filters writes them), and its ranked index ends with them: a word's matches are
filtered inside the index, where each was looked up in `datasets` and `resources` before.
Filled here from the existing datasets, a batch at a time.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from dinum_pipelines.catalog.search import formats_text

revision = "0017_search_filters_on_terms"
down_revision = "0016_stored_documents"
branch_labels = None
depends_on = None

_RANKED = ["term", "listed", "in_title", "weight", "dataset_id"]
_FILTERS = ["organization_id", "license", "formats"]
_datasets = sa.table("datasets", sa.column("id", sa.String), sa.column("organization_id", sa.String), sa.column("license", sa.String))
_resources = sa.table("resources", sa.column("dataset_id", sa.String), sa.column("format", sa.String))
_terms = sa.table(
    "dataset_terms", sa.column("dataset_id", sa.String),
    *(sa.column(name, sa.String) for name in _FILTERS),
)
_BATCH = 1000


def upgrade() -> None:
    connection = op.get_bind()
    # Plain ALTER TABLEs: a batch operation could rebuild the table, and SQLite's without its WITHOUT ROWID.
    op.add_column("dataset_terms", sa.Column("organization_id", sa.String(24)))
    op.add_column("dataset_terms", sa.Column("license", sa.String(64)))
    op.add_column("dataset_terms", sa.Column("formats", sa.Text()))
    fill = (
        sa.update(_terms).where(_terms.c.dataset_id == sa.bindparam("b_id"))
        .values(**{name: sa.bindparam(f"b_{name}") for name in _FILTERS})
    )
    rows = connection.execute(sa.select(_datasets.c.id, _datasets.c.organization_id, _datasets.c.license).order_by(_datasets.c.id))
    while batch_rows := rows.fetchmany(_BATCH):
        formats: dict[str, set[str]] = defaultdict(set)
        ids = [row.id for row in batch_rows]
        found = sa.select(_resources.c.dataset_id, _resources.c.format).where(_resources.c.dataset_id.in_(ids), _resources.c.format.is_not(None))
        for dataset_id, value in connection.execute(found):
            formats[dataset_id].add(value)
        connection.execute(fill, [
            {"b_id": row.id, "b_organization_id": row.organization_id, "b_license": row.license, "b_formats": formats_text(formats[row.id])}
            for row in batch_rows
        ])
    op.drop_index("ix_dataset_terms_ranked", table_name="dataset_terms")
    op.create_index("ix_dataset_terms_ranked", "dataset_terms", [*_RANKED, *_FILTERS])


def downgrade() -> None:
    op.drop_index("ix_dataset_terms_ranked", table_name="dataset_terms")
    op.create_index("ix_dataset_terms_ranked", "dataset_terms", _RANKED)
    for name in _FILTERS:
        op.drop_column("dataset_terms", name)
