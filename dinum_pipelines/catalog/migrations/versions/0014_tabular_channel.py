"""The row API's calls are counted on a channel of their own, `tabular` (issue 14): each metric
table gains its `..._tabular` column beside `_web`, `_api` and `_permalink`.

Revision ID: 0014_tabular_channel
Revises: 0013_change_notifications
Create Date: 2026-12-06

Metric tables are replaced whole by each push of the metrics pipeline, so existing rows get 0
and the next push fills the column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_tabular_channel"
down_revision = "0013_change_notifications"
branch_labels = None
depends_on = None

# table -> the download measure's column name before the channel ("monthly_" for monthly tables)
COLUMNS = {
    "metric_datasets": "monthly_download_resource_tabular",
    "metric_datasets_total": "download_resource_tabular",
    "metric_organizations": "monthly_download_resource_tabular",
    "metric_organizations_total": "download_resource_tabular",
    "metric_resources": "monthly_download_resource_tabular",
    "metric_resources_total": "download_resource_tabular",
}


def upgrade() -> None:
    for table, column in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    for table, column in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
