"""Each resource keeps its earlier files: one row per version (issue 14, part 3).

Revision ID: 0012_resource_versions
Revises: 0011_french_full_text_search
Create Date: 2026-12-06

No rows are written here: a resource uploaded before this revision gets its version 1 (its
current file) when its file is first replaced, and is listed as version 1 until then
(catalog/versions.py), so upgrading a large catalog is instant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_resource_versions"
down_revision = "0011_french_full_text_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_versions",
        sa.Column("resource_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("dataset_id", sa.String(24), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("file_key", sa.String(512), nullable=False, unique=True),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("filesize", sa.BigInteger(), nullable=False),
        sa.Column("mime", sa.String(255)),
        sa.Column("format", sa.String(64)),
        sa.Column("changes", sa.JSON()),
    )


def downgrade() -> None:
    op.drop_table("resource_versions")
