"""the completeness ledger: air_coverage, air_published_hours, air_heals, and the air_completeness view

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 03:30:00

``air_coverage`` keeps one row per station and KST day with a 24-bit mask per state (bit h-1: the hour
AirKorea labels h:00; see ``pipeline/transform/coverage.py``). The view counts the bits with a sum of
shifts, the same on SQLite and PostgreSQL (neither has a portable popcount); the SQL is frozen here.

An existing database is seeded from its readings: every stored station-hour becomes expected and received
(or flagged, when none of the six measured values is there). Holes before this migration are not inferred;
the ledger expects every hour from the next province poll on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.load.tables import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEASURED = ("so2", "co", "o3", "no2", "pm10", "pm25")


def popcount(mask: str) -> str:
    """The set bits of a 24-bit mask, in portable SQL."""
    return "(" + " + ".join(f"(({mask} >> {bit}) & 1)" for bit in range(24)) + ")"


def view_sql() -> str:
    missing = "(c.expected & ~(c.received | c.flagged | c.unpublished))"
    return f"""
SELECT c.station_name, s.sido_name, c.kst_date,
    {popcount("c.expected")} AS expected,
    {popcount("c.received")} AS received,
    {popcount("c.flagged")} AS flagged,
    {popcount("c.unpublished")} AS not_published,
    {popcount(missing)} AS missing,
    100.0 * ({popcount("c.received")} + {popcount("c.flagged")})
        / NULLIF({popcount("c.expected")} - {popcount("c.unpublished")}, 0) AS completeness,
    {missing} AS missing_mask
FROM air_coverage c LEFT JOIN air_stations s ON s.station_name = c.station_name"""


def _seed_sql(dialect: str) -> str:
    if dialect == "postgresql":
        day = "CAST((measured_at AT TIME ZONE 'Asia/Seoul') - INTERVAL '1 hour' AS DATE)"
        bit = "CAST(EXTRACT(HOUR FROM (measured_at AT TIME ZONE 'Asia/Seoul') - INTERVAL '1 hour') AS INTEGER)"
        now = "now()"
    else:
        day = "date(measured_at, '+8 hours')"
        bit = "CAST(strftime('%H', measured_at, '+8 hours') AS INTEGER)"
        now = "strftime('%Y-%m-%d %H:%M:%S', 'now')"
    measured = f"coalesce({', '.join(MEASURED)}) IS NOT NULL"
    return f"""
INSERT INTO air_coverage (kst_date, station_name, expected, received, flagged, unpublished, tried, updated_at)
SELECT kst_date, station_name, CAST(sum(b) AS INTEGER), CAST(sum(CASE WHEN v THEN b ELSE 0 END) AS INTEGER),
       CAST(sum(CASE WHEN v THEN 0 ELSE b END) AS INTEGER), 0, 0, {now}
FROM (SELECT station_name, {day} AS kst_date, 1 << {bit} AS b, {measured} AS v FROM air_readings) hours
GROUP BY kst_date, station_name"""


def upgrade() -> None:
    op.create_table(
        "air_coverage",
        sa.Column("kst_date", sa.Date(), nullable=False, comment="KST day: the hours AirKorea labels 01:00 … 24:00"),
        sa.Column("station_name", sa.Text(), nullable=False, comment="the station"),
        sa.Column(
            "expected",
            sa.Integer(),
            nullable=False,
            comment="bit h-1 set: the hour labelled h:00 should be held (seen since the station was first seen, "
            "up to the newest hour the API published)",
        ),
        sa.Column("received", sa.Integer(), nullable=False, comment="bits: hours stored with a measured value"),
        sa.Column(
            "flagged",
            sa.Integer(),
            nullable=False,
            comment="bits: hours stored with every measured value missing (통신장애, 점검및교정, …)",
        ),
        sa.Column(
            "unpublished",
            sa.Integer(),
            nullable=False,
            comment="bits: holes the API never filled (its series lacked them past the late-publication window)",
        ),
        sa.Column("tried", sa.Integer(), nullable=False, comment="bits: holes a series covering them lacked"),
        sa.Column("updated_at", UTCDateTime(), nullable=False, comment="last change (UTC)"),
        sa.ForeignKeyConstraint(
            ["station_name"], ["air_stations.station_name"], name=op.f("fk_air_coverage_station_name_air_stations")
        ),
        sa.PrimaryKeyConstraint("kst_date", "station_name", name=op.f("pk_air_coverage")),
        comment="The completeness ledger: per station and KST day, which hours were expected, received, flagged, "
        "never published. Missing = expected & ~(received | flagged | unpublished). See air_completeness.",
    )
    with op.batch_alter_table("air_coverage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_air_coverage_station_name_kst_date"), ["station_name", "kst_date"], unique=False
        )
    op.create_table(
        "air_published_hours",
        sa.Column("measured_at", UTCDateTime(), nullable=False, comment="UTC end of an hour a province answer carried"),
        sa.Column(
            "first_seen_at", UTCDateTime(), nullable=False, comment="when a poll first saw the hour published (UTC)"
        ),
        sa.Column("stations", sa.Integer(), nullable=False, comment="stations carrying the hour in that first answer"),
        sa.Column("run_id", sa.Integer(), nullable=True, comment="the run whose poll first saw it"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_air_published_hours_run_id_runs")),
        sa.PrimaryKeyConstraint("measured_at", name=op.f("pk_air_published_hours")),
        comment="The newest hour of each province poll: expected hours run up to the newest of them.",
    )
    op.create_table(
        "air_heals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False, comment="the station job's run"),
        sa.Column("station_name", sa.Text(), nullable=False, comment="the station whose series was fetched"),
        sa.Column(
            "kst_date", sa.Date(), nullable=False, comment="the KST day whose heal budget the calls count against"
        ),
        sa.Column(
            "data_term",
            sa.String(length=8),
            nullable=False,
            comment="DAILY, MONTH or 3MONTH: the smallest covering the hole",
        ),
        sa.Column("calls", sa.Integer(), nullable=False, comment="requests the series took"),
        sa.Column("holes", sa.Integer(), nullable=False, comment="missing hours inside the window before the fetch"),
        sa.Column("filled", sa.Integer(), nullable=False, comment="of them, hours the series held"),
        sa.Column(
            "lacked",
            sa.Integer(),
            nullable=False,
            comment="of them, hours the series should have held and did not (all, when it came empty or failed)",
        ),
        sa.Column(
            "oldest_hole", UTCDateTime(), nullable=False, comment="UTC end of the oldest hole it was fetched for"
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False, comment="UTC"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_air_heals_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_air_heals")),
        comment="One row per series fetched to repair holes (self-healing): what it cost and what it filled.",
    )
    with op.batch_alter_table("air_heals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_air_heals_kst_date"), ["kst_date"], unique=False)
    dialect = op.get_bind().dialect.name
    op.execute(_seed_sql(dialect))
    op.execute(
        "INSERT INTO air_published_hours (measured_at, first_seen_at, stations, run_id) "
        "SELECT measured_at, max(updated_at), count(*), NULL FROM air_readings "
        "WHERE measured_at = (SELECT max(measured_at) FROM air_readings) GROUP BY measured_at"
    )
    op.execute(f"CREATE VIEW air_completeness AS{view_sql()}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS air_completeness")
    with op.batch_alter_table("air_heals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_air_heals_kst_date"))
    op.drop_table("air_heals")
    op.drop_table("air_published_hours")
    with op.batch_alter_table("air_coverage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_air_coverage_station_name_kst_date"))
    op.drop_table("air_coverage")
