"""Usage metrics: sysadmins, the metric API's tables and the organizations' pushed metrics.

Revision ID: 0002_usage_metrics
Revises: 0001_initial
Create Date: 2026-11-23

Commit 26eb39f added these tables while the catalog still used `metadata.create_all`, so a
database from that time has them without an `alembic_version`: `db.upgrade_to_head` stamps such
a database here. The columns are those of lib/metrics/schema.py at that commit, written out
because a revision must not change when that module does (a change there needs a new revision).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_usage_metrics"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metric_datasets',
    sa.Column('row_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('metric_month', sa.String(length=36), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=False),
    sa.Column('monthly_visit', sa.BigInteger(), nullable=False),
    sa.Column('monthly_visit_web', sa.BigInteger(), nullable=False),
    sa.Column('monthly_visit_api', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_web', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_api', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_permalink', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('row_id'),
    sa.UniqueConstraint('metric_month', 'dataset_id')
    )
    op.create_index(op.f('ix_metric_datasets_dataset_id'), 'metric_datasets', ['dataset_id'], unique=False)
    op.create_index(op.f('ix_metric_datasets_metric_month'), 'metric_datasets', ['metric_month'], unique=False)
    op.create_table('metric_datasets_total',
    sa.Column('row_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=False),
    sa.Column('visit', sa.BigInteger(), nullable=False),
    sa.Column('visit_web', sa.BigInteger(), nullable=False),
    sa.Column('visit_api', sa.BigInteger(), nullable=False),
    sa.Column('download_resource', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_web', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_api', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_permalink', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('row_id'),
    sa.UniqueConstraint('dataset_id')
    )
    op.create_index(op.f('ix_metric_datasets_total_dataset_id'), 'metric_datasets_total', ['dataset_id'], unique=False)
    op.create_table('metric_organizations',
    sa.Column('row_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('metric_month', sa.String(length=36), nullable=False),
    sa.Column('organization_id', sa.String(length=36), nullable=False),
    sa.Column('monthly_visit_dataset', sa.BigInteger(), nullable=False),
    sa.Column('monthly_visit_dataset_web', sa.BigInteger(), nullable=False),
    sa.Column('monthly_visit_dataset_api', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_web', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_api', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_permalink', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('row_id'),
    sa.UniqueConstraint('metric_month', 'organization_id')
    )
    op.create_index(op.f('ix_metric_organizations_metric_month'), 'metric_organizations', ['metric_month'], unique=False)
    op.create_index(op.f('ix_metric_organizations_organization_id'), 'metric_organizations', ['organization_id'], unique=False)
    op.create_table('metric_organizations_total',
    sa.Column('row_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('organization_id', sa.String(length=36), nullable=False),
    sa.Column('visit_dataset', sa.BigInteger(), nullable=False),
    sa.Column('visit_dataset_web', sa.BigInteger(), nullable=False),
    sa.Column('visit_dataset_api', sa.BigInteger(), nullable=False),
    sa.Column('download_resource', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_web', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_api', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_permalink', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('row_id'),
    sa.UniqueConstraint('organization_id')
    )
    op.create_index(op.f('ix_metric_organizations_total_organization_id'), 'metric_organizations_total', ['organization_id'], unique=False)
    op.create_table('metric_resources',
    sa.Column('row_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('metric_month', sa.String(length=36), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=False),
    sa.Column('monthly_download_resource', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_web', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_api', sa.BigInteger(), nullable=False),
    sa.Column('monthly_download_resource_permalink', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('row_id'),
    sa.UniqueConstraint('metric_month', 'resource_id')
    )
    op.create_index(op.f('ix_metric_resources_metric_month'), 'metric_resources', ['metric_month'], unique=False)
    op.create_index(op.f('ix_metric_resources_resource_id'), 'metric_resources', ['resource_id'], unique=False)
    op.create_table('metric_resources_total',
    sa.Column('row_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=False),
    sa.Column('download_resource', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_web', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_api', sa.BigInteger(), nullable=False),
    sa.Column('download_resource_permalink', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('row_id'),
    sa.UniqueConstraint('resource_id')
    )
    op.create_index(op.f('ix_metric_resources_total_resource_id'), 'metric_resources_total', ['resource_id'], unique=False)
    op.create_table('organization_metrics',
    sa.Column('organization_id', sa.String(length=24), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('organization_id')
    )
    op.create_table('sysadmins',
    sa.Column('user_id', sa.String(length=24), nullable=False),
    sa.Column('granted_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )


def downgrade() -> None:
    op.drop_table('sysadmins')
    op.drop_table('organization_metrics')
    op.drop_table('metric_resources_total')
    op.drop_table('metric_resources')
    op.drop_table('metric_organizations_total')
    op.drop_table('metric_organizations')
    op.drop_table('metric_datasets_total')
    op.drop_table('metric_datasets')
