"""``pipeline backfill``: fill history once, in resumable chunks.

AirKorea's real-time API has no date parameters: ``getMsrstnAcctoRltmMesureDnsty`` serves windows that end
at the newest published hour (``pipeline.extract.airkorea.WINDOWS``). A backfill picks the smallest window that
covers the range, keeps only the rows inside it, and refuses a range older than the largest window.
TMDB history comes from ``/discover/movie`` (theatrical releases in the region within the range).

The work is split into chunks — one station, or ten TMDB list pages — recorded in ``backfill_chunks``. A chunk
is marked done only after its rows are written, so a backfill killed half-way and started again with the
same arguments fetches only what is not done. Rows are upserted like the daemon's; a quota stop (code 22 or
the ledger's limit) leaves the remaining chunks pending and says when the backfill can resume.

Memory does not grow with the range: stations are streamed a few at a time (the source's concurrency), each
written as soon as it is parsed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import multiprocessing
import os
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

import aiohttp
from sqlalchemy import Update, bindparam, select, update

from pipeline.config import NATIONWIDE, SIDOS, DataTerm, Secrets, Settings
from pipeline.errors import ConfigError, QuotaError, SourceError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract import tmdb as tmdb_extract
from pipeline.extract.http import RequestStats, job_stats, make_session
from pipeline.load.quota import next_kst_midnight
from pipeline.load.runs import RunTotals, finish_run, start_run
from pipeline.load.tables import air_stations, backfill_chunks, backfills
from pipeline.load.upsert import Writer, column_rows, dialect_insert, reading_rows
from pipeline.redaction import redact
from pipeline.resources import cpu_seconds, limit_malloc_arenas, no_cyclic_gc, peak_rss_mb
from pipeline.runner import JobReport, RunContext, make_ledger, store_movie_list
from pipeline.transform.airkorea import AirStation, to_air_batch, to_air_columns
from pipeline.transform.common import KST, Reject, kst_label_to_utc

log = logging.getLogger(__name__)

TMDB_CHUNK_PAGES = 10
MIN_STATIONS_FOR_WORKERS = 8

Source = Literal["airkorea", "tmdb"]


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


class Progress(Protocol):
    def start(self, total: int, done: int, unit: str) -> None: ...
    def advance(self, chunks: int, rows: int) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    def start(self, total: int, done: int, unit: str) -> None:
        pass

    def advance(self, chunks: int, rows: int) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass(slots=True)
class BackfillReport:
    backfill_id: str
    source: Source
    status: str = "done"  # done, paused (quota), partial (some chunks failed), failed
    window: str | None = None
    chunks_total: int = 0
    chunks_skipped: int = 0  # already done by an earlier attempt
    chunks_done: int = 0
    chunks_failed: int = 0
    chunks_pending: int = 0
    rows_fetched: int = 0
    rows_upserted: int = 0
    rows_out_of_range: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    worker_peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0  # user + system CPU of this process during the backfill
    worker_cpu_seconds: float = 0.0  # ... and of its parse workers
    message: str | None = None
    errors: list[str] = field(default_factory=list)
    stats: RequestStats = field(default_factory=RequestStats)

    @property
    def rows_per_second(self) -> float:
        return self.rows_upserted / self.seconds if self.seconds else 0.0

    def add_time(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds


@dataclass(frozen=True, slots=True)
class AirPlan:
    backfill_id: str
    days: DayRange
    window: DataTerm
    stations: list[str]
    need_station_list: bool  # the database knows no stations yet: fetch the province lists first
    sidos: list[str]  # the provinces whose lists are fetched first
    arguments: dict[str, Any]  # the selection as given, recorded with the backfill

    def requests(self, pending: int | None = None) -> dict[str, int]:
        stations = len(self.stations) if pending is None else pending
        rows = airkorea_extract.MAX_ROWS_PER_PAGE
        plan = {airkorea_extract.STATION_OPERATION: airkorea_extract.station_calls(stations, self.window, rows)}
        if self.need_station_list:
            plan[airkorea_extract.SIDO_OPERATION] = len(self.sidos)
        return plan


# --- ledger ---------------------------------------------------------------------------------------------


async def _open_backfill(
    writer: Writer, backfill_id: str, source: Source, days: DayRange, arguments: dict[str, Any], chunks: Sequence[str]
) -> tuple[list[str], int]:
    """Record the backfill and its chunks (new ones pending); return the chunks still to do and the done count."""
    now = datetime.now(UTC)
    ins = dialect_insert(writer.dialect, backfills)
    stmt = ins.values(
        id=backfill_id,
        source=source,
        range_from=days.first,
        range_to=days.last,
        arguments=json.dumps(arguments, ensure_ascii=False, sort_keys=True),
        status="running",
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={"status": "running", "updated_at": now})
    chunk_ins = dialect_insert(writer.dialect, backfill_chunks).on_conflict_do_nothing(
        index_elements=["backfill_id", "chunk"]
    )
    async with writer.transaction() as conn:
        await conn.execute(stmt)
        if chunks:
            await conn.execute(
                chunk_ins,
                [
                    {
                        "backfill_id": backfill_id,
                        "chunk": c,
                        "status": "pending",
                        "attempts": 0,
                        "rows": 0,
                        "updated_at": now,
                    }
                    for c in chunks
                ],
            )
        rows = (
            await conn.execute(
                select(backfill_chunks.c.chunk, backfill_chunks.c.status).where(
                    backfill_chunks.c.backfill_id == backfill_id
                )
            )
        ).all()
    status = {row.chunk: row.status for row in rows}
    todo = [c for c in chunks if status.get(c) != "done"]
    return todo, sum(1 for c in chunks if status.get(c) == "done")


async def _mark(
    writer: Writer,
    backfill_id: str,
    chunk: str,
    status: str,
    run_id: int,
    *,
    rows: int = 0,
    error: str | None = None,
    attempt: bool = False,
) -> None:
    values: dict[str, Any] = {"status": status, "run_id": run_id, "updated_at": datetime.now(UTC)}
    if status == "done":
        values["rows"] = rows
        values["error"] = None
    if error is not None:
        values["error"] = redact(error)
    statement = _mark_statement(tuple(values), attempt)
    async with writer.transaction() as conn:
        await conn.execute(statement, {**values, "_backfill_id": backfill_id, "_chunk": chunk})


@functools.cache
def _mark_statement(columns: tuple[str, ...], attempt: bool) -> Update:
    """``UPDATE backfill_chunks`` of ``columns`` (and ``attempts + 1``), built once: a backfill marks every
    chunk, and building the statement cost more than running it."""
    values: dict[str, Any] = {name: bindparam(name, type_=backfill_chunks.c[name].type) for name in columns}
    if attempt:
        values["attempts"] = backfill_chunks.c.attempts + 1
    key = (backfill_chunks.c.backfill_id == bindparam("_backfill_id")) & (
        backfill_chunks.c.chunk == bindparam("_chunk")
    )
    return update(backfill_chunks).where(key).values(**values)


async def _close_backfill(writer: Writer, backfill_id: str, status: str) -> None:
    async with writer.transaction() as conn:
        await conn.execute(
            update(backfills).where(backfills.c.id == backfill_id).values(status=status, updated_at=datetime.now(UTC))
        )


# --- AirKorea -------------------------------------------------------------------------------------------


async def known_stations(writer: Writer, sidos: Sequence[str] = ()) -> list[str]:
    query = select(air_stations.c.station_name).order_by(air_stations.c.station_name)
    if sidos:
        query = query.where(air_stations.c.sido_name.in_(list(sidos)))
    async with writer.engine.connect() as conn:
        return [row.station_name for row in (await conn.execute(query)).all()]


def _selection(stations: Sequence[str], sidos: Sequence[str], all_stations: bool) -> tuple[str, dict[str, Any]]:
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


async def backfill_airkorea(
    settings: Settings,
    secrets: Secrets,
    writer: Writer,
    plan: AirPlan,
    *,
    progress: Progress | None = None,
    session: aiohttp.ClientSession | None = None,
    now: Callable[[], datetime] | None = None,
    workers: int | None = None,
) -> BackfillReport:
    """``workers``: processes that parse and transform pages (default: one per CPU beyond the first; 0 = none)."""
    limit_malloc_arenas()
    progress = progress or NoProgress()
    report = BackfillReport(plan.backfill_id, "airkorea", window=plan.window)
    if workers is None:  # a worker process costs about a second to start: worth it from a few stations on
        workers = default_workers() if len(plan.stations) >= MIN_STATIONS_FOR_WORKERS or plan.need_station_list else 0
    count = workers
    pool = (
        ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"), initializer=no_cyclic_gc)
        if count > 0
        else None
    )
    # A spawned worker takes a second or so to start (a new interpreter, its imports). Start it now, and parse
    # here until it is up, rather than leave the first pages waiting for it.
    booted = pool.submit(_worker_ready) if pool is not None else None
    source = settings.sources.airkorea.model_copy(update={"num_of_rows": airkorea_extract.MAX_ROWS_PER_PAGE})
    local = settings.model_copy(update={"sources": settings.sources.model_copy(update={"airkorea": source})})
    started, cpu_started, children_started = time.monotonic(), cpu_seconds(), cpu_seconds(resource.RUSAGE_CHILDREN)
    run_id = await start_run(writer, "backfill_airkorea", "backfill")
    http = session or make_session()
    ledger = make_ledger(local, writer, now)
    client = airkorea_extract.make_client(http, source, secrets, before_send=ledger.reserve, on_quota=ledger.exhaust)
    token = job_stats.set(report.stats)
    try:
        stations = list(plan.stations)
        if plan.need_station_list:  # the database knows no stations: the province lists name them
            for sido in plan.sidos:
                async for page in airkorea_extract.fetch_sido_pages(client, sido, source):
                    batch = to_air_batch(page.items)
                    await writer.upsert_air_stations(batch.stations, datetime.now(UTC))
                    stations.extend(s.station_name for s in batch.stations)
            stations = list(dict.fromkeys(stations))
        todo, done_before = await _open_backfill(
            writer, plan.backfill_id, "airkorea", plan.days, plan.arguments, stations
        )
        report.chunks_total, report.chunks_skipped = len(stations), done_before
        if todo:  # a backfill starts when a call is left today, and pauses at the quota
            await ledger.check_plan({airkorea_extract.STATION_OPERATION: 1})
        progress.start(len(stations), done_before, "stations")
        await _run_chunks(
            todo,
            lambda station, done: _air_chunk(
                writer,
                client,
                source,
                plan,
                run_id,
                station,
                report,
                done,
                pool if booted is not None and booted.done() else None,
            ),
            # Twice as many stations in flight as requests: the client still sends at most `concurrency`
            # requests at once, but while some stations wait for the worker or the writer, others are fetched
            # (measured: ~8% more rows/s on 2 cores than one station per request slot).
            CHUNKS_PER_REQUEST_SLOT * source.concurrency,
            report,
            writer,
            run_id,
            progress,
        )
    except QuotaError as exc:
        report.status, report.message = "paused", _paused(exc, (now or (lambda: datetime.now(UTC)))())
    finally:
        job_stats.reset(token)
        progress.stop()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            report.worker_cpu_seconds = cpu_seconds(resource.RUSAGE_CHILDREN) - children_started
        report.cpu_seconds = cpu_seconds() - cpu_started
        if session is None:
            await http.close()
    return await _finish(writer, report, run_id, started)


#: stations in flight per HTTP request slot (``sources.airkorea.concurrency``) in an AirKorea backfill
CHUNKS_PER_REQUEST_SLOT = 2


def _worker_ready() -> None:
    """Nothing: its completion says that a worker process is up."""


def default_workers() -> int:
    """Worker processes for parsing: the CPUs beyond the one that writes, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _paused(exc: QuotaError, now: datetime) -> str:
    resume = next_kst_midnight(now)
    return f"paused by the daily quota ({exc}); run the same command after {resume:%Y-%m-%d %H:%M} KST to resume"


@dataclass(frozen=True, slots=True)
class StationRows:
    """One station's series, parsed, filtered to the range and made into rows (in a worker process)."""

    rows: list[tuple[Any, ...]]
    stations: list[AirStation]
    rejects: list[Reject]
    fetched: int
    out_of_range: int
    complete: bool  # False: the series has more pages than this one (never with numOfRows=10000)
    seconds: float  # parse + transform time in the worker
    worker_peak_rss_mb: float = 0.0  # set by the worker process that made it


def station_rows(body: bytes | list[dict[str, Any]], station: str, start: datetime, end: datetime, run_id: int,
                 now: datetime, sqlite_form: bool) -> StationRows:  # fmt: skip
    """Pure: a station page (raw JSON bytes, or items) → rows for ``air_readings``. Runs in a worker process."""
    began = time.process_time()
    if isinstance(body, bytes):
        page = airkorea_extract.classify(200, {}, body, f"{airkorea_extract.STATION_OPERATION} {station}")
        items, complete = page.items, page.total_count <= len(page.items)
    else:
        items, complete = body, True
    columns = to_air_columns(items, station_name=station)  # a regular page, at a third of the cost
    if columns is not None:
        keep = [start <= moment <= end for moment in columns.measured_at]
        rows = column_rows(columns, run_id, now, sqlite_form=sqlite_form, keep=keep)
        return StationRows(rows, columns.stations, [], len(items), len(columns) - len(rows), complete,
                           time.process_time() - began)  # fmt: skip
    batch = to_air_batch(items, station_name=station)  # item by item: rejects, duplicates, odd values
    inside = [r for r in batch.readings if start <= r.measured_at <= end]
    rows = reading_rows(inside, run_id, now, sqlite_form=sqlite_form)
    return StationRows(rows, batch.stations, batch.rejects, len(items), len(batch.readings) - len(inside), complete,
                       time.process_time() - began)  # fmt: skip


def _station_rows_in_worker(*args: Any) -> StationRows:
    """:func:`station_rows` in a worker process, with the worker's peak memory attached."""
    return replace(station_rows(*args), worker_peak_rss_mb=peak_rss_mb())


async def _air_chunk(
    writer: Writer,
    client: Any,
    source: Any,
    plan: AirPlan,
    run_id: int,
    station: str,
    report: BackfillReport,
    done: Done,
    pool: Executor | None,
) -> int:
    """One station: fetch its series (one page with numOfRows=10000), keep the range, write, mark done.

    With a ``pool``, the page is parsed and transformed in a worker process while this process fetches and
    writes the next ones: parsing and transforming cost as much CPU as writing, and one process has one GIL.
    """
    now = datetime.now(UTC)
    sqlite_form = writer.sqlite_form
    params = airkorea_extract.station_query(station, plan.window, ver=source.ver, rows=source.num_of_rows)
    operation = airkorea_extract.STATION_OPERATION
    body = await client.get(operation, params, operation, classify=airkorea_extract.raw_json_page)
    began = time.monotonic()
    args = (station, plan.days.start, plan.days.end, run_id, now, sqlite_form)
    if isinstance(body, bytes) and pool is not None:
        result = await asyncio.get_running_loop().run_in_executor(pool, _station_rows_in_worker, body, *args)
        report.worker_peak_rss_mb = max(report.worker_peak_rss_mb, result.worker_peak_rss_mb)
    else:  # no pool, or a body that was parsed here already (XML, an empty 03 answer)
        result = station_rows(body if isinstance(body, bytes) else body.items, *args)
    if not result.complete:  # more rows than one page: take the careful paged path
        items: list[dict[str, Any]] = []
        async for page in airkorea_extract.fetch_station_pages(client, station, source, plan.window):
            items.extend(page.items)
        result = station_rows(items, *args)
    report.rows_fetched += result.fetched
    report.rows_out_of_range += result.out_of_range
    if not result.fetched:
        log.warning("backfill: station %r returned no readings (unknown station name?)", station)
    transformed = time.monotonic()
    async with writer.transaction():  # the rows and the chunk's "done" commit together
        if result.stations:
            await writer.upsert_air_stations(result.stations, now)
        rows = await writer.upsert_reading_rows(result.rows)
        report.rows_rejected += await writer.insert_rejects(result.rejects, run_id)
        await done(rows)
    report.add_time("transform (worker CPU)" if pool is not None else "transform", result.seconds)
    report.add_time("wait for transform", transformed - began)
    report.add_time("load", time.monotonic() - transformed)
    return rows


Done = Callable[[int], Awaitable[None]]


async def _run_chunks(
    todo: Sequence[str],
    work: Callable[[str, Done], Awaitable[int]],
    concurrency: int,
    report: BackfillReport,
    writer: Writer,
    run_id: int,
    progress: Progress,
) -> None:
    """Run chunks a few at a time; a quota stop lets running chunks end and leaves the rest pending.

    ``work(chunk, done)`` writes the chunk's rows and calls ``done(rows)``, inside its last write transaction
    when it can, so that a chunk is marked done exactly when its rows are committed.
    """
    queue = list(reversed(todo))
    stop: list[QuotaError] = []

    async def worker() -> None:
        while queue and not stop:
            chunk = queue.pop()

            async def done(rows: int, chunk: str = chunk) -> None:
                await _mark(writer, report.backfill_id, chunk, "done", run_id, rows=rows, attempt=True)

            try:
                rows = await work(chunk, done)
            except QuotaError as exc:
                stop.append(exc)
                await _mark(writer, report.backfill_id, chunk, "pending", run_id, error=str(exc), attempt=True)
                return
            except SourceError as exc:
                report.chunks_failed += 1
                report.errors.append(f"{chunk}: {exc}")
                await _mark(writer, report.backfill_id, chunk, "failed", run_id, error=str(exc), attempt=True)
                progress.advance(1, 0)
                continue
            report.chunks_done += 1
            report.rows_upserted += rows
            progress.advance(1, rows)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    report.chunks_pending = len(queue) + sum(1 for _ in stop)
    if stop:
        raise stop[0]


async def _finish(writer: Writer, report: BackfillReport, run_id: int, started: float) -> BackfillReport:
    report.seconds = time.monotonic() - started
    report.peak_rss_mb = peak_rss_mb()
    for stage, seconds in report.stats.seconds.items():
        report.stages[stage] = seconds
    if report.status != "paused":
        if report.chunks_failed and report.chunks_done:
            report.status = "partial"
        elif report.chunks_failed:
            report.status = "failed"
    run_status = {"done": "success", "paused": "partial", "partial": "partial", "failed": "failed"}[report.status]
    if report.status == "paused" and not report.chunks_done:
        run_status = "failed"
    totals = RunTotals(
        requests=report.stats.total_requests,
        rows_fetched=report.rows_fetched,
        rows_upserted=report.rows_upserted,
        rows_rejected=report.rows_rejected,
    )
    details = {
        "backfill": report.backfill_id,
        "chunks_done": report.chunks_done,
        "chunks_failed": report.chunks_failed,
        "chunks_pending": report.chunks_pending,
        "chunks_skipped": report.chunks_skipped,
        "window": report.window,
        "seconds_total": round(report.seconds, 3),
        "stages": {k: round(v, 3) for k, v in report.stages.items()},
        "peak_rss_mb": round(report.peak_rss_mb, 1),
        "worker_peak_rss_mb": round(report.worker_peak_rss_mb, 1),
        "cpu_seconds": round(report.cpu_seconds, 3),
        "worker_cpu_seconds": round(report.worker_cpu_seconds, 3),
        **report.stats.as_dict(),
    }
    error = report.message or ("; ".join(report.errors[:5]) if report.errors else None)
    await finish_run(writer, run_id, run_status, totals, error=error, details=details)  # type: ignore[arg-type]
    await _close_backfill(writer, report.backfill_id, report.status)
    return report


# --- TMDB -----------------------------------------------------------------------------------------------


async def backfill_tmdb(
    settings: Settings,
    secrets: Secrets,
    writer: Writer,
    days: DayRange,
    *,
    region: str,
    progress: Progress | None = None,
    session: aiohttp.ClientSession | None = None,
) -> BackfillReport:
    if not settings.sources.tmdb.enabled:
        raise ConfigError("sources.tmdb.enabled is false: enable it to backfill TMDB")
    progress = progress or NoProgress()
    tmdb = settings.sources.tmdb
    backfill_id = f"tmdb:{days.first}..{days.last}:region={region}"
    report = BackfillReport(backfill_id, "tmdb")
    started = time.monotonic()
    run_id = await start_run(writer, "backfill_tmdb", "backfill")
    http = session or make_session()
    client = tmdb_extract.make_client(http, tmdb, secrets)
    params = {
        "language": tmdb.language,
        "region": region,
        "release_date.gte": days.first.isoformat(),
        "release_date.lte": days.last.isoformat(),
        "with_release_type": "2|3",
        "sort_by": "primary_release_date.asc",
    }
    ctx = RunContext(
        settings=settings,
        writer=writer,
        run_id=run_id,
        started_at=datetime.now(UTC),
        clients={"tmdb": client},
        ledger=make_ledger(settings, writer),
    )
    token = job_stats.set(report.stats)
    try:
        first = await client.get("discover/movie", {**params, "page": "1"}, "discover")
        total_pages = min(int(first.get("total_pages", 1) or 1), tmdb_extract.MAX_PAGE)
        chunks = [
            f"pages {p}-{min(p + TMDB_CHUNK_PAGES - 1, total_pages)}"
            for p in range(1, total_pages + 1, TMDB_CHUNK_PAGES)
        ]
        todo, done_before = await _open_backfill(writer, backfill_id, "tmdb", days, {"region": region}, chunks)
        report.chunks_total, report.chunks_skipped = len(chunks), done_before
        progress.start(len(chunks), done_before, "page ranges")

        async def chunk_work(chunk: str, done: Done) -> int:
            low, high = (int(x) for x in chunk.removeprefix("pages ").split("-"))
            listed: list[tuple[dict[str, Any], int]] = []
            seen: set[int] = set()
            async for page in tmdb_extract.fetch_list_pages(
                client, "discover/movie", params, first_page=low, max_pages=high - low + 1, operation="discover"
            ):
                report.rows_fetched += len(page.results)
                for item in page.results:
                    if isinstance(item.get("id"), int) and item["id"] not in seen:
                        seen.add(item["id"])
                        listed.append((item, page.page))
            job = JobReport(job="tmdb")
            await store_movie_list(
                ctx, job, listed, list_name="discover", language=tmdb.language, first_position=(low - 1) * 20 + 1
            )
            report.rows_rejected += job.rejected
            await done(job.upserted)  # after its own short transactions: no lock is held across requests
            return job.upserted

        await _run_chunks(todo, chunk_work, 1, report, writer, run_id, progress)
    except QuotaError as exc:  # TMDB has no daily quota; kept for symmetry with a future ledger
        report.status, report.message = "paused", _paused(exc, datetime.now(UTC))
    finally:
        job_stats.reset(token)
        progress.stop()
        if session is None:
            await http.close()
    return await _finish(writer, report, run_id, started)


# --- dry run --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DryRun:
    lines: list[str]


async def dry_run_airkorea(settings: Settings, writer: Writer, plan: AirPlan, now: datetime | None = None) -> DryRun:
    """The plan without a single request: calls per operation, today's quota, days needed."""
    moment = now or datetime.now(UTC)
    ledger = make_ledger(settings, writer, lambda: moment)
    usage = {u.operation: u for u in await ledger.usage()}
    done = await _done_chunks(writer, plan.backfill_id)
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


async def _done_chunks(writer: Writer, backfill_id: str) -> set[str]:
    async with writer.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(backfill_chunks.c.chunk).where(
                    (backfill_chunks.c.backfill_id == backfill_id) & (backfill_chunks.c.status == "done")
                )
            )
        ).all()
    return {row.chunk for row in rows}
