"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 22:49:54.246448
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.load.tables import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "air_stations",
        sa.Column("station_name", sa.Text(), nullable=False, comment="AirKorea station name, unique nationwide"),
        sa.Column("sido_name", sa.Text(), nullable=True, comment="province short name: 서울, 경기, ..."),
        sa.Column(
            "station_code", sa.String(length=16), nullable=True, comment="AirKorea station code, e.g. 111123 (종로구)"
        ),
        sa.Column(
            "mang_name", sa.Text(), nullable=True, comment="network: 도시대기, 도로변대기, 국가배경농도, 교외대기, 항만"
        ),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False, comment="first run that saw the station (UTC)"),
        sa.Column("updated_at", UTCDateTime(), nullable=False, comment="last run that saw the station (UTC)"),
        sa.PrimaryKeyConstraint("station_name", name=op.f("pk_air_stations")),
        comment="AirKorea measuring stations.",
    )
    with op.batch_alter_table("air_stations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_air_stations_sido_name"), ["sido_name"], unique=False)

    op.create_table(
        "api_calls",
        sa.Column(
            "operation",
            sa.String(length=64),
            nullable=False,
            comment="data.go.kr operation, e.g. getCtprvnRltmMesureDnsty",
        ),
        sa.Column(
            "kst_date", sa.Date(), nullable=False, comment="the KST day the quota counts (it resets at midnight KST)"
        ),
        sa.Column("calls", sa.Integer(), nullable=False, comment="requests sent that day, retries included"),
        sa.Column(
            "exhausted_at",
            UTCDateTime(),
            nullable=True,
            comment="when the API answered code 22 (quota exceeded); no calls until the next day",
        ),
        sa.Column("updated_at", UTCDateTime(), nullable=False, comment="UTC"),
        sa.PrimaryKeyConstraint("operation", "kst_date", name=op.f("pk_api_calls")),
        comment="Daily call ledger per data.go.kr operation, so that no process exceeds the daily quota.",
    )
    op.create_table(
        "daemon_jobs",
        sa.Column("job", sa.String(length=64), nullable=False, comment="tmdb, airkorea_sido or airkorea_stations"),
        sa.Column(
            "next_run_at", UTCDateTime(), nullable=True, comment="next fire time, jitter included; NULL when paused"
        ),
        sa.Column("pid", sa.Integer(), nullable=True, comment="process id of the daemon that wrote the row"),
        sa.Column("updated_at", UTCDateTime(), nullable=False, comment="UTC"),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_daemon_jobs")),
        comment="The running daemon's timetable, for `pipeline status`.",
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False, comment="run id"),
        sa.Column("job", sa.String(length=64), nullable=False, comment="what ran: cycle, tmdb, airkorea_sido, ..."),
        sa.Column("trigger", sa.String(length=32), nullable=False, comment="manual, schedule, catchup, backfill"),
        sa.Column("started_at", UTCDateTime(), nullable=False, comment="UTC; for missed/skipped: the scheduled time"),
        sa.Column("finished_at", UTCDateTime(), nullable=True, comment="UTC; NULL while running"),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="running, success, partial, failed; missed or skipped for a scheduled window that did not run",
        ),
        sa.Column("requests", sa.Integer(), nullable=False, comment="HTTP requests sent, retries included"),
        sa.Column("rows_fetched", sa.Integer(), nullable=False, comment="raw records received"),
        sa.Column("rows_upserted", sa.Integer(), nullable=False, comment="rows written to the data tables"),
        sa.Column("rows_rejected", sa.Integer(), nullable=False, comment="records sent to rejects"),
        sa.Column("error", sa.Text(), nullable=True, comment="redacted error summary when not success"),
        sa.Column(
            "details",
            sa.Text(),
            nullable=True,
            comment="JSON: per source counts, requests per operation, errors by class",
        ),
        sa.Column("host", sa.String(length=255), nullable=True, comment="machine that ran it"),
        sa.Column(
            "pid",
            sa.Integer(),
            nullable=True,
            comment="process that ran it: a 'running' row whose process is gone is abandoned",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        comment="One row per pipeline run (a cycle or one scheduled job).",
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_job_started_at"), ["job", "started_at"], unique=False)

    op.create_table(
        "air_readings",
        sa.Column("station_name", sa.Text(), nullable=False, comment="the station"),
        sa.Column("measured_at", UTCDateTime(), nullable=False, comment="UTC end of the measured hour"),
        sa.Column("so2", sa.Float(), nullable=True, comment="ppm"),
        sa.Column("co", sa.Float(), nullable=True, comment="ppm"),
        sa.Column("o3", sa.Float(), nullable=True, comment="ppm"),
        sa.Column("no2", sa.Float(), nullable=True, comment="ppm"),
        sa.Column("pm10", sa.Integer(), nullable=True, comment="µg/m³"),
        sa.Column("pm25", sa.Integer(), nullable=True, comment="µg/m³"),
        sa.Column("pm10_24h", sa.Integer(), nullable=True, comment="µg/m³, 24-hour predicted moving concentration"),
        sa.Column("pm25_24h", sa.Integer(), nullable=True, comment="µg/m³, 24-hour predicted moving concentration"),
        sa.Column("khai", sa.Integer(), nullable=True, comment="comprehensive air-quality index (CAI)"),
        sa.Column("so2_grade", sa.Integer(), nullable=True, comment="1 good, 2 moderate, 3 bad, 4 very bad"),
        sa.Column("co_grade", sa.Integer(), nullable=True, comment="1-4"),
        sa.Column("o3_grade", sa.Integer(), nullable=True, comment="1-4"),
        sa.Column("no2_grade", sa.Integer(), nullable=True, comment="1-4"),
        sa.Column("pm10_grade", sa.Integer(), nullable=True, comment="1-4, 24-hour grade"),
        sa.Column("pm25_grade", sa.Integer(), nullable=True, comment="1-4, 24-hour grade"),
        sa.Column("pm10_grade_1h", sa.Integer(), nullable=True, comment="1-4, 1-hour grade"),
        sa.Column("pm25_grade_1h", sa.Integer(), nullable=True, comment="1-4, 1-hour grade"),
        sa.Column("khai_grade", sa.Integer(), nullable=True, comment="1-4"),
        sa.Column(
            "so2_flag",
            sa.Text(),
            nullable=True,
            comment="status of the SO2 value: 통신장애, 점검및교정, 장비점검, 자료이상, …; NULL when normal",
        ),
        sa.Column("co_flag", sa.Text(), nullable=True, comment="status of the CO value; NULL when normal"),
        sa.Column("o3_flag", sa.Text(), nullable=True, comment="status of the O3 value; NULL when normal"),
        sa.Column("no2_flag", sa.Text(), nullable=True, comment="status of the NO2 value; NULL when normal"),
        sa.Column("pm10_flag", sa.Text(), nullable=True, comment="status of the PM10 value; NULL when normal"),
        sa.Column("pm25_flag", sa.Text(), nullable=True, comment="status of the PM2.5 value; NULL when normal"),
        sa.Column("run_id", sa.Integer(), nullable=True, comment="the last run that wrote the row"),
        sa.Column("updated_at", UTCDateTime(), nullable=False, comment="when the row was last written (UTC)"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_air_readings_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["station_name"], ["air_stations.station_name"], name=op.f("fk_air_readings_station_name_air_stations")
        ),
        sa.PrimaryKeyConstraint("station_name", "measured_at", name=op.f("pk_air_readings")),
        comment="One row per station-hour, upserted as AirKorea revises values. Key: (station_name, measured_at).",
    )
    op.create_table(
        "movies",
        sa.Column("tmdb_id", sa.Integer(), autoincrement=False, nullable=False, comment="TMDB movie id"),
        sa.Column(
            "title",
            sa.Text(),
            nullable=True,
            comment="title in the configured language; the original title when untranslated",
        ),
        sa.Column("original_title", sa.Text(), nullable=True, comment="title in the original language"),
        sa.Column("original_language", sa.String(length=8), nullable=True, comment="ISO 639-1"),
        sa.Column(
            "overview", sa.Text(), nullable=True, comment="NULL when TMDB has no text in the configured language"
        ),
        sa.Column("tagline", sa.Text(), nullable=True, comment="NULL when TMDB has none in the configured language"),
        sa.Column("homepage", sa.Text(), nullable=True, comment="NULL when none"),
        sa.Column("status", sa.String(length=32), nullable=True, comment="Released, Post Production, ..."),
        sa.Column("release_date", sa.Date(), nullable=True, comment="primary release date; NULL when unknown"),
        sa.Column("runtime", sa.Integer(), nullable=True, comment="minutes; NULL when unknown (TMDB's 0)"),
        sa.Column("budget", sa.BigInteger(), nullable=True, comment="USD; NULL when unknown (TMDB's 0)"),
        sa.Column("revenue", sa.BigInteger(), nullable=True, comment="USD; NULL when unknown (TMDB's 0)"),
        sa.Column("genres", sa.Text(), nullable=True, comment="JSON array of genre names"),
        sa.Column("genre_ids", sa.Text(), nullable=True, comment="JSON array of TMDB genre ids"),
        sa.Column("origin_country", sa.Text(), nullable=True, comment="JSON array of ISO 3166-1 codes"),
        sa.Column("production_countries", sa.Text(), nullable=True, comment="JSON array of ISO 3166-1 codes"),
        sa.Column("spoken_languages", sa.Text(), nullable=True, comment="JSON array of ISO 639-1 codes"),
        sa.Column("collection_id", sa.Integer(), nullable=True, comment="TMDB collection the movie belongs to"),
        sa.Column("collection_name", sa.Text(), nullable=True),
        sa.Column("imdb_id", sa.String(length=16), nullable=True, comment="tt1234567; NULL when unknown"),
        sa.Column("popularity", sa.Float(), nullable=True, comment="TMDB popularity at the last update"),
        sa.Column("vote_average", sa.Float(), nullable=True, comment="0-10"),
        sa.Column("vote_count", sa.Integer(), nullable=True, comment="number of votes"),
        sa.Column(
            "poster_path", sa.Text(), nullable=True, comment="image path: prefix with https://image.tmdb.org/t/p/w500"
        ),
        sa.Column("backdrop_path", sa.Text(), nullable=True, comment="image path; NULL when none"),
        sa.Column("adult", sa.Boolean(), nullable=True),
        sa.Column("details_fetched", sa.Boolean(), nullable=False, comment="false: only a list item was seen"),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False, comment="first run that saw the movie (UTC)"),
        sa.Column("updated_at", UTCDateTime(), nullable=False, comment="last update (UTC)"),
        sa.Column("last_run_id", sa.Integer(), nullable=True, comment="the run that last updated the row"),
        sa.ForeignKeyConstraint(["last_run_id"], ["runs.id"], name=op.f("fk_movies_last_run_id_runs")),
        sa.PrimaryKeyConstraint("tmdb_id", name=op.f("pk_movies")),
        comment="One row per movie: its latest state.",
    )
    op.create_table(
        "rejects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False, comment="the run that met the record"),
        sa.Column("source", sa.String(length=16), nullable=False, comment="tmdb or airkorea"),
        sa.Column("reason", sa.Text(), nullable=False, comment="why it could not be normalised"),
        sa.Column("record", sa.Text(), nullable=False, comment="the raw record as JSON, secrets removed"),
        sa.Column("created_at", UTCDateTime(), nullable=False, comment="UTC"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_rejects_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejects")),
        comment="Records that could not be normalised, with the reason. Nothing is dropped silently.",
    )
    with op.batch_alter_table("rejects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejects_run_id"), ["run_id"], unique=False)

    op.create_table(
        "movie_snapshots",
        sa.Column("run_id", sa.Integer(), nullable=False, comment="the run that saw the movie"),
        sa.Column("tmdb_id", sa.Integer(), nullable=False),
        sa.Column("list_name", sa.String(length=16), nullable=False, comment="now_playing, or discover for a backfill"),
        sa.Column("captured_at", UTCDateTime(), nullable=False, comment="start of that run (UTC)"),
        sa.Column("position", sa.Integer(), nullable=False, comment="1-based rank in the list, duplicates removed"),
        sa.Column("page", sa.Integer(), nullable=False, comment="list page the movie was on"),
        sa.Column("popularity", sa.Float(), nullable=True, comment="TMDB popularity at that time"),
        sa.Column("vote_average", sa.Float(), nullable=True, comment="0-10"),
        sa.Column("vote_count", sa.Integer(), nullable=True),
        sa.Column("revenue", sa.BigInteger(), nullable=True, comment="USD; NULL when unknown"),
        sa.Column("release_date", sa.Date(), nullable=True, comment="the region's release date as listed"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_movie_snapshots_run_id_runs")),
        sa.ForeignKeyConstraint(["tmdb_id"], ["movies.tmdb_id"], name=op.f("fk_movie_snapshots_tmdb_id_movies")),
        sa.PrimaryKeyConstraint("run_id", "tmdb_id", name=op.f("pk_movie_snapshots")),
        comment="One row per movie per run that saw it in a list.",
    )
    with op.batch_alter_table("movie_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_movie_snapshots_tmdb_id_captured_at"), ["tmdb_id", "captured_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("movie_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_movie_snapshots_tmdb_id_captured_at"))

    op.drop_table("movie_snapshots")
    with op.batch_alter_table("rejects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejects_run_id"))

    op.drop_table("rejects")
    op.drop_table("movies")
    op.drop_table("air_readings")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_job_started_at"))

    op.drop_table("runs")
    op.drop_table("daemon_jobs")
    op.drop_table("api_calls")
    with op.batch_alter_table("air_stations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_air_stations_sido_name"))

    op.drop_table("air_stations")
