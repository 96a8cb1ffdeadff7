"""Indexes for the public dataset listing, one per column sort order.

Revision ID: 0004_listing_indexes
Revises: 0003_search_columns
Create Date: 2026-11-23

Every listing filters `private = false AND deleted_at IS NULL` and sorts by a column then id. With
one index per column, SQLite picked `ix_datasets_private`, read every wide row and sorted them
(40 ms at 10,000 datasets); `(private, deleted_at, <sort column>, id)` serves the page and the
count from one index range. The single-column indexes it replaces only misled the planner.
"""

from __future__ import annotations

from alembic import op

revision = "0004_listing_indexes"
down_revision = "0003_search_columns"
branch_labels = None
depends_on = None

SORT_COLUMNS = ("created_at", "last_update", "last_modified", "title")
REPLACED = ("private", "deleted_at", "created_at", "last_modified", "last_update")


def upgrade() -> None:
    for column in REPLACED:
        op.drop_index(f"ix_datasets_{column}", table_name="datasets")
    for column in SORT_COLUMNS:
        op.create_index(f"ix_datasets_listed_by_{column}", "datasets", ["private", "deleted_at", column, "id"])


def downgrade() -> None:
    for column in SORT_COLUMNS:
        op.drop_index(f"ix_datasets_listed_by_{column}", table_name="datasets")
    for column in REPLACED:
        op.create_index(f"ix_datasets_{column}", "datasets", [column])
