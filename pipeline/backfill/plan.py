"""What a backfill will do: its KST day range, the AirKorea window covering it, its stations, and the dry
run's cost — decided before a single request is sent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from pipeline.config import SIDOS, DataTerm, Settings
from pipeline.errors import ConfigError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract.airkorea import NATIONWIDE
from pipeline.jobs.context import make_ledger
from pipeline.load.backfills import done_chunks
from pipeline.load.quota import next_kst_midnight
from pipeline.load.tables import air_stations
from pipeline.load.writer import Writer
from pipeline.transform.common import KST, kst_label_to_utc


@dataclass(frozen=True, slots=True)
class DayRange:
    """KST days ``first`` … ``last``, inclusive. AirKorea's day holds the hours labelled 01:00 … 24:00."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        """UTC time of the first value: the hour labelled ``first 01:00`` KST."""
        return kst_label_to_utc(f"{self.first.isoformat()} 01:00")

    @property
    def end(self) -> datetime:
        """UTC time of the last value: the hour labelled ``last 24:00`` KST."""
        return kst_label_to_utc(f"{self.last.isoformat()} 24:00")


def parse_range(first: str, last: str, today: date) -> DayRange:
    try:
        begin, end = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        raise ConfigError(f"--from/--to: dates are YYYY-MM-DD ({exc})") from None
    if begin > end:
        raise ConfigError(f"--from {begin} is after --to {end}")
    if end > today:
        raise ConfigError(f"--to {end} is in the future (today is {today} KST)")
    return DayRange(begin, end)


def choose_window(days: DayRange, now: datetime) -> DataTerm:
    """The smallest real-time window reaching back to the range's first hour, or a clear refusal."""
    window = airkorea_extract.smallest_window(airkorea_extract.reach_of(days.start, now))
    if window is not None:
        return window.term
    largest = airkorea_extract.LARGEST_WINDOW
    oldest_day = airkorea_extract.oldest_served_hour(now).astimezone(KST)
    first_day = (oldest_day - timedelta(hours=1)).date() + timedelta(days=1)
    raise ConfigError(
        f"--from {days.first}: the AirKorea real-time API only serves the last ~3 months "
        f"(dataTerm={largest.term}, {largest.reach.days} days): the oldest day a backfill can start is {first_day}"
    )


@dataclass(frozen=True, slots=True)
class AirPlan:
    backfill_id: str
    days: DayRange
    window: DataTerm
    stations: list[str]
    need_station_list: bool  # the database knows no stations yet: fetch the province lists first
    sidos: list[str]  # the provinces whose lists are fetched first
    arguments: dict[str, str | bool | list[str]]  # the selection as given, recorded with the backfill

    def requests(self, pending: int | None = None) -> dict[str, int]:
        stations = len(self.stations) if pending is None else pending
        rows = airkorea_extract.MAX_ROWS_PER_PAGE
        plan = {airkorea_extract.STATION_OPERATION: airkorea_extract.station_calls(stations, self.window, rows)}
        if self.need_station_list:
            plan[airkorea_extract.SIDO_OPERATION] = len(self.sidos)
        return plan


async def known_stations(writer: Writer, sidos: Sequence[str] = ()) -> list[str]:
    query = select(air_stations.c.station_name).order_by(air_stations.c.station_name)
    if sidos:
        query = query.where(air_stations.c.sido_name.in_(list(sidos)))
    async with writer.engine.connect() as conn:
        return [row.station_name for row in (await conn.execute(query)).all()]


def _selection(
    stations: Sequence[str], sidos: Sequence[str], all_stations: bool
) -> tuple[str, dict[str, bool | list[str]]]:
    if stations:
        names = sorted(set(stations))
        return "stations=" + ",".join(names), {"stations": names}
    if sidos:
        names = sorted(set(sidos))
        return "sido=" + ",".join(names), {"sidos": names}
    if all_stations:
        return "all-stations", {"all_stations": True}
    raise ConfigError("choose stations: --station NAME (repeatable), --sido NAME (repeatable) or --all-stations")


async def plan_airkorea(
    settings: Settings,
    writer: Writer,
    days: DayRange,
    *,
    stations: Sequence[str] = (),
    sidos: Sequence[str] = (),
    all_stations: bool = False,
    now: datetime | None = None,
) -> AirPlan:
    if not settings.sources.airkorea.enabled:
        raise ConfigError("sources.airkorea.enabled is false: enable it to backfill AirKorea")
    for sido in sidos:
        if sido not in (*SIDOS, NATIONWIDE):
            raise ConfigError(f"--sido {sido!r}: not a province; use one of {', '.join(SIDOS)}")
    selection, arguments = _selection(stations, sidos, all_stations)
    window = choose_window(days, now or datetime.now(UTC))
    chosen = list(dict.fromkeys(s.strip() for s in stations if s.strip()))
    need_list = False
    fetch_sidos: list[str] = []
    if not chosen:
        chosen = await known_stations(writer, [] if all_stations else list(sidos))
        if not chosen:
            need_list = True
            fetch_sidos = [NATIONWIDE] if all_stations or NATIONWIDE in sidos else list(sidos)
    backfill_id = f"airkorea:{days.first}..{days.last}:{selection}"
    return AirPlan(backfill_id, days, window, chosen, need_list, fetch_sidos, arguments | {"window": window})


def tmdb_backfill_id(days: DayRange, region: str) -> str:
    return f"tmdb:{days.first}..{days.last}:region={region}"


@dataclass(frozen=True, slots=True)
class DryRun:
    lines: list[str]


async def dry_run_airkorea(settings: Settings, writer: Writer, plan: AirPlan, now: datetime | None = None) -> DryRun:
    """The plan without a single request: calls per operation, today's quota, days needed."""
    moment = now or datetime.now(UTC)
    ledger = make_ledger(settings, writer, lambda: moment)
    usage = {u.operation: u for u in await ledger.usage()}
    done = await done_chunks(writer, plan.backfill_id)
    pending = [s for s in plan.stations if s not in done]
    lines = [
        f"backfill {plan.backfill_id}",
        f"range: {plan.days.first} .. {plan.days.last} KST ({plan.days.start:%Y-%m-%d %H:%M} .. "
        f"{plan.days.end:%Y-%m-%d %H:%M} UTC), window dataTerm={plan.window}",
        f"stations: {len(plan.stations) if plan.stations else 'from the province lists'}"
        + (f", {len(plan.stations) - len(pending)} already done" if done else ""),
    ]
    quota = settings.sources.airkorea.daily_quota
    # without known stations, the province lists are fetched first: count a nationwide list's stations
    estimate = len(pending) if plan.stations else airkorea_extract.NATIONWIDE_STATIONS
    for operation, calls in plan.requests(estimate).items():
        left = usage[operation].left if operation in usage else quota
        days = 1 if calls <= left else 1 + math.ceil((calls - left) / quota)
        lines.append(f"{operation}: {calls} requests; {left} of {quota} left today (KST); needs {days} day(s)")
        if days > 1:
            resume = next_kst_midnight(moment)
            lines.append(f"  the backfill pauses at the quota and resumes after {resume:%Y-%m-%d %H:%M} KST")
    return DryRun(lines)


def dry_run_tmdb(days: DayRange, region: str) -> DryRun:
    return DryRun(
        [
            f"backfill {tmdb_backfill_id(days, region)}",
            "discover: one request per page of 20 movies (known after the first page, at most "
            "500); movie: one request per movie; TMDB has no daily quota (rate limit only)",
        ]
    )
