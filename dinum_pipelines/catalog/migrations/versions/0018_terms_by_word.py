"""An index of the search words' rows by word, then dataset (db.TERMS_BY_WORD_INDEX).

Revision ID: 0018_terms_by_word
Revises: 0017_search_filters_on_terms
Create Date: 2026-12-07

A search for several words reads the rarest word's matches and looks each one up among the other
words' rows. The table's key, (dataset, word), spread those lookups over the whole table; this
index keeps one word's rows side by side (two words at 100,000 datasets: 8.7 -> 2.2 ms on SQLite).
"""

from __future__ import annotations

from alembic import op

revision = "0018_terms_by_word"
down_revision = "0017_search_filters_on_terms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_dataset_terms_by_word", "dataset_terms", ["term", "dataset_id", "in_title", "weight"])


def downgrade() -> None:
    op.drop_index("ix_dataset_terms_by_word", table_name="dataset_terms")
