"""Idempotent writes of each entity: stations, readings, movies, snapshots, rejects. Each returns a count.

Upserts are chunked executemany ``INSERT … ON CONFLICT DO UPDATE`` through the process's
:class:`~pipeline.load.writer.Writer`, one short transaction a chunk; the statements and row codecs are in
:mod:`pipeline.load.statements` and :mod:`pipeline.load.rows`.
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
from pipeline.load.tables import air_readings, air_stations, movie_snapshots, movies, rejects
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


async def upsert_air_readings(
    writer: Writer, readings: AirBatch | Sequence[AirReading], run_id: int, now: datetime
) -> int:
    """A transform batch (or records: tests, the bench) as ``air_readings`` rows."""
    batch = readings if isinstance(readings, AirBatch) else AirBatch.from_readings(readings)
    prepared = writer.prepare(air_readings)
    return await writer.write_encoded(prepared, encode_readings(prepared.codec, batch, run_id, now))


async def upsert_encoded_readings(writer: Writer, rows: Encoded) -> int:
    """Readings encoded elsewhere (a backfill's worker process) with ``writer.prepare(air_readings).codec``."""
    return await writer.write_encoded(writer.prepare(air_readings), rows)


async def upsert_movies(
    writer: Writer, items: Sequence[Movie], run_id: int, now: datetime, *, details: bool = True
) -> int:
    fetched_at = now if details else None
    rows = [(*_MOVIE_FIELDS(m), details, now, now, run_id, fetched_at) for m in items]
    if details:
        return await writer.write(writer.prepare(movies, keep=("first_seen_at",)), rows)
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
_SNAPSHOT_NAMES = [f.name for f in dataclass_fields(MovieSnapshot) if f.name not in ("tmdb_id", "list_name")]
_SNAPSHOT_VALUES = attrgetter(*_SNAPSHOT_NAMES)
_check_order(movie_snapshots, _SNAPSHOT_NAMES, (), prefix=("run_id", "tmdb_id", "list_name", "captured_at"))
