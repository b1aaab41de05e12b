"""``airkorea_stations``: the watch-list's series, then self-healing of the completeness ledger's holes.

A *hole* is an hour the ledger expects of a station and does not hold (:mod:`pipeline.transform.coverage`).
After each province poll (in a cycle this job runs after it), every station with holes inside the API's
window gets its series fetched with the smallest ``dataTerm`` that covers its oldest hole — oldest hole
first, stations with fresh holes before those whose holes a series already lacked — within
``sources.airkorea.heal_budget`` calls per KST day (``air_heals`` counts them).

A hole the series lacks is marked *tried*. AirKorea still publishes late hours within the daily window
(:func:`~pipeline.extract.airkorea.late_publication_limit`), so a tried hole is tried again while it is
that young; once older it is marked not published and never fetched again. A station whose last heal filled
nothing waits :data:`BACKOFF` before the next, and twice as long after each further fruitless one (a station
that stopped reporting must not eat the budget an hour at a time). The catch-up after downtime is the same
mechanism: the first poll makes the hours of the downtime expected, and healing repairs what the window and
the budget allow.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select

from pipeline.config import AirKoreaSettings, DataTerm, Settings
from pipeline.errors import BadRequestError, QuotaError, SourceError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract.airkorea import WINDOW, Window
from pipeline.jobs.airkorea import store
from pipeline.jobs.context import JobReport, RunContext
from pipeline.load.coverage import Heal, HoleMark, heal_calls, holes, mark_holes, record_heal
from pipeline.load.tables import air_heals
from pipeline.transform.common import KST
from pipeline.transform.coverage import DayCoverage, bits, hour_end, hour_slot

log = logging.getLogger(__name__)

#: a station whose last heal filled no hole waits this long before the next, twice as long after each further
#: fruitless one, up to MAX_BACKOFF (a station that stopped reporting costs a few calls a week, not 4 a day)
BACKOFF = timedelta(hours=6)
MAX_BACKOFF = timedelta(days=4)


def kst_today(now: datetime) -> date:
    """The KST day whose budget (and quota) a call at ``now`` counts against."""
    return now.astimezone(KST).date()


@dataclass(frozen=True, slots=True)
class Hole:
    hour: datetime  # UTC end
    tried: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    """A station worth one series fetch: its holes, the window covering the oldest, and what it costs."""

    station: str
    holes: tuple[Hole, ...]
    window: Window
    calls: int

    @property
    def oldest(self) -> datetime:
        return self.holes[0].hour

    @property
    def retry_only(self) -> bool:
        return all(hole.tried for hole in self.holes)


@dataclass(slots=True)
class HealPlan:
    chosen: list[Candidate] = field(default_factory=list)
    give_up: list[HoleMark] = field(default_factory=list)  # tried holes past the late window: not published
    deferred: list[Candidate] = field(default_factory=list)  # over the budget: next time
    waiting: int = 0  # stations in back-off


def station_holes_of(days: Sequence[DayCoverage], now: datetime) -> dict[str, list[Hole]]:
    """Per station, its holes still inside the API's window, oldest first."""
    oldest = airkorea_extract.oldest_served_hour(now)
    found: dict[str, list[Hole]] = defaultdict(list)
    for day in sorted(days, key=lambda d: d.kst_date):
        for bit in bits(day.missing_mask):
            hour = hour_end(day.kst_date, bit)
            if hour >= oldest:
                found[day.station_name].append(Hole(hour, bool(day.tried >> bit & 1)))
    return found


def plan_heals(
    days: Sequence[DayCoverage],
    now: datetime,
    *,
    rows: int,
    budget: int,
    fetched: Mapping[str, DataTerm] | None = None,
    waiting: frozenset[str] = frozenset(),
) -> HealPlan:
    """Pure: which stations to fetch (within ``budget`` calls), which holes to give up.

    ``fetched``: stations whose series this run already fetched, with the window (the watch-list); they are
    not fetched again for holes that window covered. ``waiting``: stations in back-off.
    """
    plan = HealPlan()
    limit = airkorea_extract.late_publication_limit(now)
    give_up: dict[tuple[date, str], int] = defaultdict(int)
    candidates: list[Candidate] = []
    for station, found in station_holes_of(days, now).items():
        todo = []
        for hole in found:
            if hole.tried and hole.hour < limit:
                give_up[(hour_slot(hole.hour)[0], station)] |= 1 << hour_slot(hole.hour)[1]
            else:
                todo.append(hole)
        if not todo:
            continue
        reach = airkorea_extract.reach_of(todo[0].hour, now)
        term = (fetched or {}).get(station)
        if term is not None and reach <= WINDOW[term].reach:
            continue
        if station in waiting:
            plan.waiting += 1
            continue
        window = airkorea_extract.smallest_window(reach) or airkorea_extract.LARGEST_WINDOW
        calls = airkorea_extract.station_calls(1, window.term, rows)
        candidates.append(Candidate(station, tuple(todo), window, calls))
    plan.give_up = [HoleMark(day, station, mask, mask) for (day, station), mask in sorted(give_up.items())]
    left = budget
    for candidate in sorted(candidates, key=lambda c: (c.retry_only, c.oldest, c.station)):
        if candidate.calls <= left:
            plan.chosen.append(candidate)
            left -= candidate.calls
        else:
            plan.deferred.append(candidate)
    return plan


# --- the job ----------------------------------------------------------------------------------------------------


async def station_holes(ctx: RunContext, station: str) -> list[Hole]:
    now = ctx.now()
    since = hour_slot(airkorea_extract.oldest_served_hour(now))[0]
    return station_holes_of(await holes(ctx.writer.engine, since, [station]), now).get(station, [])


@dataclass(frozen=True, slots=True)
class Series:
    received: int  # items the series held
    calls: int  # requests it took (a failed one counts)
    filled: int  # holes it held
    lacked: int  # holes it should have held and did not (all of them when it came empty or failed)
    error: SourceError | None = None  # why it stopped early, if it did


async def fetch_series(
    ctx: RunContext, report: JobReport, station: str, term: DataTerm, wanted: Sequence[Hole]
) -> Series:
    """Fetch and store one station's series; mark the ``wanted`` holes it covered and lacked.

    Only holes between the oldest and the newest hour the series carried count as lacked: an empty or cut
    answer (``03 NODATA``, ``items: ""``, a failure half-way) proves nothing about the hours it did not reach.
    """
    settings = ctx.settings.sources.airkorea
    client = ctx.clients["airkorea"]
    carried: set[tuple[date, int]] = set()
    received = calls = 0
    error: SourceError | None = None
    try:
        async for page in airkorea_extract.fetch_station_pages(client, station, settings, term):
            calls += 1
            if page.shortfall:
                report.warnings.append(page.describe_shortfall(f"station {station}"))
            received += len(page.items)
            rows = await store(ctx, report, page.items, station)
            for row in rows.coverage:
                carried.update((row.kst_date, bit) for bit in bits(row.received | row.flagged))
    except SourceError as exc:
        error, calls = exc, calls + 1
    calls = max(calls, 1)  # an empty answer is a request too (retries count in the quota ledger only)
    now = ctx.now()
    limit = airkorea_extract.late_publication_limit(now)
    hours = [hour_end(day, bit) for day, bit in carried]
    first, last = (min(hours), max(hours)) if hours else (None, None)
    marks: dict[tuple[date, str], list[int]] = {}
    filled = 0
    for hole in wanted:
        day, bit = hour_slot(hole.hour)
        if (day, bit) in carried:
            filled += 1
        elif first is not None and last is not None and first <= hole.hour <= last:
            mark = marks.setdefault((day, station), [0, 0])
            mark[0] |= 1 << bit
            if hole.hour < limit:
                mark[1] |= 1 << bit
    given_up = [HoleMark(day, name, tried, unpublished) for (day, name), (tried, unpublished) in marks.items()]
    await mark_holes(ctx.writer, given_up, now)
    report.counts["holes_filled"] += filled
    report.counts["holes_lacked"] += sum(mark.tried.bit_count() for mark in given_up)
    report.counts["holes_given_up"] += sum(mark.unpublished.bit_count() for mark in given_up)
    lacked = sum(mark.tried.bit_count() for mark in given_up) if hours else len(wanted)
    return Series(received, calls, filled, lacked, error)


def backing_off(heals: Sequence[tuple[str, datetime, int, int]], now: datetime) -> frozenset[str]:
    """Pure: the stations to leave alone now. ``heals`` are (station, when, holes filled, holes lacked), newest
    first. A heal that filled nothing and lacked something is fruitless; after ``n`` fruitless heals in a row
    a station waits ``BACKOFF × 2^(n-1)``, at most :data:`MAX_BACKOFF`. A heal that neither filled nor lacked
    (its holes newer than the series' newest hour: a late hour) neither counts nor breaks the streak."""
    streaks: dict[str, tuple[int, datetime]] = {}
    done: set[str] = set()
    for station, at, filled, lacked in heals:
        if station in done or not (filled or lacked):
            continue
        if filled:
            done.add(station)
            continue
        count, last = streaks.get(station, (0, at))
        streaks[station] = (count + 1, last)
    return frozenset(
        station
        for station, (count, last) in streaks.items()
        if now - last < min(BACKOFF * 2 ** (count - 1), MAX_BACKOFF)
    )


async def _waiting(ctx: RunContext, now: datetime) -> frozenset[str]:
    """Stations in back-off (:func:`backing_off`), from the heals within the API's largest window (older
    holes cannot be healed: a streak needs no longer memory; at most ``heal_budget`` rows a day)."""
    query = (
        select(air_heals.c.station_name, air_heals.c.created_at, air_heals.c.filled, air_heals.c.lacked)
        .where(air_heals.c.created_at >= now - airkorea_extract.LARGEST_WINDOW.reach)
        .order_by(air_heals.c.id.desc())
    )
    async with ctx.writer.engine.connect() as conn:
        heals = [(r.station_name, r.created_at, r.filled, r.lacked) for r in (await conn.execute(query)).all()]
    return backing_off(heals, now)


async def heal(ctx: RunContext, report: JobReport, fetched: Mapping[str, DataTerm]) -> None:
    """Repair holes within today's budget: one series per chosen station, concurrently."""
    settings = ctx.settings.sources.airkorea
    if not settings.heal_budget:
        return
    now = ctx.now()
    today = kst_today(now)
    left = settings.heal_budget - await heal_calls(ctx.writer.engine, today)
    since = hour_slot(airkorea_extract.oldest_served_hour(now))[0]
    plan = plan_heals(
        await holes(ctx.writer.engine, since),
        now,
        rows=settings.num_of_rows,
        budget=max(left, 0),
        fetched=fetched,
        waiting=await _waiting(ctx, now),
    )
    await mark_holes(ctx.writer, plan.give_up, now)
    report.counts["holes_given_up"] += sum(mark.unpublished.bit_count() for mark in plan.give_up)
    if plan.deferred:
        report.counts["heal_deferred"] += len(plan.deferred)
        report.warnings.append(
            f"heal budget: {len(plan.deferred)} station(s) with holes wait for tomorrow's budget "
            f"({settings.heal_budget} calls a KST day, {max(left, 0)} were left)"
        )
    if not plan.chosen:
        return
    total = sum(candidate.calls for candidate in plan.chosen)
    try:
        await ctx.ledger.check_plan({airkorea_extract.STATION_OPERATION: total})
    except QuotaError as exc:  # what the quota leaves is for the watch-list and tomorrow
        report.fail(exc, fatal=False)
        return

    async def one(candidate: Candidate) -> None:
        series = await fetch_series(ctx, report, candidate.station, candidate.window.term, candidate.holes)
        if series.error is not None:  # still charged to the budget, and a fruitless heal (back-off)
            report.fail(series.error, fatal=isinstance(series.error, BadRequestError))
        heal_record = Heal(
            candidate.station,
            candidate.window.term,
            series.calls,
            len(candidate.holes),
            series.filled,
            series.lacked,
            candidate.oldest,
        )
        await record_heal(ctx.writer, heal_record, ctx.run_id, today, now)
        report.counts["heal_calls"] += series.calls
        report.counts["stations_healed"] += 1

    await asyncio.gather(*(one(candidate) for candidate in plan.chosen))


async def collect_stations(ctx: RunContext, report: JobReport) -> None:
    """``airkorea_stations``: the watch-list's series over ``data_term``, then :func:`heal`."""
    settings = ctx.settings.sources.airkorea
    term = ctx.data_term or settings.data_term
    fetched: dict[str, DataTerm] = {}

    async def one(station: str) -> None:
        series = await fetch_series(ctx, report, station, term, await station_holes(ctx, station))
        if series.error is not None:
            report.fail(series.error, fatal=isinstance(series.error, BadRequestError))
            return
        fetched[station] = term
        if not series.received:
            message = f"station {station!r}: AirKorea returned no readings (unknown station name?)"
            report.warnings.append(message)
            log.warning("airkorea_stations: %s", message)

    await asyncio.gather(*(one(station) for station in settings.stations))
    if settings.stations and not fetched and report.status != "success":
        report.status = "failed"
        return
    await heal(ctx, report, fetched)


def station_calls(settings: Settings, data_term: DataTerm | None) -> dict[str, int]:
    """The watch-list's calls (healing checks its own against the quota before it fetches)."""
    source: AirKoreaSettings = settings.sources.airkorea
    calls = airkorea_extract.station_calls(len(source.stations), data_term or source.data_term, source.num_of_rows)
    return {airkorea_extract.STATION_OPERATION: calls} if calls else {}
