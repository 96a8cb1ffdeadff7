"""Columns for udata's `license` and `format` filters, copied out of the JSON documents.

Revision ID: 0003_search_columns
Revises: 0002_usage_metrics
Create Date: 2026-11-23

Filtering inside JSON is not portable between SQLite and PostgreSQL and cannot use an index, so
a dataset's licence moves from `doc` to its own column and a resource's format is mirrored in one
(the resource document stays whole: the API returns it as stored). Existing rows are backfilled.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_search_columns"
down_revision = "0002_usage_metrics"
branch_labels = None
depends_on = None

DEFAULT_LICENSE = "notspecified"
_datasets = sa.table("datasets", sa.column("id", sa.String), sa.column("doc", sa.JSON), sa.column("license", sa.String))
_resources = sa.table("resources", sa.column("id", sa.String), sa.column("doc", sa.JSON), sa.column("format", sa.String))


def upgrade() -> None:
    op.add_column("datasets", sa.Column("license", sa.String(64), nullable=False, server_default=DEFAULT_LICENSE))
    op.create_index(op.f("ix_datasets_license"), "datasets", ["license"], unique=False)
    op.add_column("resources", sa.Column("format", sa.String(64), nullable=True))
    op.create_index(op.f("ix_resources_format"), "resources", ["format"], unique=False)

    connection = op.get_bind()
    dataset_rows = connection.execute(sa.select(_datasets.c.id, _datasets.c.doc)).all()
    _update(connection, _datasets, [
        {"row_id": row.id, "license": row.doc.get("license") or DEFAULT_LICENSE,
         "doc": {key: value for key, value in row.doc.items() if key != "license"}}
        for row in dataset_rows
    ])
    resource_rows = connection.execute(sa.select(_resources.c.id, _resources.c.doc)).all()
    _update(connection, _resources, [
        {"row_id": row.id, "format": (row.doc.get("format") or "").lower() or None, "doc": row.doc}
        for row in resource_rows
    ])


def _update(connection: Any, table: sa.TableClause, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    values = {name: sa.bindparam(name) for name in rows[0] if name != "row_id"}
    connection.execute(table.update().where(table.c.id == sa.bindparam("row_id")).values(values), rows)


def downgrade() -> None:
    connection = op.get_bind()
    dataset_rows = connection.execute(sa.select(_datasets.c.id, _datasets.c.doc, _datasets.c.license)).all()
    _update(connection, _datasets, [
        {"row_id": row.id, "doc": {**row.doc, "license": row.license}} for row in dataset_rows
    ])
    with op.batch_alter_table("resources") as batch:
        batch.drop_index(op.f("ix_resources_format"))
        batch.drop_column("format")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_index(op.f("ix_datasets_license"))
        batch.drop_column("license")
