"""The schema: the single source of truth. Alembic migrations match it (a test proves no drift).

Timestamps are UTC. On SQLite they are stored as ``YYYY-MM-DD HH:MM:SS`` text (sortable, readable, and
understood by SQLite's date functions); on PostgreSQL as ``timestamptz``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects import sqlite

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SQLITE_DATETIME = sqlite.DATETIME(  # type: ignore[no-untyped-call]
    storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
    regexp=r"(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)",
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(SQLITE_DATETIME)
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the pipeline stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _revised(source: Table, columns: tuple[str, ...]) -> list[Column[Any]]:
    """``old_c`` and ``new_c`` for each tracked column of ``source``: set only where the value changed."""
    pairs: list[Column[Any]] = []
    for name in columns:
        column = source.c[name]
        meaning = (column.comment or "").split(";")[0]
        what = f"{name} before the change ({meaning})" if meaning and not meaning.startswith("NULL") else name
        if what == name:
            what = f"{name} before the change"
        pairs.append(Column(f"old_{name}", column.type, comment=f"{what}; NULL when unchanged"))
        pairs.append(Column(f"new_{name}", column.type, comment=f"{name} after the change; NULL when unchanged"))
    return pairs


runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="run id"),
    Column("job", String(64), nullable=False, comment="what ran: cycle, tmdb, airkorea_sido, ..."),
    Column("trigger", String(32), nullable=False, comment="manual, schedule, catchup, backfill"),
    Column("started_at", UTCDateTime, nullable=False, comment="UTC; for missed/skipped: the scheduled time"),
    Column("finished_at", UTCDateTime, comment="UTC; NULL while running"),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="running, success, partial, failed; missed or skipped for a scheduled window that did not run",
    ),
    Column("requests", Integer, nullable=False, default=0, comment="HTTP requests sent, retries included"),
    Column("rows_fetched", Integer, nullable=False, default=0, comment="raw records received"),
    Column("rows_upserted", Integer, nullable=False, default=0, comment="rows written to the data tables"),
    Column("rows_rejected", Integer, nullable=False, default=0, comment="records sent to rejects"),
    Column("error", Text, comment="redacted error summary when not success"),
    Column("details", Text, comment="JSON: per source counts, requests per operation, errors by class"),
    Column("host", String(255), comment="machine that ran it"),
    Column("pid", Integer, comment="process that ran it: a 'running' row whose process is gone is abandoned"),
    comment="One row per pipeline run (a cycle or one scheduled job).",
)
Index(None, runs.c.job, runs.c.started_at)
Index(None, runs.c.job, runs.c.status, runs.c.id)  # the newest run, and success, of each job (status, healthz)

movies = Table(
    "movies",
    metadata,
    Column("tmdb_id", Integer, primary_key=True, autoincrement=False, comment="TMDB movie id"),
    Column("title", Text, comment="title in the configured language; the original title when untranslated"),
    Column("original_title", Text, comment="title in the original language"),
    Column("original_language", String(8), comment="ISO 639-1"),
    Column("overview", Text, comment="NULL when TMDB has no text in the configured language"),
    Column("tagline", Text, comment="NULL when TMDB has none in the configured language"),
    Column("homepage", Text, comment="NULL when none"),
    Column("status", String(32), comment="Released, Post Production, ..."),
    Column("release_date", Date, comment="primary release date; NULL when unknown"),
    Column("runtime", Integer, comment="minutes; NULL when unknown (TMDB's 0)"),
    Column("budget", BigInteger, comment="USD; NULL when unknown (TMDB's 0)"),
    Column("revenue", BigInteger, comment="USD; NULL when unknown (TMDB's 0)"),
    Column("genres", Text, comment="JSON array of genre names"),
    Column("genre_ids", Text, comment="JSON array of TMDB genre ids"),
    Column("origin_country", Text, comment="JSON array of ISO 3166-1 codes"),
    Column("production_countries", Text, comment="JSON array of ISO 3166-1 codes"),
    Column("spoken_languages", Text, comment="JSON array of ISO 639-1 codes"),
    Column("collection_id", Integer, comment="TMDB collection the movie belongs to"),
    Column("collection_name", Text),
    Column("imdb_id", String(16), comment="tt1234567; NULL when unknown"),
    Column("popularity", Float, comment="TMDB popularity at the last update"),
    Column("vote_average", Float, comment="0-10; NULL when nobody voted (TMDB sends 0 with vote_count 0)"),
    Column("vote_count", Integer, comment="number of votes"),
    Column("poster_path", Text, comment="image path: prefix with https://image.tmdb.org/t/p/w500"),
    Column("backdrop_path", Text, comment="image path; NULL when none"),
    Column("adult", Boolean),
    Column("details_fetched", Boolean, nullable=False, default=True, comment="false: only a list item was seen"),
    Column("first_seen_at", UTCDateTime, nullable=False, comment="first run that saw the movie (UTC)"),
    Column("updated_at", UTCDateTime, nullable=False, comment="last update (UTC)"),
    Column("last_run_id", Integer, ForeignKey("runs.id"), comment="the run that last updated the row"),
    Column(
        "details_fetched_at",
        UTCDateTime,
        comment="when the details were last fetched (UTC); NULL: never (only a list item)",
    ),
    comment="One row per movie: its latest state.",
)

movie_snapshots = Table(
    "movie_snapshots",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True, comment="the run that saw the movie"),
    Column("tmdb_id", Integer, ForeignKey("movies.tmdb_id"), primary_key=True),
    Column("list_name", String(16), nullable=False, comment="now_playing, or discover for a backfill"),
    Column("captured_at", UTCDateTime, nullable=False, comment="start of that run (UTC)"),
    Column("position", Integer, nullable=False, comment="1-based rank in the list, duplicates removed"),
    Column("page", Integer, nullable=False, comment="list page the movie was on"),
    Column("popularity", Float, comment="TMDB popularity at that time"),
    Column("vote_average", Float, comment="0-10; NULL when nobody voted (TMDB sends 0 with vote_count 0)"),
    Column("vote_count", Integer),
    Column("revenue", BigInteger, comment="USD; NULL when unknown"),
    Column("release_date", Date, comment="the region's release date as listed"),
    comment="One row per movie per run that saw it in a list.",
)
Index(None, movie_snapshots.c.tmdb_id, movie_snapshots.c.captured_at)

#: a movie's descriptive fields, whose change is a revision (rank, popularity and votes are snapshots)
MOVIE_FIELDS: tuple[str, ...] = (
    "title", "original_title", "original_language", "overview", "tagline", "homepage", "status", "release_date",
    "runtime", "budget", "revenue", "genres", "genre_ids", "origin_country", "production_countries",
    "spoken_languages", "collection_id", "collection_name", "imdb_id", "poster_path", "backdrop_path", "adult",
)  # fmt: skip

movie_revisions = Table(
    "movie_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="order of the changes"),
    Column("tmdb_id", Integer, nullable=False, comment="TMDB movie id"),
    Column("run_id", Integer, ForeignKey("runs.id"), comment="the run whose details replaced the stored ones"),
    Column("revised_at", UTCDateTime, nullable=False, comment="when the new details were written (UTC)"),
    Column("previous_run_id", Integer, comment="the run that had written the replaced details"),
    Column("previous_at", UTCDateTime, nullable=False, comment="when the replaced details were written (UTC)"),
    Column(
        "changed",
        Text,
        nullable=False,
        comment="the fields that changed, space-separated with a space at each end: ' title runtime '",
    ),
    *_revised(movies, MOVIE_FIELDS),
    comment="One row per change of a movie's descriptive fields once its details are known: the old and new "
    "value of each field that changed. Written by a trigger on movies.",
)
Index(None, movie_revisions.c.tmdb_id)

air_stations = Table(
    "air_stations",
    metadata,
    Column("station_name", Text, primary_key=True, comment="AirKorea station name, unique nationwide"),
    Column("sido_name", Text, comment="province short name: 서울, 경기, ..."),
    Column("station_code", String(16), comment="AirKorea station code, e.g. 111123 (종로구)"),
    Column("mang_name", Text, comment="network: 도시대기, 도로변대기, 국가배경농도, 교외대기, 항만"),
    Column("first_seen_at", UTCDateTime, nullable=False, comment="first run that saw the station (UTC)"),
    Column("updated_at", UTCDateTime, nullable=False, comment="last run that saw the station (UTC)"),
    comment="AirKorea measuring stations.",
)
Index(None, air_stations.c.sido_name)

air_readings = Table(
    "air_readings",
    metadata,
    Column("station_name", Text, ForeignKey("air_stations.station_name"), primary_key=True, comment="the station"),
    Column("measured_at", UTCDateTime, primary_key=True, comment="UTC end of the measured hour"),
    Column("so2", Float, comment="ppm"),
    Column("co", Float, comment="ppm"),
    Column("o3", Float, comment="ppm"),
    Column("no2", Float, comment="ppm"),
    Column("pm10", Integer, comment="µg/m³"),
    Column("pm25", Integer, comment="µg/m³"),
    Column("pm10_24h", Integer, comment="µg/m³, 24-hour predicted moving concentration"),
    Column("pm25_24h", Integer, comment="µg/m³, 24-hour predicted moving concentration"),
    Column("khai", Integer, comment="comprehensive air-quality index (CAI)"),
    Column("so2_grade", Integer, comment="1 good, 2 moderate, 3 bad, 4 very bad"),
    Column("co_grade", Integer, comment="1-4"),
    Column("o3_grade", Integer, comment="1-4"),
    Column("no2_grade", Integer, comment="1-4"),
    Column("pm10_grade", Integer, comment="1-4, 24-hour grade"),
    Column("pm25_grade", Integer, comment="1-4, 24-hour grade"),
    Column("pm10_grade_1h", Integer, comment="1-4, 1-hour grade"),
    Column("pm25_grade_1h", Integer, comment="1-4, 1-hour grade"),
    Column("khai_grade", Integer, comment="1-4"),
    Column(
        "so2_flag",
        Text,
        comment="status of the SO2 value: 통신장애, 점검및교정, 장비점검, 자료이상, …; NULL when normal",
    ),
    Column("co_flag", Text, comment="status of the CO value; NULL when normal"),
    Column("o3_flag", Text, comment="status of the O3 value; NULL when normal"),
    Column("no2_flag", Text, comment="status of the NO2 value; NULL when normal"),
    Column("pm10_flag", Text, comment="status of the PM10 value; NULL when normal"),
    Column("pm25_flag", Text, comment="status of the PM2.5 value; NULL when normal"),
    Column("run_id", Integer, ForeignKey("runs.id"), comment="the last run that changed the row"),
    Column("updated_at", UTCDateTime, nullable=False, comment="when the row was last changed (UTC)"),
    Column(
        "values_digest",
        BigInteger,
        comment="64-bit fingerprint of the values, grades and flags, which the loader compares before it sends a "
        "row again; NULL for rows written before migration 0007",
    ),
    comment="One row per station-hour, upserted as AirKorea revises values. Key: (station_name, measured_at).",
)
# No index on measured_at alone, deliberately: every station's series covers the same hours, so a
# station-by-station load (each run, each backfill chunk) would insert into that index at thousands of
# scattered places, tripling the cost of an upsert (measured: 21 µs against 7 µs a row). The key
# (station_name, measured_at) serves the per-station questions; the newest hour of all is air_latest.


#: the columns of a reading whose change is a revision: every value, grade and flag (not its run or time)
READING_VALUES: tuple[str, ...] = tuple(
    c.name
    for c in air_readings.columns
    if c.name not in ("station_name", "measured_at", "run_id", "updated_at", "values_digest")
)

air_reading_revisions = Table(
    "air_reading_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="order of the changes"),
    Column("station_name", Text, nullable=False, comment="the station"),
    Column("measured_at", UTCDateTime, nullable=False, comment="UTC end of the measured hour"),
    Column("run_id", Integer, ForeignKey("runs.id"), comment="the run whose values replaced the stored ones"),
    Column("revised_at", UTCDateTime, nullable=False, comment="when the new values were written (UTC)"),
    Column("previous_run_id", Integer, comment="the run that had written the replaced values"),
    Column(
        "previous_at",
        UTCDateTime,
        nullable=False,
        comment="when the replaced values were written (UTC): for a reading's first revision, its first publication",
    ),
    Column(
        "changed",
        Text,
        nullable=False,
        comment="the columns that changed, space-separated with a space at each end: ' pm10 pm10_flag '",
    ),
    *_revised(air_readings, READING_VALUES),
    comment="One row per change of a stored reading (a revision by AirKorea, or a series disagreeing with a "
    "poll): the old and new value of each column that changed. Written by a trigger on air_readings.",
)
Index(None, air_reading_revisions.c.station_name, air_reading_revisions.c.measured_at)
Index(None, air_reading_revisions.c.revised_at)

air_coverage = Table(
    "air_coverage",
    metadata,
    Column("kst_date", Date, primary_key=True, comment="KST day: the hours AirKorea labels 01:00 … 24:00"),
    Column("station_name", Text, ForeignKey("air_stations.station_name"), primary_key=True, comment="the station"),
    Column(
        "expected",
        Integer,
        nullable=False,
        default=0,
        comment="bit h-1 set: the hour labelled h:00 should be held (seen since the station was first seen, up "
        "to the newest hour the API published)",
    ),
    Column("received", Integer, nullable=False, default=0, comment="bits: hours stored with a measured value"),
    Column(
        "flagged",
        Integer,
        nullable=False,
        default=0,
        comment="bits: hours stored with every measured value missing (통신장애, 점검및교정, …)",
    ),
    Column(
        "unpublished",
        Integer,
        nullable=False,
        default=0,
        comment="bits: holes the API never filled (its series lacked them past the late-publication window)",
    ),
    Column("tried", Integer, nullable=False, default=0, comment="bits: holes a series covering them lacked"),
    Column("updated_at", UTCDateTime, nullable=False, comment="last change (UTC)"),
    comment="The completeness ledger: per station and KST day, which hours were expected, received, flagged, "
    "never published. Missing = expected & ~(received | flagged | unpublished). See air_completeness.",
)

# the key leads with the day (a poll writes one day of every station; gaps and healing read ranges of days);
# this one serves a station's own questions (`gaps --station`, how many stations the ledger knows)
Index(None, air_coverage.c.station_name, air_coverage.c.kst_date)

air_published_hours = Table(
    "air_published_hours",
    metadata,
    Column("measured_at", UTCDateTime, primary_key=True, comment="UTC end of an hour a province answer carried"),
    Column("first_seen_at", UTCDateTime, nullable=False, comment="when a poll first saw the hour published (UTC)"),
    Column("stations", Integer, nullable=False, comment="stations carrying the hour in that first answer"),
    Column("run_id", Integer, ForeignKey("runs.id"), comment="the run whose poll first saw it"),
    comment="The newest hour of each province poll: expected hours run up to the newest of them.",
)

air_heals = Table(
    "air_heals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, comment="the station job's run"),
    Column("station_name", Text, nullable=False, comment="the station whose series was fetched"),
    Column("kst_date", Date, nullable=False, comment="the KST day whose heal budget the calls count against"),
    Column("data_term", String(8), nullable=False, comment="DAILY, MONTH or 3MONTH: the smallest covering the hole"),
    Column("calls", Integer, nullable=False, comment="requests the series took"),
    Column("holes", Integer, nullable=False, comment="missing hours inside the window before the fetch"),
    Column("filled", Integer, nullable=False, comment="of them, hours the series held"),
    Column(
        "lacked",
        Integer,
        nullable=False,
        comment="of them, hours the series should have held and did not (all, when it came empty or failed)",
    ),
    Column("oldest_hole", UTCDateTime, nullable=False, comment="UTC end of the oldest hole it was fetched for"),
    Column("created_at", UTCDateTime, nullable=False, comment="UTC"),
    comment="One row per series fetched to repair holes (self-healing): what it cost and what it filled.",
)
Index(None, air_heals.c.kst_date)

#: raw_bodies.encoding (migration 0009 wrote it on PostgreSQL, where columns keep comments)
ENCODING_COMMENT = "how body is compressed: zstd; zlib for bodies stored before 2026-12-02"

raw_bodies = Table(
    "raw_bodies",
    metadata,
    Column("hash", String(64), primary_key=True, comment="SHA-256 of the body as kept (hex): once per content"),
    Column("encoding", String(8), nullable=False, comment=ENCODING_COMMENT),
    Column("size", Integer, nullable=False, comment="bytes as received (an error answer: as kept, see truncated)"),
    Column("stored_size", Integer, nullable=False, comment="bytes stored, compressed"),
    Column("body", LargeBinary, nullable=False, comment="the compressed body"),
    Column("first_seen_at", UTCDateTime, nullable=False, comment="when it was first received (UTC)"),
    comment="The raw archive's bodies, compressed and stored once per content (see raw_responses).",
)

raw_responses = Table(
    "raw_responses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="fetch order"),
    Column("run_id", Integer, ForeignKey("runs.id"), comment="the run that made the request"),
    Column("source", String(16), nullable=False, comment="tmdb or airkorea"),
    Column("operation", String(64), nullable=False, comment="now_playing, movie, getCtprvnRltmMesureDnsty, …"),
    Column("path", Text, nullable=False, comment="the request's path below the source's base URL"),
    Column("params", Text, nullable=False, comment="JSON of the query parameters, every secret removed"),
    Column("status", Integer, nullable=False, comment="HTTP status"),
    Column("truncated", Boolean, nullable=False, default=False, comment="an error body cut at archive.max_error_bytes"),
    Column("body_hash", String(64), ForeignKey("raw_bodies.hash"), nullable=False, comment="the body"),
    Column("fetched_at", UTCDateTime, nullable=False, comment="when the response was read (UTC)"),
    comment="The raw archive: one row per response received, before it was transformed.",
)
Index(None, raw_responses.c.fetched_at)
Index(None, raw_responses.c.run_id)
Index(None, raw_responses.c.body_hash)

rejects = Table(
    "rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, comment="the run that met the record"),
    Column("source", String(16), nullable=False, comment="tmdb or airkorea"),
    Column("reason", Text, nullable=False, comment="why it could not be normalised"),
    Column("record", Text, nullable=False, comment="the raw record as JSON, secrets removed"),
    Column("created_at", UTCDateTime, nullable=False, comment="UTC"),
    comment="Records that could not be normalised, with the reason. Nothing is dropped silently.",
)
Index(None, rejects.c.run_id)

daemon_jobs = Table(
    "daemon_jobs",
    metadata,
    Column("job", String(64), primary_key=True, comment="tmdb, airkorea_sido or airkorea_stations"),
    Column("next_run_at", UTCDateTime, comment="next fire time, jitter included; NULL when paused"),
    Column("pid", Integer, comment="process id of the daemon that wrote the row"),
    Column("updated_at", UTCDateTime, nullable=False, comment="UTC"),
    comment="The running daemon's timetable, for `pipeline status`.",
)

api_calls = Table(
    "api_calls",
    metadata,
    Column("operation", String(64), primary_key=True, comment="data.go.kr operation, e.g. getCtprvnRltmMesureDnsty"),
    Column("kst_date", Date, primary_key=True, comment="the KST day the quota counts (it resets at midnight KST)"),
    Column("calls", Integer, nullable=False, default=0, comment="requests sent that day, retries included"),
    Column(
        "exhausted_at",
        UTCDateTime,
        comment="when the API answered code 22 (quota exceeded); no calls until the next day",
    ),
    Column("updated_at", UTCDateTime, nullable=False, comment="UTC"),
    comment="Daily call ledger per data.go.kr operation, so that no process exceeds the daily quota.",
)

backfills = Table(
    "backfills",
    metadata,
    Column("id", String(200), primary_key=True, comment="source:from..to:selection — the same arguments resume it"),
    Column("source", String(16), nullable=False, comment="airkorea or tmdb"),
    Column("range_from", Date, nullable=False, comment="first KST day of the range"),
    Column("range_to", Date, nullable=False, comment="last KST day of the range"),
    Column("arguments", Text, nullable=False, comment="JSON of the selection (stations, region, window)"),
    Column("status", String(16), nullable=False, comment="running, done, paused (quota), failed"),
    Column("created_at", UTCDateTime, nullable=False, comment="UTC"),
    Column("updated_at", UTCDateTime, nullable=False, comment="UTC"),
    comment="One row per backfill (a source, a date range and a selection).",
)

backfill_chunks = Table(
    "backfill_chunks",
    metadata,
    Column("backfill_id", String(200), ForeignKey("backfills.id"), primary_key=True),
    Column("chunk", String(200), primary_key=True, comment="a station name, or a TMDB page range such as pages 1-10"),
    Column("status", String(16), nullable=False, comment="pending, done, failed"),
    Column("attempts", Integer, nullable=False, default=0, comment="times the chunk was started"),
    Column("rows", Integer, nullable=False, default=0, comment="rows upserted by the chunk"),
    Column("error", Text, comment="redacted error of the last failed attempt"),
    Column("run_id", Integer, ForeignKey("runs.id"), comment="the run that last worked on the chunk"),
    Column("updated_at", UTCDateTime, nullable=False, comment="UTC"),
    comment="The backfill ledger: a chunk marked done is never fetched again when the backfill resumes.",
)
Index(None, backfill_chunks.c.backfill_id, backfill_chunks.c.status)
