"""Change notifications: the change log, webhook subscriptions and their deliveries (issue 14, part 4).

Revision ID: 0013_change_notifications
Revises: 0012_resource_versions
Create Date: 2026-12-06

Three new tables (db.py: `changes`, `webhooks`, `webhook_deliveries`); nothing existing changes.
Publications made before this revision have no rows: the feeds start empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_change_notifications"
down_revision = "0012_resource_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("dataset_id", sa.String(24), nullable=False),
        sa.Column("organization_id", sa.String(24)),
        sa.Column("resource_id", sa.String(36)),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index("ix_changes_dataset_id", "changes", ["dataset_id"])
    op.create_index("ix_changes_organization_id", "changes", ["organization_id"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("user_id", sa.String(24), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("dataset_id", sa.String(24)),
        sa.Column("organization_id", sa.String(24)),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_webhooks_user_id", "webhooks", ["user_id"])
    op.create_index("ix_webhooks_dataset_id", "webhooks", ["dataset_id"])
    op.create_index("ix_webhooks_organization_id", "webhooks", ["organization_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("webhook_id", sa.String(24), sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("change_id", sa.Integer(), sa.ForeignKey("changes.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime()),
        sa.Column("delivered_at", sa.DateTime()),
    )
    op.create_index("ix_webhook_deliveries_webhook_id", "webhook_deliveries", ["webhook_id"])
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("changes")
