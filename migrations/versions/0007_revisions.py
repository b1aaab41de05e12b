"""revisions: air_reading_revisions and movie_revisions written by triggers, their views, now-playing intervals

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:00:00

A trigger on each table writes a revision when an UPDATE changes a tracked column: the loader's upserts are
write-nothing (an unchanged row is not updated at all, see ``UpsertOptions.compare``), so a revision is a
real change, whoever wrote it (the daemon, a backfill, a replay, or someone's own UPDATE). Only the columns
that changed get their ``old_``/``new_`` values; ``changed`` lists them between spaces, so that one
``LIKE '% pm10 %'`` finds them on both backends. The SQL is frozen here (per dialect: SQLite compares with
``IS NOT``, PostgreSQL with ``IS DISTINCT FROM``); the columns' meaning is documented in
``pipeline/load/tables.py`` and the views' in ``pipeline/load/views.py``.

TMDB's ``vote_average`` with ``vote_count = 0`` is no rating: existing rows get NULL, as the transform now
gives.

``air_readings.values_digest`` is new: a fingerprint of each row's values, which the loader reads instead of
the values to find the rows it need not send again (rows written before have none: they are compared in SQL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.load.tables import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (column, type, comment of its old_ value) of air_readings whose change is a revision
READING_VALUES: tuple[tuple[str, sa.types.TypeEngine[object], str], ...] = (
    ("so2", sa.Float(), "so2 before the change (ppm); NULL when unchanged"),
    ("co", sa.Float(), "co before the change (ppm); NULL when unchanged"),
    ("o3", sa.Float(), "o3 before the change (ppm); NULL when unchanged"),
    ("no2", sa.Float(), "no2 before the change (ppm); NULL when unchanged"),
    ("pm10", sa.Integer(), "pm10 before the change (µg/m³); NULL when unchanged"),
    ("pm25", sa.Integer(), "pm25 before the change (µg/m³); NULL when unchanged"),
    (
        "pm10_24h",
        sa.Integer(),
        "pm10_24h before the change (µg/m³, 24-hour predicted moving concentration); NULL when unchanged",
    ),
    (
        "pm25_24h",
        sa.Integer(),
        "pm25_24h before the change (µg/m³, 24-hour predicted moving concentration); NULL when unchanged",
    ),
    ("khai", sa.Integer(), "khai before the change (comprehensive air-quality index (CAI)); NULL when unchanged"),
    (
        "so2_grade",
        sa.Integer(),
        "so2_grade before the change (1 good, 2 moderate, 3 bad, 4 very bad); NULL when unchanged",
    ),
    ("co_grade", sa.Integer(), "co_grade before the change (1-4); NULL when unchanged"),
    ("o3_grade", sa.Integer(), "o3_grade before the change (1-4); NULL when unchanged"),
    ("no2_grade", sa.Integer(), "no2_grade before the change (1-4); NULL when unchanged"),
    ("pm10_grade", sa.Integer(), "pm10_grade before the change (1-4, 24-hour grade); NULL when unchanged"),
    ("pm25_grade", sa.Integer(), "pm25_grade before the change (1-4, 24-hour grade); NULL when unchanged"),
    ("pm10_grade_1h", sa.Integer(), "pm10_grade_1h before the change (1-4, 1-hour grade); NULL when unchanged"),
    ("pm25_grade_1h", sa.Integer(), "pm25_grade_1h before the change (1-4, 1-hour grade); NULL when unchanged"),
    ("khai_grade", sa.Integer(), "khai_grade before the change (1-4); NULL when unchanged"),
    (
        "so2_flag",
        sa.Text(),
        "so2_flag before the change (status of the SO2 value: 통신장애, 점검및교정, 장비점검, 자료이상, …); NULL when unchanged",
    ),
    ("co_flag", sa.Text(), "co_flag before the change (status of the CO value); NULL when unchanged"),
    ("o3_flag", sa.Text(), "o3_flag before the change (status of the O3 value); NULL when unchanged"),
    ("no2_flag", sa.Text(), "no2_flag before the change (status of the NO2 value); NULL when unchanged"),
    ("pm10_flag", sa.Text(), "pm10_flag before the change (status of the PM10 value); NULL when unchanged"),
    ("pm25_flag", sa.Text(), "pm25_flag before the change (status of the PM2.5 value); NULL when unchanged"),
)

#: the same for a movie's descriptive fields
MOVIE_FIELDS: tuple[tuple[str, sa.types.TypeEngine[object], str], ...] = (
    ("title", sa.Text(), "title before the change (title in the configured language); NULL when unchanged"),
    (
        "original_title",
        sa.Text(),
        "original_title before the change (title in the original language); NULL when unchanged",
    ),
    ("original_language", sa.String(length=8), "original_language before the change (ISO 639-1); NULL when unchanged"),
    ("overview", sa.Text(), "overview before the change; NULL when unchanged"),
    ("tagline", sa.Text(), "tagline before the change; NULL when unchanged"),
    ("homepage", sa.Text(), "homepage before the change; NULL when unchanged"),
    ("status", sa.String(length=32), "status before the change (Released, Post Production, ...); NULL when unchanged"),
    ("release_date", sa.Date(), "release_date before the change (primary release date); NULL when unchanged"),
    ("runtime", sa.Integer(), "runtime before the change (minutes); NULL when unchanged"),
    ("budget", sa.BigInteger(), "budget before the change (USD); NULL when unchanged"),
    ("revenue", sa.BigInteger(), "revenue before the change (USD); NULL when unchanged"),
    ("genres", sa.Text(), "genres before the change (JSON array of genre names); NULL when unchanged"),
    ("genre_ids", sa.Text(), "genre_ids before the change (JSON array of TMDB genre ids); NULL when unchanged"),
    (
        "origin_country",
        sa.Text(),
        "origin_country before the change (JSON array of ISO 3166-1 codes); NULL when unchanged",
    ),
    (
        "production_countries",
        sa.Text(),
        "production_countries before the change (JSON array of ISO 3166-1 codes); NULL when unchanged",
    ),
    (
        "spoken_languages",
        sa.Text(),
        "spoken_languages before the change (JSON array of ISO 639-1 codes); NULL when unchanged",
    ),
    (
        "collection_id",
        sa.Integer(),
        "collection_id before the change (TMDB collection the movie belongs to); NULL when unchanged",
    ),
    ("collection_name", sa.Text(), "collection_name before the change; NULL when unchanged"),
    ("imdb_id", sa.String(length=16), "imdb_id before the change (tt1234567); NULL when unchanged"),
    (
        "poster_path",
        sa.Text(),
        "poster_path before the change (image path: prefix with https://image.tmdb.org/t/p/w500); NULL when unchanged",
    ),
    ("backdrop_path", sa.Text(), "backdrop_path before the change (image path); NULL when unchanged"),
    ("adult", sa.Boolean(), "adult before the change; NULL when unchanged"),
)

#: a change of the values that left the digest as it was (someone's own UPDATE): the digest no longer vouches
#: for the values, so the loader compares them in SQL next time
STALE_DIGEST = (
    "UPDATE air_readings SET values_digest = NULL WHERE station_name = NEW.station_name "
    "AND measured_at = NEW.measured_at AND NEW.values_digest IS NOT NULL AND NOT ({same});"
)

#: air_readings' run and time now say when the row last changed: (column, old comment, new comment)
READING_COMMENTS = (
    ("run_id", "the last run that wrote the row", "the last run that changed the row"),
    ("updated_at", "when the row was last written (UTC)", "when the row was last changed (UTC)"),
)
VOTES_WAS = "0-10"
VOTES = "0-10; NULL when nobody voted (TMDB sends 0 with vote_count 0)"

#: the pollutants of air_revised_values: (value, 24-hour value, grade, 1-hour grade, flag) columns
POLLUTANT_COLUMNS = {
    "so2": ("so2", None, "so2_grade", None, "so2_flag"),
    "co": ("co", None, "co_grade", None, "co_flag"),
    "o3": ("o3", None, "o3_grade", None, "o3_flag"),
    "no2": ("no2", None, "no2_grade", None, "no2_flag"),
    "pm10": ("pm10", "pm10_24h", "pm10_grade", "pm10_grade_1h", "pm10_flag"),
    "pm25": ("pm25", "pm25_24h", "pm25_grade", "pm25_grade_1h", "pm25_flag"),
    "khai": ("khai", None, "khai_grade", None, None),
}


def _pairs(values: tuple[tuple[str, sa.types.TypeEngine[object], str], ...]) -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = []
    for name, kind, comment in values:
        columns.append(sa.Column(f"old_{name}", kind, nullable=True, comment=comment))
        columns.append(
            sa.Column(f"new_{name}", kind, nullable=True, comment=f"{name} after the change; NULL when unchanged")
        )
    return columns


def _distinct(a: str, b: str, dialect: str) -> str:
    return f"{a} IS DISTINCT FROM {b}" if dialect == "postgresql" else f"{a} IS NOT {b}"


def _revision_values(names: Sequence[str], dialect: str) -> tuple[str, str, str]:
    """The trigger's WHEN condition, the ``changed`` expression, and the old/new values."""
    differs = {n: _distinct(f"OLD.{n}", f"NEW.{n}", dialect) for n in names}
    when = " OR ".join(differs.values())
    changed = "' ' || " + " || ".join(f"CASE WHEN {differs[n]} THEN '{n} ' ELSE '' END" for n in names)
    values = ", ".join(
        f"CASE WHEN {differs[n]} THEN OLD.{n} END, CASE WHEN {differs[n]} THEN NEW.{n} END" for n in names
    )
    return when, changed, values


def _trigger_sql(table: str, revisions: str, head: dict[str, str], names: Sequence[str], dialect: str,
                 only_when: str = "", then: str = "") -> list[str]:  # fmt: skip
    """SQL creating the trigger that writes ``revisions`` when an UPDATE of ``table`` changes ``names`` (and
    then runs ``then``)."""
    when, changed, values = _revision_values(names, dialect)
    if only_when:
        when = f"{only_when} AND ({when})"
    columns = ", ".join([*head, "changed", *(f"old_{n}, new_{n}" for n in names)])
    insert = f"INSERT INTO {revisions} ({columns}) VALUES ({', '.join(head.values())}, {changed}, {values});"
    if then:
        insert = f"{insert}\n  {then}"
    name = f"{table}_revised"
    if dialect == "postgresql":
        return [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  {insert}\n  RETURN NULL;\nEND\n$$",
            f"CREATE TRIGGER {name} AFTER UPDATE ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {name}()",
        ]
    return [f"CREATE TRIGGER {name} AFTER UPDATE ON {table} FOR EACH ROW WHEN {when}\nBEGIN\n  {insert}\nEND"]


def trigger_sql(dialect: str) -> list[str]:
    reading_head = {
        "station_name": "NEW.station_name",
        "measured_at": "NEW.measured_at",
        "run_id": "NEW.run_id",
        "revised_at": "NEW.updated_at",
        "previous_run_id": "OLD.run_id",
        "previous_at": "OLD.updated_at",
    }
    movie_head = {
        "tmdb_id": "NEW.tmdb_id",
        "run_id": "NEW.last_run_id",
        "revised_at": "NEW.updated_at",
        "previous_run_id": "OLD.last_run_id",
        "previous_at": "OLD.updated_at",
    }
    details_known = "OLD.details_fetched" if dialect == "postgresql" else "OLD.details_fetched = 1"
    return [
        *_trigger_sql(
            "air_readings",
            "air_reading_revisions",
            reading_head,
            [n for n, _, _ in READING_VALUES],
            dialect,
            then=STALE_DIGEST.format(same=_distinct("NEW.values_digest", "OLD.values_digest", dialect)),
        ),
        *_trigger_sql(
            "movies", "movie_revisions", movie_head, [n for n, _, _ in MOVIE_FIELDS], dialect, only_when=details_known
        ),
    ]


def _hours_between(later: str, earlier: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"(CAST(EXTRACT(EPOCH FROM {later} - {earlier}) AS DOUBLE PRECISION) / 3600.0)"
    return f"((julianday({later}) - julianday({earlier})) * 24.0)"


def view_sql(dialect: str) -> dict[str, str]:
    def col(name: str | None, side: str, kind: str) -> str:
        return f"v.{side}_{name}" if name else f"CAST(NULL AS {kind})"

    branches = []
    for pollutant, (value, value_24h, grade, grade_1h, flag) in POLLUTANT_COLUMNS.items():
        members = [c for c in (value, value_24h, grade, grade_1h, flag) if c]
        where = " OR ".join(f"v.changed LIKE '% {c} %'" for c in members)
        branches.append(f"""
SELECT v.id AS revision_id, v.station_name, v.measured_at, v.run_id, v.revised_at, v.previous_at,
       '{pollutant}' AS pollutant, v.changed,
       CAST({col(value, "old", "")} AS DOUBLE PRECISION) AS old_value, CAST({col(value, "new", "")} AS DOUBLE PRECISION) AS new_value,
       {col(value_24h, "old", "INTEGER")} AS old_value_24h, {col(value_24h, "new", "INTEGER")} AS new_value_24h,
       {col(grade, "old", "INTEGER")} AS old_grade, {col(grade, "new", "INTEGER")} AS new_grade,
       {col(grade_1h, "old", "INTEGER")} AS old_grade_1h, {col(grade_1h, "new", "INTEGER")} AS new_grade_1h,
       {col(flag, "old", "TEXT")} AS old_flag, {col(flag, "new", "TEXT")} AS new_flag
FROM air_reading_revisions v
WHERE {where}""")
    delay = _hours_between("max(revised_at)", "min(previous_at)", dialect)
    return {
        "air_revised_values": "\nUNION ALL".join(branches),
        "air_revised_readings": f"""
SELECT station_name, measured_at, count(*) AS revisions, min(previous_at) AS first_written_at,
       max(revised_at) AS last_revised_at, {delay} AS delay_hours
FROM air_reading_revisions
GROUP BY station_name, measured_at""",
        "now_playing_intervals": """
WITH list_runs AS (
    SELECT run_id, captured_at, row_number() OVER (ORDER BY captured_at, run_id) AS n
    FROM (SELECT DISTINCT run_id, captured_at FROM movie_snapshots WHERE list_name = 'now_playing') listed
),
seen AS (
    SELECT s.tmdb_id, l.n, l.captured_at, l.n - row_number() OVER (PARTITION BY s.tmdb_id ORDER BY l.n) AS island
    FROM movie_snapshots s JOIN list_runs l ON l.run_id = s.run_id
    WHERE s.list_name = 'now_playing'
),
spans AS (
    SELECT tmdb_id, min(n) AS first_n, max(n) AS last_n, min(captured_at) AS entered_at,
           max(captured_at) AS last_seen_at, count(*) AS snapshots
    FROM seen GROUP BY tmdb_id, island
)
SELECT p.tmdb_id, m.title, row_number() OVER (PARTITION BY p.tmdb_id ORDER BY p.first_n) AS interval_no,
       p.entered_at, p.last_seen_at, after.captured_at AS left_at, p.snapshots
FROM spans p
JOIN movies m ON m.tmdb_id = p.tmdb_id
LEFT JOIN list_runs after ON after.n = p.last_n + 1""",
    }


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column(
        "air_readings",
        sa.Column(
            "values_digest",
            sa.BigInteger(),
            nullable=True,
            comment="64-bit fingerprint of the values, grades and flags, which the loader compares before it sends "
            "a row again; NULL for rows written before migration 0007",
        ),
    )
    if dialect == "postgresql":
        for column, was, comment in READING_COMMENTS:
            op.alter_column("air_readings", column, existing_type=sa.Integer() if column == "run_id" else UTCDateTime(),
                            existing_nullable=column == "run_id", existing_comment=was, comment=comment)  # fmt: skip
    op.create_table(
        "air_reading_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False, comment="order of the changes"),
        sa.Column("station_name", sa.Text(), nullable=False, comment="the station"),
        sa.Column("measured_at", UTCDateTime(), nullable=False, comment="UTC end of the measured hour"),
        sa.Column("run_id", sa.Integer(), nullable=True, comment="the run whose values replaced the stored ones"),
        sa.Column("revised_at", UTCDateTime(), nullable=False, comment="when the new values were written (UTC)"),
        sa.Column(
            "previous_run_id", sa.Integer(), nullable=True, comment="the run that had written the replaced values"
        ),
        sa.Column(
            "previous_at",
            UTCDateTime(),
            nullable=False,
            comment="when the replaced values were written (UTC): for a reading's first revision, its first publication",
        ),
        sa.Column(
            "changed",
            sa.Text(),
            nullable=False,
            comment="the columns that changed, space-separated with a space at each end: ' pm10 pm10_flag '",
        ),
        *_pairs(READING_VALUES),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_air_reading_revisions_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_air_reading_revisions")),
        comment="One row per change of a stored reading (a revision by AirKorea, or a series disagreeing with a "
        "poll): the old and new value of each column that changed. Written by a trigger on air_readings.",
    )
    with op.batch_alter_table("air_reading_revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_air_reading_revisions_revised_at"), ["revised_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_air_reading_revisions_station_name_measured_at"),
            ["station_name", "measured_at"],
            unique=False,
        )
    op.create_table(
        "movie_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False, comment="order of the changes"),
        sa.Column("tmdb_id", sa.Integer(), nullable=False, comment="TMDB movie id"),
        sa.Column("run_id", sa.Integer(), nullable=True, comment="the run whose details replaced the stored ones"),
        sa.Column("revised_at", UTCDateTime(), nullable=False, comment="when the new details were written (UTC)"),
        sa.Column(
            "previous_run_id", sa.Integer(), nullable=True, comment="the run that had written the replaced details"
        ),
        sa.Column("previous_at", UTCDateTime(), nullable=False, comment="when the replaced details were written (UTC)"),
        sa.Column(
            "changed",
            sa.Text(),
            nullable=False,
            comment="the fields that changed, space-separated with a space at each end: ' title runtime '",
        ),
        *_pairs(MOVIE_FIELDS),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_movie_revisions_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_movie_revisions")),
        comment="One row per change of a movie's descriptive fields once its details are known: the old and new "
        "value of each field that changed. Written by a trigger on movies.",
    )
    with op.batch_alter_table("movie_revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_movie_revisions_tmdb_id"), ["tmdb_id"], unique=False)
    for table in ("movies", "movie_snapshots"):
        op.execute(f"UPDATE {table} SET vote_average = NULL WHERE vote_count = 0")
        if dialect == "postgresql":  # SQLite keeps no comments (and would copy the table to change one)
            op.alter_column(table, "vote_average", existing_type=sa.Float(), existing_nullable=True,
                            existing_comment=VOTES_WAS, comment=VOTES)  # fmt: skip
    for statement in trigger_sql(dialect):
        op.execute(statement)
    for name, sql in view_sql(dialect).items():
        op.execute(f"CREATE VIEW {name} AS{sql}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for column, was, comment in READING_COMMENTS:
            op.alter_column("air_readings", column, existing_type=sa.Integer() if column == "run_id" else UTCDateTime(),
                            existing_nullable=column == "run_id", existing_comment=comment, comment=was)  # fmt: skip
    for table in ("movies", "movie_snapshots"):
        if dialect == "postgresql":
            op.alter_column(table, "vote_average", existing_type=sa.Float(), existing_nullable=True,
                            existing_comment=VOTES, comment=VOTES_WAS)  # fmt: skip
    for name in reversed(list(view_sql(dialect))):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for table in ("movies", "air_readings"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_revised" + (f" ON {table}" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_revised()")
    with op.batch_alter_table("movie_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_movie_revisions_tmdb_id"))
    op.drop_table("movie_revisions")
    with op.batch_alter_table("air_reading_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_air_reading_revisions_station_name_measured_at"))
        batch_op.drop_index(batch_op.f("ix_air_reading_revisions_revised_at"))
    op.drop_table("air_reading_revisions")
    # SQLite 3.35+ drops a column in place (a batch copy of the table would trip over the views on it)
    op.execute("ALTER TABLE air_readings DROP COLUMN values_digest")
