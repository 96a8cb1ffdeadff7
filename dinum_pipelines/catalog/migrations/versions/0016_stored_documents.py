"""Each dataset's udata document, stored when the dataset is written (catalog/documents.py).

Revision ID: 0016_stored_documents
Revises: 0015_ranked_search_terms
Create Date: 2026-12-07

The table starts empty: a dataset without a document is rendered when read, as before, and
`dinum-catalog serve` renders the missing ones in the background when it starts
(`Datasets.store_missing_documents`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_stored_documents"
down_revision = "0015_ranked_search_terms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_documents",
        sa.Column("dataset_id", sa.String(24), sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("valid_until", sa.DateTime()),
    )


def downgrade() -> None:
    op.drop_table("dataset_documents")
