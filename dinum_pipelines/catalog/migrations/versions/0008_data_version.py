"""A data version every write to what the API shows moves, for caches shared by nothing.

Revision ID: 0008_data_version
Revises: 0007_partial_listing_indexes
Create Date: 2026-11-23

Catalog processes (`serve --workers N`) cache anonymous listing pages keyed on this number: one
indexed read tells a process whether anything was written since, by any process. The row is
created by the first write (an upsert), so the table starts empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_data_version"
down_revision = "0007_partial_listing_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("data_version")
