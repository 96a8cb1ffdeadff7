"""The catalog's schema history as alembic revisions; `db.upgrade_to_head` applies them on start."""
