"""backfill ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 22:54:44.753250
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.load.tables import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backfills",
        sa.Column(
            "id",
            sa.String(length=200),
            nullable=False,
            comment="source:from..to:selection — the same arguments resume it",
        ),
        sa.Column("source", sa.String(length=16), nullable=False, comment="airkorea or tmdb"),
        sa.Column("range_from", sa.Date(), nullable=False, comment="first KST day of the range"),
        sa.Column("range_to", sa.Date(), nullable=False, comment="last KST day of the range"),
        sa.Column("arguments", sa.Text(), nullable=False, comment="JSON of the selection (stations, region, window)"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="running, done, paused (quota), failed"),
        sa.Column("created_at", UTCDateTime(), nullable=False, comment="UTC"),
        sa.Column("updated_at", UTCDateTime(), nullable=False, comment="UTC"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfills")),
        comment="One row per backfill (a source, a date range and a selection).",
    )
    op.create_table(
        "backfill_chunks",
        sa.Column("backfill_id", sa.String(length=200), nullable=False),
        sa.Column(
            "chunk",
            sa.String(length=200),
            nullable=False,
            comment="a station name, or a TMDB page range such as pages 1-10",
        ),
        sa.Column("status", sa.String(length=16), nullable=False, comment="pending, done, failed"),
        sa.Column("attempts", sa.Integer(), nullable=False, comment="times the chunk was started"),
        sa.Column("rows", sa.Integer(), nullable=False, comment="rows upserted by the chunk"),
        sa.Column("error", sa.Text(), nullable=True, comment="redacted error of the last failed attempt"),
        sa.Column("run_id", sa.Integer(), nullable=True, comment="the run that last worked on the chunk"),
        sa.Column("updated_at", UTCDateTime(), nullable=False, comment="UTC"),
        sa.ForeignKeyConstraint(
            ["backfill_id"], ["backfills.id"], name=op.f("fk_backfill_chunks_backfill_id_backfills")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_backfill_chunks_run_id_runs")),
        sa.PrimaryKeyConstraint("backfill_id", "chunk", name=op.f("pk_backfill_chunks")),
        comment="The backfill ledger: a chunk marked done is never fetched again when the backfill resumes.",
    )
    with op.batch_alter_table("backfill_chunks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_backfill_chunks_backfill_id_status"), ["backfill_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("backfill_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backfill_chunks_backfill_id_status"))

    op.drop_table("backfill_chunks")
    op.drop_table("backfills")
