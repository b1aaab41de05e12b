"""The dashboard's reads: SQLAlchemy Core on both backends, every value bound, every list limited.

Each query is served by a key or an index, never a scan of ``air_readings`` (5.9 M rows a year at 670
stations); what SQLite's EXPLAIN QUERY PLAN says of each, on such a year, is in its docstring. Figures a
query cannot give cheaply are left out rather than scanned for (the archive's total bytes: its bodies are
BLOBs, and summing their sizes reads every page of them; the page shows the last 24 hours instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    or_,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from pipeline.load.tables import (
    air_coverage,
    air_published_hours,
    air_reading_revisions,
    air_readings,
    air_stations,
    movie_revisions,
    movie_snapshots,
    movies,
    raw_bodies,
    raw_responses,
    rejects,
    runs,
)
from pipeline.transform.coverage import FULL_DAY, HOURS

STATIONS_LIMIT: Final = 2000  # ~670 stations nationwide (airkorea.md §9)
RUNS_LIMIT: Final = 20
REJECT_REASONS_LIMIT: Final = 50
RANKING_LIMIT: Final = 500  # a now-playing list of sources.tmdb.max_pages × 20 movies, at most 10 000
HISTORY_LIMIT: Final = 500  # a movie's newest snapshots (four list runs a day: four months)
LIST_RUNS_LIMIT: Final = 2000
ARCHIVE_24H_LIMIT: Final = 20_000  # responses of the last 24 hours read to weigh them
NOW_PLAYING: Final = "now_playing"

#: the ``air_daily`` view (migration 0002): the columns the Air view reads
air_daily = table(
    "air_daily",
    column("station_name", Text),
    column("kst_date", Date),
    column("hours", Integer),
    column("pm10_mean", Float),
    column("pm10_max", Integer),
    column("pm10_hours", Integer),
    column("pm25_mean", Float),
    column("pm25_max", Integer),
    column("pm25_hours", Integer),
)


# --- Air --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StationReading:
    """A station and its newest reading (``measured_at`` ``None``: it has none yet)."""

    station_name: str
    sido_name: str | None
    mang_name: str | None
    measured_at: datetime | None
    pm10: int | None
    pm25: int | None
    pm10_flag: str | None
    pm25_flag: str | None


async def newest_readings(conn: AsyncConnection) -> list[StationReading]:
    """Every station with its newest reading, by province and name.

    The newest hour of each station is one descending seek of the key (station_name, measured_at):
    ``SCAN s USING INDEX ix_air_stations_sido_name`` / ``SEARCH r USING INDEX sqlite_autoindex_air_readings_1
    (station_name=? AND measured_at=?)`` / ``CORRELATED SCALAR SUBQUERY: SEARCH x USING COVERING INDEX
    sqlite_autoindex_air_readings_1 (station_name=?)`` — 670 seeks, ~7 ms on a year.
    """
    s, r = air_stations.c, air_readings.c
    x = air_readings.alias("x")
    newest = (
        select(x.c.measured_at)
        .where(x.c.station_name == s.station_name)
        .order_by(x.c.measured_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(s.station_name, s.sido_name, s.mang_name, r.measured_at, r.pm10, r.pm25, r.pm10_flag, r.pm25_flag)
        .select_from(
            air_stations.outerjoin(air_readings, and_(r.station_name == s.station_name, r.measured_at == newest))
        )
        .order_by(s.sido_name, s.station_name)
        .limit(STATIONS_LIMIT)
    )
    rows = (await conn.execute(query)).all()
    return [StationReading(*row) for row in rows]


async def known_station(conn: AsyncConnection, name: str) -> bool:
    """Whether ``name`` is a station (its key: ``SEARCH air_stations USING COVERING INDEX …_1``)."""
    query = select(air_stations.c.station_name).where(air_stations.c.station_name == name)
    return (await conn.execute(query)).first() is not None


async def newest_published(conn: AsyncConnection) -> datetime | None:
    """The newest hour a province poll saw published (``air_published_hours``' key, one seek)."""
    found: datetime | None = (await conn.execute(select(func.max(air_published_hours.c.measured_at)))).scalar()
    return found


@dataclass(frozen=True, slots=True)
class HourReading:
    measured_at: datetime
    pm10: int | None
    pm25: int | None
    pm10_flag: str | None
    pm25_flag: str | None


async def station_hours(conn: AsyncConnection, station: str, first: datetime, last: datetime) -> list[HourReading]:
    """The station's readings ending in [first, last]: a range of the key
    (``SEARCH air_readings USING INDEX …_1 (station_name=? AND measured_at>? AND measured_at<?)``)."""
    r = air_readings.c
    query = (
        select(r.measured_at, r.pm10, r.pm25, r.pm10_flag, r.pm25_flag)
        .where(r.station_name == station, r.measured_at >= first, r.measured_at <= last)
        .order_by(r.measured_at)
        .limit(24 * 62)
    )
    return [HourReading(*row) for row in (await conn.execute(query)).all()]


@dataclass(frozen=True, slots=True)
class DayMeans:
    kst_date: date
    hours: int
    pm10_mean: float | None
    pm10_max: int | None
    pm10_hours: int
    pm25_mean: float | None
    pm25_max: int | None
    pm25_hours: int


async def station_days(conn: AsyncConnection, station: str, first: date, last: date) -> list[DayMeans]:
    """The ``air_daily`` view for one station and a range of KST days: the station's filter is pushed into
    the view's GROUP BY, so it reads that station's key range only (``CO-ROUTINE air_daily: SEARCH r USING
    INDEX …_1 (station_name=?)``, a year of one station's hours: ~5 ms)."""
    d = air_daily.c
    query = (
        select(d.kst_date, d.hours, d.pm10_mean, d.pm10_max, d.pm10_hours, d.pm25_mean, d.pm25_max, d.pm25_hours)
        .where(d.station_name == station, d.kst_date >= first, d.kst_date <= last)
        .order_by(d.kst_date)
        .limit(62)
    )
    return [DayMeans(*row) for row in (await conn.execute(query)).all()]


# --- Collection -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    job: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    requests: int
    rows_fetched: int
    rows_upserted: int
    rows_rejected: int
    error: str | None

    @property
    def seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None


async def recent_runs(conn: AsyncConnection, limit: int = RUNS_LIMIT) -> list[RunRow]:
    """The newest runs: the key read backwards (``SCAN runs``, stopped after ``limit`` rows)."""
    c = runs.c
    query = (
        select(c.id, c.job, c.trigger, c.status, c.started_at, c.finished_at, c.requests, c.rows_fetched,
               c.rows_upserted, c.rows_rejected, c.error)
        .order_by(c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [RunRow(*row) for row in (await conn.execute(query)).all()]


@dataclass(frozen=True, slots=True)
class RejectCount:
    source: str
    reason: str
    count: int
    last_at: datetime


async def reject_reasons(conn: AsyncConnection, since: datetime) -> list[RejectCount]:
    """Rejects written since ``since``, by source and reason, most frequent first.

    ``rejects`` has no index on ``created_at``; its ``run_id`` index narrows it to the runs active since then
    (``runs`` is small: ~10 000 rows a year), and ``created_at`` keeps exactly the window.
    """
    rj, c = rejects.c, runs.c
    active = select(c.id).where(or_(c.started_at >= since, c.finished_at >= since, c.finished_at.is_(None)))
    count = func.count().label("n")
    query = (
        select(rj.source, rj.reason, count, func.max(rj.created_at).label("last_at"))
        .where(rj.run_id.in_(active), rj.created_at >= since)
        .group_by(rj.source, rj.reason)
        .order_by(count.desc(), rj.source, rj.reason)
        .limit(REJECT_REASONS_LIMIT)
    )
    return [RejectCount(*row) for row in (await conn.execute(query)).all()]


def _bit_count(mask: ColumnElement[int]) -> ColumnElement[int]:
    """The set bits of a day mask in portable SQL (neither SQLite nor PostgreSQL has one popcount)."""
    total: ColumnElement[int] = mask.bitwise_and(1)
    for bit in range(1, HOURS):
        total = total + mask.bitwise_rshift(bit).bitwise_and(1)
    return total


@dataclass(frozen=True, slots=True)
class ProvinceDay:
    sido_name: str | None
    kst_date: date
    held: int  # station-hours received or flagged
    published: int  # station-hours expected and not marked never published

    @property
    def percent(self) -> float | None:
        return 100.0 * self.held / self.published if self.published else None


async def province_days(conn: AsyncConnection, first: date, last: date) -> list[ProvinceDay]:
    """The completeness ledger per province and KST day: what ``air_completeness`` computes (percent of the
    published station-hours received or flagged), its bits counted only on the station-days that are not
    whole (a CASE is lazy): 14 days of 670 stations are 9 380 rows of the key range
    (``SEARCH c USING INDEX sqlite_autoindex_air_coverage_1 (kst_date>? AND kst_date<?)`` and each station's
    key), ~25 ms, against ~60 ms through the view, which counts every bit of every row."""
    rows = (await conn.execute(_province_days(), {"first": first, "last": last})).all()
    return [ProvinceDay(row.sido_name, row.kst_date, int(row.held or 0), int(row.published or 0)) for row in rows]


@cache
def _province_days() -> Select[Any]:
    """Built once: its 72 bit tests cost more to build than the statement costs to run."""
    c, s = air_coverage.c, air_stations.c
    held_mask = c.received.bitwise_or(c.flagged)
    whole_day = and_(c.expected == FULL_DAY, c.unpublished == 0)
    held = func.sum(case((and_(whole_day, held_mask == FULL_DAY), HOURS), else_=_bit_count(held_mask)))
    published = func.sum(case((whole_day, HOURS), else_=_bit_count(c.expected) - _bit_count(c.unpublished)))
    return (
        select(s.sido_name, c.kst_date, held.label("held"), published.label("published"))
        .select_from(air_coverage.outerjoin(air_stations, s.station_name == c.station_name))
        .where(c.kst_date >= bindparam("first", type_=Date()), c.kst_date <= bindparam("last", type_=Date()))
        .group_by(s.sido_name, c.kst_date)
        .order_by(s.sido_name, c.kst_date)
        .limit(40 * 62)
    )


@dataclass(frozen=True, slots=True)
class ArchiveDay:
    """What the raw archive took in over a window (24 hours): responses, bytes received, bytes newly stored."""

    responses: int
    received_bytes: int
    bodies_stored: int
    stored_bytes: int
    capped: bool  # more responses than ARCHIVE_24H_LIMIT: the figures are a lower bound


async def archive_since(conn: AsyncConnection, since: datetime) -> ArchiveDay:
    """Responses fetched since ``since`` and their bodies (``raw_responses``' ``fetched_at`` index, each body
    by its key); a body first stored in the window counts its compressed bytes once."""
    r, b = raw_responses.c, raw_bodies.c
    query = (
        select(r.body_hash, b.size, b.stored_size, b.first_seen_at)
        .join_from(raw_responses, raw_bodies, b.hash == r.body_hash)
        .where(r.fetched_at >= since)
        .limit(ARCHIVE_24H_LIMIT + 1)
    )
    rows = (await conn.execute(query)).all()
    capped = len(rows) > ARCHIVE_24H_LIMIT
    seen: set[str] = set()
    stored = 0
    for row in rows[:ARCHIVE_24H_LIMIT]:
        if row.first_seen_at >= since and row.body_hash not in seen:
            seen.add(row.body_hash)
            stored += row.stored_size
    kept = rows[:ARCHIVE_24H_LIMIT]
    return ArchiveDay(len(kept), sum(row.size for row in kept), len(seen), stored, capped)


async def database_bytes(conn: AsyncConnection) -> int | None:
    """The database's size: SQLite's pages (two pragmas), PostgreSQL's ``pg_database_size``."""
    if conn.dialect.name == "sqlite":
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar()
        size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar()
        return int(pages) * int(size) if pages is not None and size is not None else None
    if conn.dialect.name == "postgresql":
        found = (await conn.execute(select(func.pg_database_size(func.current_database())))).scalar()
        return int(found) if found is not None else None
    return None


@dataclass(frozen=True, slots=True)
class Revisions:
    readings_24h: int
    readings_7d: int
    movies_24h: int
    movies_7d: int


async def revision_counts(conn: AsyncConnection, now: datetime) -> Revisions:
    """Revisions recorded in the last 24 hours and 7 days: readings by ``ix_…_revised_at`` (a range count);
    movies by a scan of ``movie_revisions`` (one row per change of a movie's details: small)."""
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    a, m = air_reading_revisions.c, movie_revisions.c
    query = select(
        select(func.count()).where(a.revised_at >= day).scalar_subquery(),
        select(func.count()).where(a.revised_at >= week).scalar_subquery(),
        select(func.count()).where(m.revised_at >= day).scalar_subquery(),
        select(func.count()).where(m.revised_at >= week).scalar_subquery(),
    )
    row = (await conn.execute(query)).one()
    return Revisions(*(int(v or 0) for v in row))


# --- Movies -----------------------------------------------------------------------------------------------


async def newest_list_run(conn: AsyncConnection) -> tuple[int, datetime] | None:
    """The newest now-playing list run and its time: the snapshots' key (run_id, tmdb_id) read backwards to
    the first now-playing row (``SEARCH movie_snapshots USING INDEX …_1``)."""
    ms = movie_snapshots.c
    newest = select(func.max(ms.run_id)).where(ms.list_name == NOW_PLAYING).scalar_subquery()
    query = select(ms.run_id, ms.captured_at).where(ms.run_id == newest, ms.list_name == NOW_PLAYING).limit(1)
    row = (await conn.execute(query)).first()
    return (row.run_id, row.captured_at) if row else None


@dataclass(frozen=True, slots=True)
class Ranked:
    position: int
    tmdb_id: int
    title: str | None
    original_title: str | None
    popularity: float | None
    vote_average: float | None
    vote_count: int | None
    release_date: date | None  # the region's, as listed; else the primary one


async def ranking(conn: AsyncConnection, run_id: int) -> tuple[list[Ranked], int]:
    """A list run's snapshots by rank (its key prefix, run_id), with each movie by its key; and how many
    the run listed (the page shows the first :data:`RANKING_LIMIT`)."""
    ms, m = movie_snapshots.c, movies.c
    query = (
        select(ms.position, ms.tmdb_id, m.title, m.original_title, ms.popularity, ms.vote_average, ms.vote_count,
               func.coalesce(ms.release_date, m.release_date))
        .join_from(movie_snapshots, movies, m.tmdb_id == ms.tmdb_id)
        .where(ms.run_id == run_id, ms.list_name == NOW_PLAYING)
        .order_by(ms.position, ms.tmdb_id)
        .limit(RANKING_LIMIT)
    )  # fmt: skip
    total = select(func.count()).where(ms.run_id == run_id, ms.list_name == NOW_PLAYING)
    rows = [Ranked(*row) for row in (await conn.execute(query)).all()]
    return rows, int((await conn.execute(total)).scalar_one())


@dataclass(frozen=True, slots=True)
class Movie:
    tmdb_id: int
    title: str | None
    original_title: str | None
    original_language: str | None
    overview: str | None
    release_date: date | None
    runtime: int | None
    status: str | None


async def movie(conn: AsyncConnection, tmdb_id: int) -> Movie | None:
    m = movies.c
    query = select(m.tmdb_id, m.title, m.original_title, m.original_language, m.overview, m.release_date,
                   m.runtime, m.status).where(m.tmdb_id == tmdb_id)  # fmt: skip
    row = (await conn.execute(query)).first()
    return Movie(*row) if row else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    run_id: int
    captured_at: datetime
    position: int | None  # None: the list run did not list the movie
    popularity: float | None
    vote_average: float | None
    vote_count: int | None


async def movie_history(conn: AsyncConnection, tmdb_id: int) -> list[Snapshot]:
    """The movie's :data:`HISTORY_LIMIT` newest now-playing snapshots, oldest first, with every list run
    between the first and the last of them that did *not* list it (a gap in its lines, as the
    ``now_playing_intervals`` view counts them).

    The movie's snapshots come from ``ix_movie_snapshots_tmdb_id_captured_at`` (``SEARCH movie_snapshots
    USING INDEX … (tmdb_id=?)``, ~1 500 a year at four list runs a day); "newest" is by run id, the order
    the list runs between them are read in: the runs of that id range (``SEARCH runs USING INTEGER PRIMARY
    KEY (rowid>? AND rowid<?)``), each probed by the snapshots' key (run_id).
    """
    ms, c = movie_snapshots.c, runs.c
    mine = (
        select(ms.run_id, ms.captured_at, ms.position, ms.popularity, ms.vote_average, ms.vote_count)
        .where(ms.tmdb_id == tmdb_id, ms.list_name == NOW_PLAYING)
        .order_by(ms.run_id.desc())
        .limit(HISTORY_LIMIT)
    )
    seen = [Snapshot(*row) for row in (await conn.execute(mine)).all()]
    if not seen:
        return []
    first, last = min(s.run_id for s in seen), max(s.run_id for s in seen)
    other = movie_snapshots.alias("other")
    captured = (
        select(other.c.captured_at)
        .where(other.c.run_id == c.id, other.c.list_name == NOW_PLAYING)
        .limit(1)
        .scalar_subquery()
    )
    listed = exists().where(other.c.run_id == c.id, other.c.list_name == NOW_PLAYING)
    between = (
        select(c.id, captured.label("captured_at"))
        .where(c.id >= first, c.id <= last, listed)
        .order_by(c.id)
        .limit(LIST_RUNS_LIMIT)
    )
    by_run = {s.run_id: s for s in seen}
    history = list(by_run.values())
    for row in (await conn.execute(between)).all():
        if row.id not in by_run and row.captured_at is not None:
            history.append(Snapshot(row.id, row.captured_at, None, None, None, None))
    history.sort(key=lambda s: (s.captured_at, s.run_id))
    return history
