"""One run: extract → transform → load for a set of jobs, recorded in ``runs``.

The jobs are the collections the daemon schedules separately:

* ``tmdb`` — every now-playing page, then each movie's details; a snapshot per movie per run;
* ``airkorea_sido`` — the newest hour of every station of each configured province;
* ``airkorea_stations`` — the hourly series of each watch-list station over ``data_term``.

``pipeline run --once`` runs every enabled job concurrently as one run (``job = 'cycle'``). Each job catches
its own source errors, so one failing source does not stop the others; the run is ``success`` when every
job succeeded, ``failed`` when none did, ``partial`` otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp

from pipeline.config import JOB_NAMES, AirKoreaSettings, DataTerm, JobName, Secrets, Settings
from pipeline.errors import (
    BadRequestError,
    LoadError,
    NotFoundError,
    PipelineError,
    QuotaError,
    RecordError,
    SourceError,
)
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract import tmdb as tmdb_extract
from pipeline.extract.http import RequestStats, SourceClient, job_stats, make_session
from pipeline.load.db import create_engine, migrate
from pipeline.load.queries import table_counts
from pipeline.load.quota import QuotaLedger
from pipeline.load.runs import RunStatus, RunTotals, finish_run, mark_abandoned, start_run
from pipeline.load.upsert import Writer
from pipeline.redaction import redact
from pipeline.transform.airkorea import to_air_batch
from pipeline.transform.common import Reject, make_reject
from pipeline.transform.tmdb import Movie, MovieSnapshot, movie_from_list_item, to_movie, to_snapshot

log = logging.getLogger(__name__)

JOBS = JOB_NAMES
JobStatus = Literal["success", "partial", "failed"]


@dataclass(slots=True)
class JobReport:
    """What one job did in one run."""

    job: JobName
    status: JobStatus = "success"
    fetched: int = 0
    rejected: int = 0
    rows: Counter[str] = field(default_factory=Counter)  # rows written per table
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_class: str | None = None
    seconds: float = 0.0
    stats: RequestStats = field(default_factory=RequestStats)

    @property
    def upserted(self) -> int:
        return sum(self.rows.values())

    @property
    def requests(self) -> int:
        return self.stats.total_requests

    def fail(self, exc: PipelineError, *, fatal: bool) -> None:
        message = redact(str(exc))
        self.errors.append(message)
        if isinstance(exc, SourceError):
            self.error_class = self.error_class or exc.error_class
        if fatal:
            self.status = "failed"
        elif self.status == "success":
            self.status = "partial"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "fetched": self.fetched,
            "upserted": self.upserted,
            "rejected": self.rejected,
            "rows": dict(self.rows),
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
            "errors": self.errors,
            "error_class": self.error_class,
            **self.stats.as_dict(),
        }


@dataclass(slots=True)
class RunReport:
    run_id: int
    job: str
    trigger: str
    started_at: datetime
    status: RunStatus = "running"
    jobs: list[JobReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def totals(self) -> RunTotals:
        return RunTotals(
            requests=sum(j.requests for j in self.jobs),
            rows_fetched=sum(j.fetched for j in self.jobs),
            rows_upserted=sum(j.upserted for j in self.jobs),
            rows_rejected=sum(j.rejected for j in self.jobs),
        )

    @property
    def error(self) -> str | None:
        errors = [f"{j.job}: {e}" for j in self.jobs for e in j.errors[:3]]
        return "; ".join(errors)[:4000] if errors else None


@dataclass(slots=True)
class RunContext:
    settings: Settings
    writer: Writer
    run_id: int
    started_at: datetime
    clients: dict[str, SourceClient]
    ledger: QuotaLedger
    data_term: DataTerm | None = None  # overrides sources.airkorea.data_term (catch-up after a gap)


def enabled_jobs(settings: Settings) -> list[JobName]:
    return [job for job in JOBS if settings.job_enabled(job)]


def overall_status(reports: Sequence[JobReport]) -> RunStatus:
    if reports and all(r.status == "success" for r in reports):
        return "success"
    if not reports or all(r.status == "failed" for r in reports):
        return "failed"
    return "partial"


# --- the jobs --------------------------------------------------------------------------------------------


async def collect_tmdb(ctx: RunContext, report: JobReport) -> None:
    settings = ctx.settings.sources.tmdb
    client = ctx.clients["tmdb"]
    listed: list[tuple[dict[str, Any], int]] = []  # (item, page), first occurrence only
    seen: set[int] = set()
    duplicates = 0
    async for page in tmdb_extract.fetch_now_playing(client, settings):
        report.fetched += len(page.results)
        for item in page.results:
            movie_id = item.get("id")
            if isinstance(movie_id, int) and movie_id in seen:
                duplicates += 1  # re-ranking between page requests repeats a movie on the next page
                continue
            if isinstance(movie_id, int):
                seen.add(movie_id)
            listed.append((item, page.page))
    if duplicates:
        report.warnings.append(f"{duplicates} movie(s) listed twice across pages (deduplicated)")
    await store_movie_list(ctx, report, listed, list_name="now_playing", language=settings.language)


async def store_movie_list(
    ctx: RunContext,
    report: JobReport,
    listed: list[tuple[dict[str, Any], int]],
    *,
    list_name: str,
    language: str,
    first_position: int = 1,
) -> None:
    """Fetch details for listed movies, then write movies, snapshots and rejects.

    ``listed`` holds ``(item, page)`` in list order, duplicates removed; positions count from ``first_position``.
    """
    client = ctx.clients["tmdb"]
    rejects: list[Reject] = []
    ids = [item["id"] for item, _ in listed if isinstance(item.get("id"), int)]
    details: dict[int, Movie] = {}
    async for movie_id, body in tmdb_extract.fetch_movie_details(client, ids, language):
        if isinstance(body, SourceError):
            rejects.append(make_reject("tmdb", f"details for movie {movie_id}: {body}", {"id": movie_id}))
            continue
        try:
            details[movie_id] = to_movie(body)
        except RecordError as exc:
            rejects.append(make_reject("tmdb", f"movie {movie_id}: {exc.reason}", body))
    bare: list[Movie] = []
    snapshots: list[MovieSnapshot] = []
    for position, (item, page) in enumerate(listed, start=first_position):
        try:
            snapshot = to_snapshot(item, position=position, page=page, list_name=list_name,
                                   movie=details.get(item.get("id")))  # type: ignore[arg-type]  # fmt: skip
            if snapshot.tmdb_id not in details:
                bare.append(movie_from_list_item(item))
        except RecordError as exc:
            rejects.append(make_reject("tmdb", f"{list_name} item: {exc.reason}", item))
            continue
        snapshots.append(snapshot)
    now = datetime.now(UTC)
    written = await ctx.writer.upsert_movies(list(details.values()), ctx.run_id, now)
    if bare:
        written += await ctx.writer.upsert_movies(bare, ctx.run_id, now, details=False)
    snapshot_rows = await ctx.writer.insert_snapshots(snapshots, ctx.run_id, ctx.started_at)
    rejected = await ctx.writer.insert_rejects(rejects, ctx.run_id)
    report.rows["movies"] += written
    report.rows["movie_snapshots"] += snapshot_rows
    report.rejected += rejected


async def _store_air_page(ctx: RunContext, report: JobReport, items: list[dict[str, Any]], station: str | None) -> None:
    batch = to_air_batch(items, station_name=station)
    report.fetched += len(items)
    now = datetime.now(UTC)
    # await first, then add: `x += await f()` reads x before the await and loses concurrent updates
    stations = await ctx.writer.upsert_air_stations(batch.stations, now)
    readings = await ctx.writer.upsert_air_readings(batch.readings, ctx.run_id, now)
    rejected = await ctx.writer.insert_rejects(batch.rejects, ctx.run_id)
    report.rows["air_stations"] += stations
    report.rows["air_readings"] += readings
    report.rejected += rejected


async def _each(report: JobReport, names: Sequence[str], work: Callable[[str], Awaitable[None]]) -> None:
    """Run ``work`` for every name concurrently; a source error fails that name only."""

    async def one(name: str) -> bool:
        try:
            await work(name)
        except SourceError as exc:
            # a refused request is a bug or a config error: the job fails (other names' rows are kept)
            report.fail(exc, fatal=isinstance(exc, BadRequestError))
            return False
        return True

    results = await asyncio.gather(*(one(name) for name in names))
    if results and not any(results):
        report.status = "failed"


async def collect_airkorea_sido(ctx: RunContext, report: JobReport) -> None:
    settings = ctx.settings.sources.airkorea
    client = ctx.clients["airkorea"]

    async def one(sido: str) -> None:
        async for page in airkorea_extract.fetch_sido_pages(client, sido, settings):
            await _store_air_page(ctx, report, page.items, None)

    await _each(report, settings.sidos, one)


async def collect_airkorea_stations(ctx: RunContext, report: JobReport) -> None:
    settings = ctx.settings.sources.airkorea
    client = ctx.clients["airkorea"]

    async def one(station: str) -> None:
        received = 0
        async for page in airkorea_extract.fetch_station_pages(client, station, settings, ctx.data_term):
            received += len(page.items)
            await _store_air_page(ctx, report, page.items, station)
        if not received:
            message = f"station {station!r}: AirKorea returned no readings (unknown station name?)"
            report.warnings.append(message)
            log.warning("airkorea_stations: %s", message)

    await _each(report, settings.stations, one)


COLLECTORS: dict[JobName, Callable[[RunContext, JobReport], Awaitable[None]]] = {
    "tmdb": collect_tmdb,
    "airkorea_sido": collect_airkorea_sido,
    "airkorea_stations": collect_airkorea_stations,
}


async def _run_job(ctx: RunContext, job: JobName) -> JobReport:
    report = JobReport(job=job)
    started = time.monotonic()
    job_stats.set(report.stats)  # this task's context: requests made for the job are counted in its report
    try:
        if job != "tmdb":  # data.go.kr: the planned calls must fit in what is left of today's quota
            planned = _planned_calls(ctx.settings.sources.airkorea, job, ctx.data_term)
            try:
                await ctx.ledger.check_plan(planned)
            except QuotaError:
                report.stats.actions["quota:deferred"] += 1
                raise
        await COLLECTORS[job](ctx, report)
    except NotFoundError as exc:
        report.fail(exc, fatal=False)
    except (SourceError, LoadError) as exc:
        report.fail(exc, fatal=True)
    finally:
        report.seconds = time.monotonic() - started
    return report


def _planned_calls(settings: AirKoreaSettings, job: JobName, data_term: DataTerm | None) -> dict[str, int]:
    rows = settings.num_of_rows
    if job == "airkorea_sido":
        return {airkorea_extract.SIDO_OPERATION: airkorea_extract.sido_calls(settings.sidos, rows)}
    term = data_term or settings.data_term
    return {airkorea_extract.STATION_OPERATION: airkorea_extract.station_calls(len(settings.stations), term, rows)}


def make_ledger(settings: Settings, writer: Writer, clock: Callable[[], datetime] | None = None) -> QuotaLedger:
    quota = settings.sources.airkorea.daily_quota
    limits = {airkorea_extract.SIDO_OPERATION: quota, airkorea_extract.STATION_OPERATION: quota}
    return QuotaLedger(writer, limits, now=clock or (lambda: datetime.now(UTC)))


def make_clients(
    settings: Settings, secrets: Secrets, session: aiohttp.ClientSession, ledger: QuotaLedger
) -> dict[str, SourceClient]:
    clients: dict[str, SourceClient] = {}
    if settings.sources.tmdb.enabled:
        clients["tmdb"] = tmdb_extract.make_client(session, settings.sources.tmdb, secrets)
    if settings.sources.airkorea.enabled:
        clients["airkorea"] = airkorea_extract.make_client(
            session, settings.sources.airkorea, secrets, before_send=ledger.reserve, on_quota=ledger.exhaust
        )
    return clients


async def run_jobs(
    settings: Settings,
    secrets: Secrets,
    writer: Writer,
    jobs: Sequence[JobName] | None = None,
    *,
    run_name: str = "cycle",
    trigger: str = "manual",
    session: aiohttp.ClientSession | None = None,
    data_term: DataTerm | None = None,
    now: Callable[[], datetime] | None = None,
) -> RunReport:
    """Run ``jobs`` (default: every enabled one) concurrently as one recorded run."""
    selected = list(jobs) if jobs is not None else enabled_jobs(settings)
    started_at = datetime.now(UTC)
    run_id = await start_run(writer, run_name, trigger, started_at)
    report = RunReport(run_id=run_id, job=run_name, trigger=trigger, started_at=started_at)
    clock = time.monotonic()
    own_session = session is None
    http = session or make_session()
    try:
        ledger = make_ledger(settings, writer, now)
        clients = make_clients(settings, secrets, http, ledger)
        ctx = RunContext(
            settings=settings,
            writer=writer,
            run_id=run_id,
            started_at=started_at,
            clients=clients,
            data_term=data_term,
            ledger=ledger,
        )
        report.jobs = list(await asyncio.gather(*(_run_job(ctx, job) for job in selected)))
        report.status = overall_status(report.jobs)
    except BaseException as exc:
        report.status = "failed"
        reason = (
            "cancelled (shutdown)"
            if isinstance(exc, asyncio.CancelledError)
            else redact(f"{type(exc).__name__}: {exc}")
        )
        await asyncio.shield(_finish(writer, report, reason))
        raise
    finally:
        report.seconds = time.monotonic() - clock
        if own_session:
            await http.close()
    await _finish(writer, report, None)
    for job_report in report.jobs:
        log.info(
            "%s: %s; fetched %d, upserted %d, rejected %d, requests %d, %.1fs",
            job_report.job,
            job_report.status,
            job_report.fetched,
            job_report.upserted,
            job_report.rejected,
            job_report.requests,
            job_report.seconds,
        )
    return report


async def _finish(writer: Writer, report: RunReport, reason: str | None) -> None:
    details: dict[str, Any] = {job.job: job.as_dict() for job in report.jobs}
    error = reason or report.error
    await finish_run(writer, report.run_id, report.status, report.totals, error=error, details=details)


async def run_once(
    settings: Settings, secrets: Secrets, jobs: Sequence[JobName] | None = None, *, trigger: str = "manual"
) -> tuple[RunReport, dict[str, int]]:
    """Migrate, run every enabled job once as one run, and return the report and the table counts."""
    await migrate(settings.database.url)
    engine = create_engine(settings.database.url)
    try:
        writer = Writer(engine, settings.database.chunk_size)
        abandoned = await mark_abandoned(writer)
        if abandoned:
            log.warning("marked %d run(s) left running by a process that ended as failed", abandoned)
        report = await run_jobs(settings, secrets, writer, jobs, trigger=trigger)
        return report, await table_counts(engine)
    finally:
        await engine.dispose()
