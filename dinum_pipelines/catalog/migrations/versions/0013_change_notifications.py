"""Change notifications: webhook subscriptions and their deliveries (issue 14, part 4).

Revision ID: 0013_change_notifications
Revises: 0012_resource_versions
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0013_change_notifications"
down_revision = "0012_resource_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
