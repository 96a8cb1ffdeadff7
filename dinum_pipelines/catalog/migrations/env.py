"""Alembic's entry point for the catalog's revisions.

Runs on the connection `db.upgrade_to_head` hands over in `config.attributes["connection"]` (the
catalog never migrates through a second engine), or, for `alembic` commands run by hand with
`-x url=...`, on an engine of its own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from dinum_pipelines.catalog.db import metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database with -x url=... (or use `dinum-catalog migrate`)")
    with create_engine(url).connect() as own_connection:
        _run(own_connection)
        own_connection.commit()
