"""The completeness ledger in the database: ``air_coverage``, ``air_published_hours`` and ``air_heals``.

Every change is one atomic upsert of bit masks (see :class:`~pipeline.load.statements.UpsertOptions`'s
``union`` and ``overlay``), so the daemon, a backfill and replay can write the same station-day at once on
either backend without losing each other's bits. What the bits mean is :mod:`pipeline.transform.coverage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, Integer, func, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.errors import LoadError
from pipeline.load.statements import Prepared, dialect_insert
from pipeline.load.tables import UTCDateTime, air_coverage, air_heals, air_published_hours, air_stations
from pipeline.load.writer import Writer
from pipeline.redaction import redact
from pipeline.transform.coverage import CoverageRow, DayCoverage, as_masks, masks_between

#: the states: an hour is in at most one of them (a new state of an hour replaces its old one)
STATES = ("received", "flagged", "unpublished")


def _prepared(writer: Writer) -> Prepared:
    """Page rows: ``expected`` and ``tried`` gain bits; a new state of an hour replaces its old one."""
    return writer.prepare(air_coverage, union=("expected", "tried"), overlay=STATES)


async def upsert_coverage(writer: Writer, rows: Sequence[CoverageRow], now: datetime) -> int:
    """What pages carried: their hours become expected, and received or flagged (whatever they were)."""
    if not rows:
        return 0
    merged: dict[tuple[date, str], list[int]] = {}  # one row a key: a bulk statement keeps only the last one
    for row in rows:
        masks = merged.setdefault((row.kst_date, row.station_name), [0, 0])
        masks[0] = (masks[0] & ~row.flagged) | row.received  # a later row of the same hour wins, as upserted
        masks[1] = (masks[1] & ~row.received) | row.flagged
    records = [
        (day, station, received | flagged, received, flagged, 0, 0, now)
        for (day, station), (received, flagged) in merged.items()
    ]
    return await writer.write(_prepared(writer), records)


@dataclass(frozen=True, slots=True)
class HoleMark:
    """What a series fetched to repair a station-day said of its holes."""

    kst_date: date
    station_name: str
    tried: int  # holes the series covered and lacked
    unpublished: int  # of them, those now given up (past the late-publication window)


async def mark_holes(writer: Writer, marks: Sequence[HoleMark], now: datetime) -> int:
    """Record what series said of holes. An hour held by then (a backfill wrote it meanwhile) stays held: the
    marks never touch ``received`` or ``flagged``, and ``unpublished`` only gains hours neither holds."""
    merged: dict[tuple[date, str], list[int]] = {}
    for mark in marks:
        if mark.tried:
            masks = merged.setdefault((mark.kst_date, mark.station_name), [0, 0])
            masks[0] |= mark.tried
            masks[1] |= mark.unpublished
    if not merged:
        return 0
    c = air_coverage.c
    rows = [
        {"kst_date": day, "station_name": station, "expected": 0, "received": 0, "flagged": 0,
         "unpublished": unpublished, "tried": tried, "updated_at": now}
        for (day, station), (tried, unpublished) in merged.items()
    ]  # fmt: skip
    ins = dialect_insert(writer.dialect, air_coverage)
    held = c.received.bitwise_or(c.flagged)
    statement = ins.on_conflict_do_update(
        index_elements=["kst_date", "station_name"],
        set_={
            "tried": c.tried.bitwise_or(ins.excluded.tried),
            "unpublished": c.unpublished.bitwise_or(ins.excluded.unpublished.bitwise_and(held.bitwise_not())),
            "updated_at": ins.excluded.updated_at,
        },
    )
    try:
        async with writer.transaction() as conn:
            await conn.execute(statement, rows)
    except SQLAlchemyError as exc:
        raise LoadError(redact(f"writing air_coverage failed: {exc}").splitlines()[0]) from None
    return len(rows)


async def expect_hours(
    writer: Writer, first: datetime, last: datetime, now: datetime, sidos: Sequence[str] | None = None
) -> int:
    """Every known station (of ``sidos``; ``None``: all) should hold the hours ending from ``first`` to ``last``.

    One ``INSERT … SELECT`` per KST day, whatever the number of stations.
    """
    touched = 0
    try:
        async with writer.transaction() as conn:
            for day, mask in masks_between(first, last).items():
                chosen = select(
                    literal(day, Date()),
                    air_stations.c.station_name,
                    literal(mask, Integer()),
                    literal(0, Integer()),
                    literal(0, Integer()),
                    literal(0, Integer()),
                    literal(0, Integer()),
                    literal(now, UTCDateTime()),
                )
                # SQLite parses INSERT … SELECT … ON CONFLICT only with a WHERE in the SELECT
                known = air_stations.c.station_name.is_not(None)
                chosen = chosen.where(air_stations.c.sido_name.in_(list(sidos)) if sidos is not None else known)
                ins = dialect_insert(writer.dialect, air_coverage).from_select(
                    [c.name for c in air_coverage.columns], chosen
                )
                statement = ins.on_conflict_do_update(
                    index_elements=["kst_date", "station_name"],
                    set_={
                        "expected": air_coverage.c.expected.bitwise_or(ins.excluded.expected),
                        "updated_at": ins.excluded.updated_at,
                    },
                )
                touched += (await conn.execute(statement)).rowcount or 0
    except SQLAlchemyError as exc:
        raise LoadError(redact(f"writing air_coverage failed: {exc}").splitlines()[0]) from None
    return touched


async def newest_published(engine: AsyncEngine) -> datetime | None:
    """The newest hour a province poll has seen published (the end of the ledger's expected hours)."""
    async with engine.connect() as conn:
        found: datetime | None = (await conn.execute(select(func.max(air_published_hours.c.measured_at)))).scalar()
    return found


async def record_published(writer: Writer, hour: datetime, stations: int, run_id: int, now: datetime) -> None:
    prepared = writer.prepare(air_published_hours, do_nothing=True)
    await writer.write(prepared, [(hour, now, stations, run_id)])


async def holes(engine: AsyncEngine, since: date, stations: Sequence[str] | None = None) -> list[DayCoverage]:
    """Station-days from ``since`` on with a missing hour (``stations``: only theirs)."""
    c = air_coverage.c
    missing = c.expected.bitwise_and(c.received.bitwise_or(c.flagged).bitwise_or(c.unpublished).bitwise_not())
    query = select(air_coverage).where(c.kst_date >= since, missing != 0)
    if stations is not None:
        query = query.where(c.station_name.in_(list(stations)))
    async with engine.connect() as conn:
        return as_masks((await conn.execute(query.order_by(c.kst_date, c.station_name))).all())


async def heal_calls(engine: AsyncEngine, kst_date: date) -> int:
    """Calls self-healing has spent on ``kst_date`` (KST): what its daily budget counts."""
    query = select(func.coalesce(func.sum(air_heals.c.calls), 0)).where(air_heals.c.kst_date == kst_date)
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True, slots=True)
class Heal:
    """One series fetched to repair a station's holes."""

    station_name: str
    data_term: str
    calls: int
    holes: int
    filled: int
    lacked: int
    oldest_hole: datetime


async def record_heal(writer: Writer, heal: Heal, run_id: int, kst_date: date, now: datetime) -> None:
    row = {
        "run_id": run_id,
        "station_name": heal.station_name,
        "kst_date": kst_date,
        "data_term": heal.data_term,
        "calls": heal.calls,
        "holes": heal.holes,
        "filled": heal.filled,
        "lacked": heal.lacked,
        "oldest_hole": heal.oldest_hole,
        "created_at": now,
    }
    try:
        async with writer.transaction() as conn:
            await conn.execute(air_heals.insert(), [row])
    except SQLAlchemyError as exc:
        raise LoadError(redact(f"writing air_heals failed: {exc}").splitlines()[0]) from None
