"""Section ``day``: a simulated KST day at the default timetable, beside the old default; ``gaps`` on a year.

The day replays the daemon's timetable (``schedule.jobs``' crons, without jitter) against the in-process
simulator, whose clock the bench moves from one run to the next (:func:`pipeline.offline.simulated` makes it the
jobs' clock too): ``tmdb`` at its times, ``airkorea_sido`` every hour with the daemon's extra poll when the
newest hour is late, ``airkorea_stations`` after it. Unlike the other sections the simulator runs in this
process: only there can the bench move its clock, and script its quirks, between runs.

The same day runs twice, each in a fresh SQLite database, with the same simulator state (seed, clock, quirks):
the new default (``Settings()``: 전국 in one call, healing, the late poll, details kept a day) and the old one
(17 provinces, a 3-station watch-list fetched every hour, no healing, no late poll, details at every run).
The day holds 통신장애 (the simulator's own), one hour published late and a few station-hours missing from the
province answer. Its figures: AirKorea calls, TMDB requests, and the completeness of the station-hours the
simulator published (every station, every hour of the day), with what ``pipeline gaps`` says beside it; and
the raw archive's bytes for the day: the bodies first stored after the warm-up (compressed, each distinct body
once), beside the bytes received. The archive stamps its rows with the wall clock, not the simulated one, so
the day is told from the warm-up by the archive's totals when the warm-up ends.

``gaps`` is then timed on a year of the ledger for 670 stations, written straight into a fresh database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import text

from pipeline.bench.harness import Line, Sizes, insert_sql, register
from pipeline.config import SIDOS, JobName, Settings, parse_settings
from pipeline.gaps import GapsReport, Selection, collect_gaps, find_gaps
from pipeline.load.db import create_engine, migrate, upgrade_sync
from pipeline.load.rows import sqlite_datetime
from pipeline.load.tables import air_coverage, air_stations
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.runner import run_jobs
from pipeline.scheduler import extra_run_allowed
from pipeline.simulator import SimulatorState
from pipeline.simulator.airkorea_data import stations as simulator_stations
from pipeline.simulator.state import AIRKOREA_OPERATIONS
from pipeline.timetable import fire_times
from pipeline.transform.coverage import FULL_DAY, HOURS, MEASURED, hour_end

T = TypeVar("T")

DAY = date(2026, 11, 28)
"""The KST day measured: the hours AirKorea labels 01:00 … 24:00 of it (a day of the ledger)."""
LATE_LABEL, LATE_MINUTES = 14, 35
"""The hour labelled 14:00 is published 35 minutes after it ends (the simulator publishes at :15 otherwise)."""
MISSING_LABELS = (3, 11, 13, 17, 24)
"""Hours at which one station each is absent from the province answer (present in its own series)."""
WATCH_LIST = ("종로구", "중구", "강남구")
TMDB_COUNTED = ("now_playing", "movie")

CALLS_TARGET, TMDB_TARGET, COMPLETENESS_TARGET, GAPS_TARGET_MS = 60, 250, 99.5, 500.0
ARCHIVE_TARGET_MB = 2.0
MB = 1_000_000
GAPS_STATIONS, GAPS_DAYS = 670, 365  # the size the gaps target is for
FLAGGED_SHARE = 0.15  # station-days of the year with flagged hours (the simulator's own day has ~41 %)


# --- the simulated day ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """The hours measured: labels ``first`` … ``first + hours - 1`` of :data:`DAY`, polled from ``start``."""

    first: int
    hours: int

    @property
    def start(self) -> datetime:  # when the first hour ends: its poll comes in the clock hour after
        return hour_end(DAY, self.first - 1)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)

    @property
    def hour_ends(self) -> list[datetime]:
        return [self.start + timedelta(hours=h) for h in range(self.hours)]


def window_of(hours: int) -> Window:
    """The whole day, or a shorter window around the late hour (``--quick``)."""
    if hours >= HOURS:
        return Window(1, HOURS)
    return Window(max(1, min(LATE_LABEL - hours // 2, HOURS - hours + 1)), hours)


def day_state(window: Window) -> SimulatorState:
    """The simulator of both configurations: the clock an hour before the window, the late hour, the holes."""
    state = SimulatorState(clock=window.start - timedelta(hours=1))
    state.quirks.late_hours[hour_end(DAY, LATE_LABEL - 1)] = LATE_MINUTES
    every = simulator_stations()
    watched = set(WATCH_LIST)
    chosen = [s.name for s in every[7::131] if s.name not in watched]  # spread over the provinces
    for name, label in zip(chosen, MISSING_LABELS, strict=False):
        state.quirks.missing.add((name, hour_end(DAY, label - 1)))
    return state


def new_default(url: str) -> Settings:
    """``Settings()``, pointed at ``url`` with the request rates raised (the simulator answers at once)."""
    return parse_settings(
        {"database": {"url": url}, "sources": {"tmdb": {"rate_limit": 40}, "airkorea": {"rate_limit": 50}}}
    )


def old_default(url: str) -> Settings:
    """The defaults before the completeness ledger: 17 provinces, a watch-list, no healing, no late poll."""
    airkorea = {
        "rate_limit": 50,
        "sidos": list(SIDOS),
        "stations": list(WATCH_LIST),
        "data_term": "DAILY",
        "heal_budget": 0,
        "late_poll": 0,
    }
    tmdb = {"rate_limit": 40, "details_ttl": 0}
    return parse_settings({"database": {"url": url}, "sources": {"tmdb": tmdb, "airkorea": airkorea}})


CONFIGURATIONS: dict[str, Callable[[str], Settings]] = {"new default": new_default, "old default": old_default}


def timetable(settings: Settings, start: datetime, end: datetime) -> list[tuple[datetime, JobName]]:
    """The daemon's scheduled runs from ``start`` (included) to ``end`` (excluded), in order (no jitter)."""
    zone = ZoneInfo(settings.schedule.timezone)
    runs: list[tuple[datetime, JobName]] = []
    for job, schedule in settings.schedule.jobs.items():
        if not schedule.enabled or schedule.cron is None:
            continue
        for moment in fire_times(schedule.cron, zone, start):
            if moment >= end:
                break
            runs.append((moment.astimezone(UTC), job))
    return sorted(runs)


def next_scheduled(settings: Settings, job: JobName, after: datetime) -> datetime:
    """The job's next scheduled run strictly after ``after``: the daemon's ``next_run_time``."""
    cron = settings.schedule.jobs[job].cron
    assert cron is not None
    zone = ZoneInfo(settings.schedule.timezone)
    return next(fire_times(cron, zone, after + timedelta(microseconds=1))).astimezone(UTC)


@dataclass(slots=True)
class ArchiveDay:
    """The raw archive's growth over the day: its totals when the warm-up ended, and when the day did."""

    warm_responses: int = 0  # the last raw_responses.id of the warm-up
    warm_stored: int = 0
    warm_bodies: int = 0
    responses: int = 0  # the day's: responses archived, the bytes of their bodies as received
    received: int = 0
    bodies: int = 0  # bodies first stored in the day, and their stored (compressed) bytes
    stored: int = 0


@dataclass(slots=True)
class DayResult:
    name: str
    airkorea_calls: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    tmdb_requests: int = 0
    published: int = 0  # station-hours the simulator published in the window
    held: int = 0  # of them, in air_readings
    flagged: int = 0  # of those, with every measured value missing (통신장애 and the like)
    gaps_missing: int = 0  # what `pipeline gaps` says is missing in the window
    late_polls: int = 0
    late_skipped: int = 0  # extra polls asked for that the next scheduled one made needless
    heal_calls: int = 0
    runs: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    archive: ArchiveDay = field(default_factory=ArchiveDay)

    @property
    def completeness(self) -> float:
        return 100.0 * self.held / self.published if self.published else float("nan")


async def _archive_totals(writer: Writer) -> tuple[int, int, int]:
    """The archive's last response id, its stored bytes and its bodies."""
    async with writer.engine.connect() as conn:
        last = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM raw_responses"))).scalar_one()
        stored, bodies = (
            await conn.execute(text("SELECT coalesce(sum(stored_size), 0), count(*) FROM raw_bodies"))
        ).one()
    return int(last), int(stored), int(bodies)


async def _archive_day(writer: Writer, day: ArchiveDay) -> None:
    """The day's figures, from the totals at the end of the warm-up."""
    _last, stored, bodies = await _archive_totals(writer)
    day.stored, day.bodies = stored - day.warm_stored, bodies - day.warm_bodies
    query = text(
        "SELECT count(*), coalesce(sum(b.size), 0) FROM raw_responses r JOIN raw_bodies b ON b.hash = r.body_hash "
        "WHERE r.id > :last"
    )
    async with writer.engine.connect() as conn:
        responses, received = (await conn.execute(query, {"last": day.warm_responses})).one()
    day.responses, day.received = int(responses), int(received)


async def _replay(settings: Settings, window: Window, writer: Writer, result: DayResult) -> None:
    state = day_state(window)
    async with simulated(settings, state) as (local, secrets, sim):

        async def run(job: JobName, at: datetime, trigger: str) -> datetime | None:
            state.clock = at
            report = await run_jobs(local, secrets, writer, [job], run_name=job, trigger=trigger)
            result.runs += 1
            if report.status != "success":
                result.failed.append(f"{job} at {at:%H:%M} UTC: {report.status} {report.error or ''}".strip())
            for job_report in report.jobs:
                result.heal_calls += job_report.counts["heal_calls"]
            return next((r.retry_at for r in report.jobs if r.retry_at is not None), None)

        # warm-up: the previous hour's cycle, so the day starts with every station known (steady state)
        for at, job in timetable(local, window.start - timedelta(hours=1), window.start):
            if job != "tmdb":  # a day's first TMDB run fetches every movie's details (they are a day old)
                await run(job, at, "schedule")
        sim.state.counters.clear()
        result.heal_calls = 0
        archive = result.archive
        archive.warm_responses, archive.warm_stored, archive.warm_bodies = await _archive_totals(writer)
        # the day: every scheduled run in time order, and the extra polls the late hour asks for among them
        pending = [(at, job, "schedule") for at, job in timetable(local, window.start, window.end)]
        extra: Counter[str] = Counter()  # extra runs since each job's last scheduled one, as the daemon counts
        while pending:
            at, job, trigger = pending.pop(0)
            extra[job] = extra[job] + 1 if trigger == "late" else 0
            retry_at = await run(job, at, trigger)
            if retry_at is None:
                continue
            if extra_run_allowed(retry_at, next_scheduled(local, job, at), extra[job]):
                result.late_polls += 1
                pending = sorted([*pending, (retry_at, job, "late")])
            else:
                result.late_skipped += 1
        result.operations = Counter(sim.state.counters)


async def _day(name: str, settings: Settings, window: Window, url: str) -> DayResult:
    result = DayResult(name)
    started = time.perf_counter()
    await migrate(url)
    engine = create_engine(url)
    try:
        writer = Writer(engine)
        await _replay(settings, window, writer, result)
        result.seconds = time.perf_counter() - started
        await _archive_day(writer, result.archive)
        first, last = window.hour_ends[0], window.hour_ends[-1]
        gaps = await find_gaps(engine, Selection(DAY, DAY), last + timedelta(hours=1))
        result.gaps_missing = _missing_between(gaps, first, last)
    finally:
        await engine.dispose()
    result.airkorea_calls = sum(result.operations[op] for op in AIRKOREA_OPERATIONS)
    result.tmdb_requests = sum(result.operations[op] for op in TMDB_COUNTED)
    result.published = len(simulator_stations()) * window.hours
    result.held, result.flagged = _held(url, first, last)
    return result


def _missing_between(report: GapsReport, first: datetime, last: datetime) -> int:
    return sum(1 for day in report.days for hour in day.missing_hours if first <= hour <= last)


def _held(url: str, first: datetime, last: datetime) -> tuple[int, int]:
    """Station-hours of the window in ``air_readings`` (of stations the simulator has), and of them flagged."""
    path = url.split(":///", 1)[1]
    names = {s.name for s in simulator_stations()}
    conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)
    try:
        found = conn.execute(
            f"SELECT station_name, count(*), sum({' AND '.join(f'{name} IS NULL' for name in MEASURED)}) "
            "FROM air_readings WHERE measured_at BETWEEN ? AND ? GROUP BY 1",
            (sqlite_datetime(first), sqlite_datetime(last)),
        ).fetchall()
    finally:
        conn.close()
    ours = [(count, flagged) for station, count, flagged in found if station in names]
    return sum(count for count, _ in ours), sum(flagged for _, flagged in ours)


@contextmanager
def _quiet() -> Iterator[None]:
    """The runs' INFO lines (two days of them) kept out of the bench's output; warnings still show."""
    logger = logging.getLogger("pipeline")
    level = logger.level
    logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(level)


def simulate_day(hours: int) -> dict[str, DayResult]:
    """The window of ``hours`` under each configuration, each in its own fresh database."""
    window = window_of(hours)
    results = {}
    for name, make in CONFIGURATIONS.items():
        with tempfile.TemporaryDirectory() as tmp, _quiet():
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'day.db'}"
            results[name] = asyncio.run(_day(name, make(url), window, url))
    return results


# --- gaps on a year ---------------------------------------------------------------------------------------


def year_names(stations: int) -> list[str]:
    return [f"측정소{i:03d}" for i in range(stations)]


def _hours(rng: random.Random, count: int) -> int:
    mask = 0
    for bit in rng.sample(range(HOURS), count):
        mask |= 1 << bit
    return mask


def _year_rows(stations: int, days: int, stamp: str, flagged_share: float) -> Iterator[tuple[Any, ...]]:
    """``air_coverage`` rows: most days full, ``flagged_share`` with 1-4 flagged hours, ~2 % with 1-3 missing
    hours, a station first seen a third of the way in, one long outage given up (past the window) and one
    recent (repairable)."""
    rng = random.Random(29)
    first = DAY - timedelta(days=days - 1)
    lost = range(days // 3, days // 3 + max(days // 12, 2))  # station 1: the API never filled it
    recent = range(days - max(days // 30, 2) - 1, days - 1)  # station 2: still inside the window
    for index, name in enumerate(year_names(stations)):
        for offset in range(days):
            if index == 3 and offset < days // 3:
                continue  # not seen yet: nothing expected
            kst_date = (first + timedelta(days=offset)).isoformat()
            if (index == 1 and offset in lost) or (index == 2 and offset in recent):
                unpublished = FULL_DAY if index == 1 else 0
                yield (kst_date, name, FULL_DAY, 0, 0, unpublished, unpublished, stamp)
                continue
            received, flagged = FULL_DAY, 0
            if rng.random() < flagged_share:
                flagged = _hours(rng, rng.randint(1, 4))
                received &= ~flagged
            if rng.random() < 0.02:
                received &= ~_hours(rng, rng.randint(1, 3))
            yield (kst_date, name, FULL_DAY, received & ~flagged, flagged, 0, 0, stamp)


def generate_ledger_year(path: Path, stations: int, days: int, flagged_share: float = FLAGGED_SHARE) -> int:
    """A migrated database holding ``days`` of the ledger for ``stations`` stations (raw inserts: fast)."""
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    stamp = "2026-11-28 00:00:00"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany(
            insert_sql(air_stations, "station_name", "sido_name", "first_seen_at", "updated_at"),
            [(name, SIDOS[i % len(SIDOS)], stamp, stamp) for i, name in enumerate(year_names(stations))],
        )
        columns = ("kst_date", "station_name", "expected", "received", "flagged", "unpublished", "tried")
        cursor = conn.executemany(
            insert_sql(air_coverage, *columns, "updated_at"), _year_rows(stations, days, stamp, flagged_share)
        )
        rows = cursor.rowcount
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return rows


def _median_ms(action: Callable[[], Awaitable[T]], loop: asyncio.AbstractEventLoop, repeat: int = 5) -> float:
    loop.run_until_complete(action())  # warm-up: the page cache, the statement cache
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        loop.run_until_complete(action())
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


@dataclass(frozen=True, slots=True)
class GapsTimings:
    rows: int
    generated: float
    whole_ms: float
    json_ms: float
    station_ms: float
    station_days: int
    days_listed: int
    repairable: int


def time_gaps(stations: int, days: int) -> GapsTimings:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        began = time.perf_counter()
        rows = generate_ledger_year(path, stations, days)
        generated = time.perf_counter() - began
        url = f"sqlite+aiosqlite:///{path}"
        now = hour_end(DAY, HOURS - 1) + timedelta(minutes=30)
        one = Selection(station=year_names(stations)[2])
        loop = asyncio.new_event_loop()
        engine = create_engine(url)
        try:

            async def whole() -> GapsReport:
                return await find_gaps(engine, Selection(), now)

            async def as_json() -> str:  # `pipeline gaps --json`: its own engine, the report, the JSON
                report = await collect_gaps(url, Selection(), now)
                return json.dumps([day.as_dict() for day in report.days], ensure_ascii=False, indent=1)

            async def station() -> GapsReport:
                return await find_gaps(engine, one, now)

            report = loop.run_until_complete(whole())
            whole_ms = _median_ms(whole, loop)
            json_ms = _median_ms(as_json, loop)
            station_ms = _median_ms(station, loop)
            loop.run_until_complete(engine.dispose())
        finally:
            loop.close()
    return GapsTimings(
        rows, generated, whole_ms, json_ms, station_ms, report.station_days, len(report.days), report.repairable
    )


# --- the lines --------------------------------------------------------------------------------------------


def _side_by_side(name: str, unit: str, new: float, old: float, target: str, passed: bool | None, note: str) -> Line:
    ratio = new / old if old else None
    return Line("day", name, new, unit, old, "old default", ratio, target, passed, note)


def _archive_line(new: DayResult, old: DayResult, span: str, full_day: bool, hours: int) -> Line:
    """The raw archive's compressed bytes for the day, the default beside the old default."""
    a, b = new.archive, old.archive
    per_day = "" if full_day else f"; × 24/{hours}: {a.stored / MB * HOURS / hours:.2f} MB a day (a rough guess)"
    return _side_by_side(
        f"archive: bytes per {span} (compressed)",
        "MB",
        a.stored / MB,
        b.stored / MB,
        f"≤ {ARCHIVE_TARGET_MB:g}" if full_day else "report",
        a.stored / MB <= ARCHIVE_TARGET_MB if full_day else None,
        f"MB = 10⁶ bytes; new: {a.responses} responses, {a.received / MB:.2f} MB received, {a.bodies} bodies "
        f"stored ({a.received / max(a.stored, 1):.1f}× smaller); old: {b.responses} responses, "
        f"{b.received / MB:.2f} MB received, {b.bodies} bodies stored ({b.received / max(b.stored, 1):.1f}×); "
        f"the warm-up cycle excluded{per_day}",
    )


@register("day")
def bench_day(sizes: Sizes) -> list[Line]:
    results = simulate_day(sizes.day_hours)
    new, old = results["new default"], results["old default"]
    full_day = sizes.day_hours >= HOURS
    span = "day" if full_day else f"{sizes.day_hours} hours"
    quick = "" if full_day else f"; quick: the {sizes.day_hours} hours around the late hour, targets are per day"
    for result in (new, old):
        if result.failed:
            raise RuntimeError(f"day, {result.name}: {len(result.failed)} run(s) failed: {result.failed[0]}")

    def detail(result: DayResult) -> str:
        ops = ", ".join(f"{op} {result.operations[op]}" for op in AIRKOREA_OPERATIONS)
        return f"{result.name}: {ops} ({result.late_polls} late polls, {result.heal_calls} heal calls)"

    calls_target = f"≤ {CALLS_TARGET}" if full_day else "report"
    tmdb_target = f"≤ {TMDB_TARGET}" if full_day else "report"
    lines = [
        _side_by_side(
            f"AirKorea calls/{span} (both operations)",
            "calls",
            new.airkorea_calls,
            old.airkorea_calls,
            calls_target,
            new.airkorea_calls <= CALLS_TARGET if full_day else None,
            f"{detail(new)}; {detail(old)}{quick}",
        ),
        _side_by_side(
            f"TMDB requests/{span} (now_playing + movie)",
            "requests",
            new.tmdb_requests,
            old.tmdb_requests,
            tmdb_target,
            new.tmdb_requests <= TMDB_TARGET if full_day else None,
            f"new {new.operations['now_playing']} lists + {new.operations['movie']} details; old "
            f"{old.operations['now_playing']} + {old.operations['movie']}; the day's first run fetches every "
            f"movie's details (a day old){quick}",
        ),
        _side_by_side(
            f"completeness of the station-hours published ({new.published:,})",
            "%",
            new.completeness,
            old.completeness,
            f"≥ {COMPLETENESS_TARGET}",
            new.completeness >= COMPLETENESS_TARGET,
            f"new {new.completeness:.2f} %, old {old.completeness:.2f} %: held in air_readings new {new.held:,}, "
            f"old {old.held:,} of {new.published:,} "
            f"({len(simulator_stations())} stations × {sizes.day_hours} h); held with every value missing "
            f"(통신장애 …): new {new.flagged:,}, old {old.flagged:,}",
        ),
        Line(
            "day",
            f"station-hours missing per `gaps` ({span})",
            new.gaps_missing,
            "hours",
            old.gaps_missing,
            "old default",
            None,
            "report",
            None,
            f"the ledger's cross-check of the completeness above: new {new.published - new.held:,}, "
            f"old {old.published - old.held:,} not held; replay {new.seconds:.0f}s + {old.seconds:.0f}s",
        ),
    ]
    lines.append(_archive_line(new, old, span, full_day, sizes.day_hours))
    stations, days = sizes.gaps_stations, sizes.gaps_days
    gaps = time_gaps(stations, days)
    full_year = stations >= GAPS_STATIONS and days >= GAPS_DAYS
    size = f"{days} days × {stations} stations" if not full_year else f"a year of {stations} stations"
    lines += [
        Line(
            "day",
            f"gaps on {size} ({gaps.rows:,} station-days)",
            gaps.whole_ms,
            "ms",
            target=f"≤ {GAPS_TARGET_MS:g}" if full_year else "report",
            passed=gaps.whole_ms <= GAPS_TARGET_MS if full_year else None,
            note=f"find_gaps, median of 5; {gaps.days_listed:,} station-days with holes, {gaps.repairable:,} "
            f"repairable hours; ledger generated in {gaps.generated:.0f}s",
        ),
        Line(
            "day",
            f"gaps --json on {size}",
            gaps.json_ms,
            "ms",
            target="report",
            note="collect_gaps (its own engine) + the JSON, as the command runs them; median of 5",
        ),
        Line(
            "day",
            f"gaps --station on {size}",
            gaps.station_ms,
            "ms",
            target="report",
            note=f"find_gaps for one station ({days} days); median of 5",
        ),
    ]
    return lines
