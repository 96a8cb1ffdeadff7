"""The `format` filter's index also holds the dataset id.

Revision ID: 0005_format_covering_index
Revises: 0004_listing_indexes
Create Date: 2026-11-23

`id IN (SELECT dataset_id FROM resources WHERE format = ?)` looked each matching resource up in
its wide row to read `dataset_id` (17 ms for `format=csv` at 10,000 datasets on SQLite); with
`(format, dataset_id)` the subquery reads the index alone.
"""

from __future__ import annotations

from alembic import op

revision = "0005_format_covering_index"
down_revision = "0004_listing_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_resources_format", table_name="resources")
    op.create_index("ix_resources_format_dataset", "resources", ["format", "dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_resources_format_dataset", table_name="resources")
    op.create_index("ix_resources_format", "resources", ["format"])
