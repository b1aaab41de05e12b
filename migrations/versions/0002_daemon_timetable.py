"""daemon timetable

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 22:35:04.516018
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.load.tables import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daemon_jobs",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column(
            "next_run_at", UTCDateTime(), nullable=True, comment="next fire time, jitter included; NULL when paused"
        ),
        sa.Column("pid", sa.Integer(), nullable=True, comment="process id of the daemon that wrote the row"),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_daemon_jobs")),
        comment="The running daemon's timetable, for `pipeline status`.",
    )


def downgrade() -> None:
    op.drop_table("daemon_jobs")
