"""Organizations gain udata's `url` and `extras`, which its API lets their admins edit.

Revision ID: 0010_organization_url_and_extras
Revises: 0009_lighter_usage_log
Create Date: 2026-12-06

datagouv-client updates an organization (PUT /api/1/organizations/{org}/) and its extras
(PUT /api/2/organizations/{org}/extras/) as it does a dataset's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_organization_url_and_extras"
down_revision = "0009_lighter_usage_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("url", sa.String(255)))
        batch.add_column(sa.Column("extras", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("extras")
        batch.drop_column("url")
