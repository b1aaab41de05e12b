"""an index on runs (job, status, id): the newest run and the newest success of each job without a scan

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:40:00

``pipeline status`` and ``GET /healthz`` ask, per job, for the newest finished run and the newest successful
one (``max(id) … GROUP BY job``). The index answers both from itself; without it the whole ``runs`` table
(its ``details`` JSON included) was read on every probe.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_runs_job_status_id"), "runs", ["job", "status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_job_status_id"), table_name="runs")
