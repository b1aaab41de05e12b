"""views for the common questions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 23:00:00

The SQL is written per dialect (SQLite and PostgreSQL differ in date arithmetic) and frozen here: a later
change to a view is a new migration. Their documentation lives in ``pipeline/load/views.py``.

``air_latest`` says CROSS JOIN on purpose: SQLite then keeps the stations as the outer loop (one index lookup
per station) whatever its statistics say; without it an unanalysed database scans every reading.

AirKorea labels each hourly value with the end of its hour, so a KST day holds the values labelled
01:00 … 24:00: the day of a reading is the KST date of ``measured_at`` minus one hour.

Both dialects give the same answers: ``measured_at_kst`` is a KST wall-clock time (text in SQLite,
``timestamp`` in PostgreSQL), ``kst_date`` a day (text / ``date``), and the means are double precision
(PostgreSQL's ``avg()`` of an integer is ``numeric``, so the values are cast first: an exact integer sum
divided once, as SQLite computes it).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLLUTANTS = ("pm10", "pm25", "o3", "no2", "co", "so2", "khai")


def _kst(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"({column} AT TIME ZONE 'Asia/Seoul')"
    return f"datetime({column}, '+9 hours')"


def _kst_day(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"CAST(({column} AT TIME ZONE 'Asia/Seoul') - INTERVAL '1 hour' AS DATE)"
    return f"date({column}, '+8 hours')"


def _mean(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"avg(CAST({column} AS DOUBLE PRECISION))"
    return f"avg({column})"


def view_sql(dialect: str) -> dict[str, str]:
    kst = _kst("r.measured_at", dialect)
    day = _kst_day("r.measured_at", dialect)
    daily_columns = ",\n    ".join(
        f"{_mean(f'r.{p}', dialect)} AS {p}_mean, max(r.{p}) AS {p}_max, count(r.{p}) AS {p}_hours" for p in POLLUTANTS
    )
    return {
        "air_readings_kst": f"""
SELECT r.*, {kst} AS measured_at_kst, {day} AS kst_date
FROM air_readings r""",
        "air_latest": f"""
SELECT s.sido_name, s.mang_name, r.*, {kst} AS measured_at_kst
FROM air_stations s
CROSS JOIN air_readings r
WHERE r.station_name = s.station_name
  AND r.measured_at = (SELECT max(x.measured_at) FROM air_readings x WHERE x.station_name = s.station_name)""",
        "air_daily": f"""
SELECT r.station_name, {day} AS kst_date, count(*) AS hours,
    {daily_columns}
FROM air_readings r
GROUP BY r.station_name, {day}""",
        "movie_trend": """
SELECT s.tmdb_id, m.title, s.run_id, s.captured_at, s.list_name, s.position, s.popularity, s.vote_average,
       s.vote_count, s.revenue
FROM movie_snapshots s JOIN movies m ON m.tmdb_id = s.tmdb_id""",
        "now_playing_history": """
SELECT m.tmdb_id, m.title, m.release_date, min(s.captured_at) AS first_seen_at, max(s.captured_at) AS last_seen_at,
       count(*) AS snapshots
FROM movie_snapshots s JOIN movies m ON m.tmdb_id = s.tmdb_id
WHERE s.list_name = 'now_playing'
GROUP BY m.tmdb_id, m.title, m.release_date""",
    }


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, sql in view_sql(dialect).items():
        op.execute(f"CREATE VIEW {name} AS{sql}")


def downgrade() -> None:
    for name in reversed(list(view_sql(op.get_bind().dialect.name))):
        op.execute(f"DROP VIEW IF EXISTS {name}")
