"""the raw archive: raw_bodies (once per content, compressed) and raw_responses (one per response)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.load.tables import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "raw_bodies",
        sa.Column(
            "hash", sa.String(length=64), nullable=False, comment="SHA-256 of the body as kept (hex): once per content"
        ),
        sa.Column("encoding", sa.String(length=8), nullable=False, comment="how body is compressed: zlib"),
        sa.Column(
            "size", sa.Integer(), nullable=False, comment="bytes as received (an error answer: as kept, see truncated)"
        ),
        sa.Column("stored_size", sa.Integer(), nullable=False, comment="bytes stored, compressed"),
        sa.Column("body", sa.LargeBinary(), nullable=False, comment="the compressed body"),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False, comment="when it was first received (UTC)"),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_raw_bodies")),
        comment="The raw archive's bodies, compressed and stored once per content (see raw_responses).",
    )
    op.create_table(
        "raw_responses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False, comment="fetch order"),
        sa.Column("run_id", sa.Integer(), nullable=True, comment="the run that made the request"),
        sa.Column("source", sa.String(length=16), nullable=False, comment="tmdb or airkorea"),
        sa.Column(
            "operation", sa.String(length=64), nullable=False, comment="now_playing, movie, getCtprvnRltmMesureDnsty, …"
        ),
        sa.Column("path", sa.Text(), nullable=False, comment="the request's path below the source's base URL"),
        sa.Column("params", sa.Text(), nullable=False, comment="JSON of the query parameters, every secret removed"),
        sa.Column("status", sa.Integer(), nullable=False, comment="HTTP status"),
        sa.Column("truncated", sa.Boolean(), nullable=False, comment="an error body cut at archive.max_error_bytes"),
        sa.Column("body_hash", sa.String(length=64), nullable=False, comment="the body"),
        sa.Column("fetched_at", UTCDateTime(), nullable=False, comment="when the response was read (UTC)"),
        sa.ForeignKeyConstraint(["body_hash"], ["raw_bodies.hash"], name=op.f("fk_raw_responses_body_hash_raw_bodies")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_raw_responses_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_responses")),
        comment="The raw archive: one row per response received, before it was transformed.",
    )
    with op.batch_alter_table("raw_responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_raw_responses_body_hash"), ["body_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_raw_responses_fetched_at"), ["fetched_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_raw_responses_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("raw_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raw_responses_run_id"))
        batch_op.drop_index(batch_op.f("ix_raw_responses_fetched_at"))
        batch_op.drop_index(batch_op.f("ix_raw_responses_body_hash"))
    op.drop_table("raw_responses")
    op.drop_table("raw_bodies")
