"""Each resource keeps its earlier files: one row per version (issue 14, part 3).

Revision ID: 0012_resource_versions
Revises: 0011_french_full_text_search
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0012_resource_versions"
down_revision = "0011_french_full_text_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
