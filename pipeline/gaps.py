"""``pipeline gaps``: the completeness ledger per station and KST day — what is missing, and whether the API
can still repair it. Read-only; loads no HTTP library.

A missing hour is *repairable* while it is inside the API's largest window (the station series reaches about
three months back, :data:`pipeline.extract.airkorea.LARGEST_WINDOW`); older, it is lost. Exit 0 when nothing
repairable is missing in the selection, 1 otherwise: a check for cron or CI.

Fast at year scale: station-days without a hole are summed in SQL in one scan (their bits counted only where
a mask is not trivial); only the station-days with a hole come back one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, case, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.errors import ConfigError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.load.db import error_message
from pipeline.load.tables import air_coverage, air_stations
from pipeline.transform.coverage import (
    FULL_DAY,
    HOURS,
    DayCounts,
    DayCoverage,
    hour_label,
    hour_slot,
    masks_between,
)

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class Selection:
    since: date | None = None
    until: date | None = None
    sido: str | None = None
    station: str | None = None


@dataclass(frozen=True, slots=True)
class GapDay:
    station_name: str
    sido_name: str | None
    kst_date: date
    counts: DayCounts
    missing_hours: list[datetime]  # UTC ends, earliest first
    repairable: int  # of them, inside the API's window

    @property
    def labels(self) -> list[str]:
        return [hour_label(hour_slot(hour)[1]) for hour in self.missing_hours]

    def as_dict(self) -> dict[str, Any]:
        completeness = self.counts.completeness
        return {
            "station_name": self.station_name,
            "sido_name": self.sido_name,
            "kst_date": self.kst_date.isoformat(),
            "expected": self.counts.expected,
            "received": self.counts.received,
            "flagged": self.counts.flagged,
            "not_published": self.counts.unpublished,
            "missing": self.counts.missing,
            "completeness": round(100 * completeness, 2) if completeness is not None else None,
            "missing_hours": self.labels,
            "repairable": self.repairable,
            "past_window": self.counts.missing - self.repairable,
        }


@dataclass(slots=True)
class GapsReport:
    days: list[GapDay] = field(default_factory=list)  # the station-days listed (with a hole, or every one)
    totals: DayCounts = field(default_factory=DayCounts)
    station_days: int = 0
    stations: int = 0
    repairable: int = 0
    oldest_repairable: datetime | None = None  # the end of the oldest hour the API still serves

    @property
    def ok(self) -> bool:
        return self.repairable == 0


def _filtered(query: _Query, selection: Selection) -> _Query:
    c = air_coverage.c
    if selection.since is not None:
        query = query.where(c.kst_date >= selection.since)
    if selection.until is not None:
        query = query.where(c.kst_date <= selection.until)
    if selection.station is not None:
        query = query.where(c.station_name == selection.station)
    if selection.sido is not None:
        known = select(air_stations.c.station_name).where(air_stations.c.sido_name == selection.sido)
        query = query.where(c.station_name.in_(known))
    return query


def _bit_count(mask: ColumnElement[int]) -> ColumnElement[int]:
    """The set bits of a day mask, in portable SQL (neither SQLite nor PostgreSQL has one popcount)."""
    total: ColumnElement[int] = mask.bitwise_and(1)
    for bit in range(1, HOURS):
        total = total + mask.bitwise_rshift(bit).bitwise_and(1)
    return total


def _missing_mask() -> ColumnElement[int]:
    c = air_coverage.c
    return c.expected.bitwise_and(c.received.bitwise_or(c.flagged).bitwise_or(c.unpublished).bitwise_not())


async def find_gaps(engine: AsyncEngine, selection: Selection, now: datetime, *, every_day: bool = False) -> GapsReport:
    c = air_coverage.c
    missing = _missing_mask()
    stations = _filtered(select(func.count(func.distinct(c.station_name))), selection)
    # station-days without a hole, summed in one scan (no sort): their received hours are the expected ones
    # that are neither flagged nor given up, and most are full days with nothing flagged
    whole = _filtered(
        select(
            func.count(),
            func.coalesce(func.sum(case((c.expected == FULL_DAY, HOURS), else_=_bit_count(c.expected))), 0),
            func.coalesce(func.sum(case((c.flagged == 0, 0), else_=_bit_count(c.flagged))), 0),
            func.coalesce(func.sum(case((c.unpublished == 0, 0), else_=_bit_count(c.unpublished))), 0),
        ).where(missing == 0),
        selection,
    )
    masks = (c.expected, c.received, c.flagged, c.unpublished)
    columns = (c.station_name, air_stations.c.sido_name, c.kst_date, *masks, c.tried)
    rows = _filtered(
        select(*columns).join_from(
            air_coverage, air_stations, air_stations.c.station_name == c.station_name, isouter=True
        ),
        selection,
    )
    if not every_day:
        rows = rows.where(missing != 0)
    async with engine.connect() as conn:
        station_count = int((await conn.execute(stations)).scalar_one())
        summed = (0, 0, 0, 0) if every_day else tuple((await conn.execute(whole)).one())
        found = (await conn.execute(rows.order_by(c.station_name, c.kst_date))).all()
    oldest = airkorea_extract.oldest_served_hour(now)
    late = airkorea_extract.late_publication_limit(now)
    report = GapsReport(stations=station_count, oldest_repairable=oldest)
    days, expected_hours, flagged_hours, unpublished_hours = (int(n) for n in summed)
    received_hours = expected_hours - flagged_hours - unpublished_hours
    totals = DayCounts(expected_hours, received_hours, flagged_hours, unpublished_hours)
    report.station_days = days
    for row in found:
        day = DayCoverage(
            row.station_name, row.kst_date, row.expected, row.received, row.flagged, row.unpublished, row.tried
        )
        counts = day.counts()
        totals = totals + counts
        report.station_days += 1
        missing_hours = day.missing_hours()
        # a hole a series already lacked, past the late window, is given up at the station job's next run
        repairable = sum(
            1 for hour in missing_hours if hour >= oldest and not (day.tried >> hour_slot(hour)[1] & 1 and hour < late)
        )
        report.repairable += repairable
        report.days.append(GapDay(row.station_name, row.sido_name, row.kst_date, counts, missing_hours, repairable))
    report.totals = totals
    return report


async def collect_gaps(url: str, selection: Selection, now: datetime, *, every_day: bool = False) -> GapsReport:
    """:func:`find_gaps` on the database at ``url`` (which must exist and be migrated)."""
    from pipeline.load.db import create_engine, display_url, sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise ConfigError(f"database.url: {path} does not exist yet; run 'pipeline migrate' or 'pipeline run'")
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        if "air_coverage" not in names:
            raise ConfigError(
                f"database.url: {display_url(url)} has no completeness ledger yet; run 'pipeline migrate'"
            )
        return await find_gaps(engine, selection, now, every_day=every_day)
    except (SQLAlchemyError, OSError) as exc:
        raise ConfigError(f"database.url: cannot read {display_url(url)}: {error_message(exc)}") from None
    finally:
        await engine.dispose()


async def last_day_completeness(engine: AsyncEngine, newest: datetime) -> DayCounts:
    """The ledger's counts over the 24 hours ending at ``newest`` (``pipeline status``)."""
    first = newest - timedelta(hours=HOURS - 1)
    windows = masks_between(first, newest)
    query = select(air_coverage).where(air_coverage.c.kst_date.in_(list(windows)))
    async with engine.connect() as conn:
        found = (await conn.execute(query)).all()
    totals = DayCounts()
    for row in found:
        window = windows[row.kst_date]
        day = DayCoverage(
            row.station_name,
            row.kst_date,
            row.expected & window,
            row.received & window,
            row.flagged & window,
            row.unpublished & window,
        )
        totals = totals + day.counts()
    return totals
