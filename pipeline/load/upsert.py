"""Idempotent writes of each entity: stations, readings, movies, snapshots, rejects. Each returns a count.

Upserts are chunked ``INSERT … ON CONFLICT DO UPDATE`` through the process's
:class:`~pipeline.load.writer.Writer`, one short transaction a chunk (on SQLite many rows a statement, on
PostgreSQL ``COPY`` for large chunks); the statements and row codecs are in :mod:`pipeline.load.statements`
and :mod:`pipeline.load.rows`.

Readings and movies are write-nothing upserts (``UpsertOptions.compare``): a row whose values did not change
is not written again, so ``updated_at`` and the run point at the write that last changed it, and every
update is a real change, which the database's triggers record in ``air_reading_revisions`` and
``movie_revisions`` (migration 0007). A row is never replaced by values written before it (``newer``), but
is by the run that wrote it: a replay after a transform was fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from operator import attrgetter

from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import LoadError
from pipeline.load.rows import Encoded, encode_readings
from pipeline.load.statements import Prepared
from pipeline.load.tables import READING_VALUES, air_readings, air_stations, movie_snapshots, movies, rejects
from pipeline.load.writer import Writer
from pipeline.redaction import redact
from pipeline.transform.airkorea import AirBatch, AirReading, AirStation
from pipeline.transform.common import Reject
from pipeline.transform.tmdb import Movie, MovieSnapshot


async def upsert_air_stations(writer: Writer, stations: Sequence[AirStation], now: datetime) -> int:
    rows = [(s.station_name, s.sido_name, s.station_code, s.mang_name, now, now) for s in stations]
    prepared = writer.prepare(
        air_stations, keep=("first_seen_at",), coalesce=("sido_name", "station_code", "mang_name")
    )
    return await writer.write(prepared, rows)


def readings_upsert(writer: Writer) -> Prepared:
    """The write-nothing upsert of ``air_readings``: a reading is rewritten when a value, grade or flag
    changed (and then the trigger records a revision), never by values written before the stored ones
    (see :class:`~pipeline.load.statements.UpsertOptions`)."""
    return writer.prepare(air_readings, compare=READING_VALUES, newer=("updated_at", "run_id"), digest="values_digest")


async def upsert_air_readings(
    writer: Writer, readings: AirBatch | Sequence[AirReading], run_id: int, now: datetime
) -> int:
    """A transform batch (or records: tests, the bench) as ``air_readings`` rows; returns the rows new or
    changed."""
    batch = readings if isinstance(readings, AirBatch) else AirBatch.from_readings(readings)
    prepared = readings_upsert(writer)
    return await writer.write_encoded(prepared, encode_readings(prepared.codec, batch, run_id, now))


async def upsert_encoded_readings(writer: Writer, rows: Encoded) -> int:
    """Readings encoded elsewhere (a backfill's worker process) with ``writer.prepare(air_readings).codec``."""
    return await writer.write_encoded(readings_upsert(writer), rows)


async def upsert_movies(
    writer: Writer,
    items: Sequence[Movie],
    run_id: int,
    now: datetime,
    *,
    details: bool = True,
    written_at: datetime | None = None,
) -> int:
    """Movies from their details (``details_fetched_at = now``, what the details TTL compares against), or
    bare list items that never overwrite details. ``written_at`` (default ``now``) is the rows' ``updated_at``:
    the wall clock of the write, which orders writes (see the module docstring)."""
    fetched_at = now if details else None
    written = written_at or now
    rows = [(*_MOVIE_FIELDS(m), details, written, written, run_id, fetched_at) for m in items]
    if details:
        prepared = writer.prepare(
            movies, keep=("first_seen_at",), compare=_MOVIE_COMPARED, newer=("updated_at", "last_run_id")
        )
        return await writer.write(prepared, rows)
    # a bare list item must never overwrite what the details told us
    return await writer.write(writer.prepare(movies, do_nothing=True), rows)


async def insert_snapshots(
    writer: Writer, snapshots: Sequence[MovieSnapshot], run_id: int, captured_at: datetime
) -> int:
    rows = [(run_id, s.tmdb_id, s.list_name, captured_at, *_SNAPSHOT_VALUES(s)) for s in snapshots]
    return await writer.write(writer.prepare(movie_snapshots), rows)


async def insert_rejects(writer: Writer, items: Sequence[Reject], run_id: int) -> int:
    if not items:
        return 0
    now = datetime.now(UTC)
    rows = [{**asdict(r), "run_id": run_id, "created_at": now} for r in items]
    try:
        async with writer.transaction() as conn:
            await conn.execute(rejects.insert(), rows)
    except SQLAlchemyError as exc:
        raise LoadError(redact(f"writing rejects failed: {exc}").splitlines()[0]) from None
    return len(rows)


def _check_order(table: Table, fields: Sequence[str], extra: Sequence[str], prefix: Sequence[str] = ()) -> None:
    """The row builders above rely on the record fields being in the table's column order."""
    expected = [c.name for c in table.columns]
    if [*prefix, *fields, *extra] != expected:
        raise AssertionError(f"{table.name}: record fields do not follow the table's columns")


_MOVIE_NAMES = [f.name for f in dataclass_fields(Movie)]
_MOVIE_FIELDS = attrgetter(*_MOVIE_NAMES)
_check_order(
    movies, _MOVIE_NAMES, ("details_fetched", "first_seen_at", "updated_at", "last_run_id", "details_fetched_at")
)
#: a movie row is rewritten when any of these changed (the details' fetch time too: the TTL counts from it)
_MOVIE_COMPARED = tuple(c.name for c in movies.columns if c.name not in ("tmdb_id", "first_seen_at", "updated_at",
                                                                       "last_run_id"))  # fmt: skip
_SNAPSHOT_NAMES = [f.name for f in dataclass_fields(MovieSnapshot) if f.name not in ("tmdb_id", "list_name")]
_SNAPSHOT_VALUES = attrgetter(*_SNAPSHOT_NAMES)
_check_order(movie_snapshots, _SNAPSHOT_NAMES, (), prefix=("run_id", "tmdb_id", "list_name", "captured_at"))
