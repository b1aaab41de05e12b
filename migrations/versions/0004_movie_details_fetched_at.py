"""when a movie's details were last fetched (the details TTL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.load.tables import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "movies",
        sa.Column(
            "details_fetched_at",
            UTCDateTime(),
            nullable=True,
            comment="when the details were last fetched (UTC); NULL: never (only a list item)",
        ),
    )
    # until now a movie with details was rewritten with them at every run: its last update is its last fetch
    op.execute("UPDATE movies SET details_fetched_at = updated_at WHERE details_fetched")


def downgrade() -> None:
    # plain ALTER TABLE (SQLite >= 3.35 has DROP COLUMN): a batch rebuild of movies would break the views on it
    op.execute("ALTER TABLE movies DROP COLUMN details_fetched_at")
