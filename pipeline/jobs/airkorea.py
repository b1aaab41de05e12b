"""The AirKorea province job, and the one path every AirKorea page takes: page → rows → database.

:func:`page_rows` (pure, picklable) classifies a raw body if it is one, normalises it through the transform's
one entry point (:func:`~pipeline.transform.airkorea.to_air_batch`), keeps a backfill's range, and encodes the
readings with the loader's own codec. A :class:`PageParser` runs it: :class:`InlineParser` in the event loop
(the daemon's jobs: a page at a time, a few hundred rows), a process pool for the backfill
(:class:`pipeline.backfill.worker.ProcessParser`), behind the same interface. :func:`write_page` then writes
what it made — readings, stations, rejects and the completeness ledger's rows, in one transaction; the daemon,
the backfill and replay all go through these three. The station job (watch-list and self-healing) is
:mod:`pipeline.jobs.stations`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from pipeline.config import SIDOS, AirKoreaSettings, DataTerm, Settings
from pipeline.errors import AuthError, BadRequestError, QuotaError, SourceError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.jobs.context import JobReport, RunContext
from pipeline.load.coverage import expect_hours, newest_published, record_published, upsert_coverage
from pipeline.load.queries import station_count
from pipeline.load.rows import Encoded, RowCodec, encode_readings
from pipeline.load.tables import air_readings
from pipeline.load.upsert import insert_rejects, upsert_air_stations, upsert_encoded_readings
from pipeline.load.writer import Writer
from pipeline.transform.airkorea import AirStation, RawAirItem, to_air_batch
from pipeline.transform.common import Reject
from pipeline.transform.coverage import CoverageRow, coverage_of

if TYPE_CHECKING:
    from pipeline.extract.http import SourceClient

log = logging.getLogger(__name__)


# --- one page -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageJob:
    """What to make of a page: for which run, with which codec, and (a backfill) which hours to keep."""

    codec: RowCodec
    run_id: int
    now: datetime
    station: str | None = None  # names the station when the items do not (msrstn, ver < 1.4)
    keep: tuple[datetime, datetime] | None = None  # first and last hour (ends, UTC) to keep; None: every one
    sido: str | None = None  # the province asked for: stations whose items omit sidoName are in it


@dataclass(frozen=True, slots=True)
class PageRows:
    """A page normalised and encoded for the loader: what a parser hands :func:`write_page`."""

    rows: Encoded
    stations: list[AirStation]
    rejects: list[Reject]
    fetched: int
    out_of_range: int
    complete: bool  # False: the series has more pages than this one (a backfill then pages carefully)
    seconds: float  # CPU time of parsing, normalising and encoding
    coverage: list[CoverageRow] = field(default_factory=list)  # the station-days the rows cover (the ledger)
    newest: datetime | None = None  # the newest hour among the rows
    newest_stations: int = 0  # stations carrying it
    peak_rss_mb: float = 0.0  # set by a worker process that made it


def page_rows(body: bytes | Sequence[RawAirItem], job: PageJob) -> PageRows:
    """Pure: a page — raw JSON bytes, or its items — → rows for ``air_readings``, stations and rejects."""
    began = time.process_time()
    if isinstance(body, bytes):
        what = f"{airkorea_extract.STATION_OPERATION} {job.station}" if job.station else "AirKorea page"
        page = airkorea_extract.classify(200, {}, body, what)
        items, complete = page.items, page.total_count <= len(page.items)
    else:
        items, complete = list(body), True
    batch = to_air_batch(items, station_name=job.station)
    inside = batch if job.keep is None else batch.between(*job.keep)
    rows = encode_readings(job.codec, inside, job.run_id, job.now)
    stations = batch.stations
    newest = max(inside.measured_at, default=None)
    if job.sido is not None and job.sido != airkorea_extract.NATIONWIDE:  # older answers omit sidoName
        stations = [s if s.sido_name else replace(s, sido_name=job.sido) for s in stations]
    return PageRows(
        rows=rows,
        stations=stations,
        rejects=batch.rejects,
        fetched=len(items),
        out_of_range=len(batch) - len(inside),
        complete=complete,
        seconds=time.process_time() - began,
        coverage=coverage_of(inside),
        newest=newest,
        newest_stations=sum(1 for moment in inside.measured_at if moment == newest),
    )


class PageParser(Protocol):
    """Runs :func:`page_rows`: here, or elsewhere (a worker process)."""

    stage: str  # what its CPU time is called in a backfill's stages

    async def parse(self, body: bytes | Sequence[RawAirItem], job: PageJob) -> PageRows: ...


class InlineParser:
    """:func:`page_rows` in the event loop."""

    stage = "transform"

    async def parse(self, body: bytes | Sequence[RawAirItem], job: PageJob) -> PageRows:
        return page_rows(body, job)


INLINE = InlineParser()


@dataclass(frozen=True, slots=True)
class Written:
    stations: int
    readings: int
    rejected: int


async def write_page(writer: Writer, rows: PageRows, run_id: int) -> Written:
    """Stations, readings, rejects and the completeness ledger of one page, in one transaction (the caller's
    if it holds one): the ledger never says an hour is held that the readings do not hold, nor the reverse."""
    now = datetime.now(UTC)
    async with writer.transaction():
        # await first, then add: `x += await f()` reads x before the await and loses concurrent updates
        stations = await upsert_air_stations(writer, rows.stations, now) if rows.stations else 0
        readings = await upsert_encoded_readings(writer, rows.rows)
        rejected = await insert_rejects(writer, rows.rejects, run_id)
        await upsert_coverage(writer, rows.coverage, now)
    return Written(stations, readings, rejected)


def reading_codec(writer: Writer) -> RowCodec:
    """The codec ``writer`` takes ``air_readings`` rows in (a plain value: a worker process can use it)."""
    return writer.prepare(air_readings).codec


# --- the daemon's jobs ------------------------------------------------------------------------------------------


async def store(
    ctx: RunContext, report: JobReport, items: Sequence[RawAirItem], station: str | None, sido: str | None = None
) -> PageRows:
    """One page of a daemon job through :func:`page_rows` and :func:`write_page`, counted in ``report``."""
    job = PageJob(reading_codec(ctx.writer), ctx.run_id, datetime.now(UTC), station, sido=sido)
    rows = await (ctx.parser or INLINE).parse(items, job)
    report.fetched += rows.fetched
    written = await write_page(ctx.writer, rows, ctx.run_id)
    report.rows["air_stations"] += written.stations
    report.rows["air_readings"] += written.readings
    report.rejected += written.rejected
    return rows


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


#: a 전국 answer holding fewer than this share of the stations already known is not trusted
NATIONWIDE_MIN_SHARE = 0.8


@dataclass(slots=True)
class Newest:
    """The newest hour a poll's answers carry, and how many stations carry it."""

    hour: datetime | None = None
    stations: int = 0

    def add(self, rows: PageRows) -> None:
        if rows.newest is None:
            return
        if self.hour is None or rows.newest > self.hour:
            self.hour, self.stations = rows.newest, rows.newest_stations
        elif rows.newest == self.hour:
            self.stations += rows.newest_stations


async def collect_sido(ctx: RunContext, report: JobReport) -> None:
    """``airkorea_sido``: the newest hour of every station of each configured province.

    ``sidos: [전국]`` (the default) is one call for the whole country. When that answer is an error, empty, or
    holds far fewer stations than are known (:data:`NATIONWIDE_MIN_SHARE`), the same run polls the 17
    provinces instead, and says so (a warning and ``counts.nationwide_fallback`` in ``runs.details``).
    The newest hour of the answers then becomes expected of every station polled (the completeness ledger),
    and when it is not the hour AirKorea should have published by now, the job asks to poll again.
    """
    settings = ctx.settings.sources.airkorea
    client = ctx.clients["airkorea"]
    newest = Newest()

    async def one(sido: str) -> None:
        async for page in airkorea_extract.fetch_sido_pages(client, sido, settings):
            if page.shortfall:
                report.warnings.append(page.describe_shortfall(f"province {sido}"))
            newest.add(await store(ctx, report, page.items, None, sido))

    polled: tuple[str, ...] | None = None  # provinces whose stations the answers cover (None: all)
    if settings.sidos != (airkorea_extract.NATIONWIDE,):
        await _each(report, settings.sidos, one)
        polled = settings.sidos
    else:
        reason = await _nationwide(ctx, report, client, settings, newest)
        if reason is not None:
            report.warnings.append(f"{reason}: fell back to the {len(SIDOS)} provinces")
            report.counts["nationwide_fallback"] += 1
            log.warning("airkorea_sido: %s: falling back to the %d provinces", reason, len(SIDOS))
            await ctx.ledger.check_plan(
                {airkorea_extract.SIDO_OPERATION: airkorea_extract.sido_calls(SIDOS, settings.num_of_rows)}
            )
            await _each(report, SIDOS, one)
    await _published(ctx, report, newest, polled)


async def _published(ctx: RunContext, report: JobReport, newest: Newest, polled: tuple[str, ...] | None) -> None:
    """Extend the expected hours to the newest one published; ask for another poll when that hour is not
    published yet, or only for part of the stations polled."""
    if newest.hour is None:
        return
    now = ctx.now()
    due = airkorea_extract.newest_published_hour(now)
    if newest.hour > due:  # a mislabelled item must not make every station owe hours the API has not served
        report.warnings.append(f"an item is labelled {newest.hour:%Y-%m-%d %H:%M} UTC, after {due:%H:%M} UTC: ignored")
        newest = Newest(due, 0)
    report.counts["hours_published"] += await advance_published(ctx.writer, newest, polled, ctx.run_id, now)
    assert newest.hour is not None
    late = None
    if newest.hour < due:
        late = f"the newest hour published is {newest.hour:%Y-%m-%d %H:%M} UTC, not yet {due:%H:%M} UTC"
    else:
        known = await station_count(ctx.writer.engine, polled)
        if newest.stations < NATIONWIDE_MIN_SHARE * known:
            late = f"the newest hour ({newest.hour:%H:%M} UTC) came for {newest.stations} of {known} stations"
    if late is None:
        return
    report.counts["late"] += 1
    delay = ctx.settings.sources.airkorea.late_poll
    if delay:
        report.retry_at = now + timedelta(seconds=delay)
        late += f": polling again at {report.retry_at:%H:%M} UTC"
    report.warnings.append(late)
    log.info("airkorea_sido: %s", late)


async def advance_published(
    writer: Writer, newest: Newest, polled: Sequence[str] | None, run_id: int, now: datetime
) -> int:
    """A poll's newest hour, newer than any before, becomes the ledger's end: every station of the provinces
    ``polled`` (``None``: all) is expected to hold the hours up to it. Returns how many hours were added."""
    if newest.hour is None:
        return 0
    previous = await newest_published(writer.engine)
    if previous is not None and newest.hour <= previous:
        return 0
    first = newest.hour if previous is None else previous + timedelta(hours=1)
    async with writer.transaction():
        await expect_hours(writer, first, newest.hour, now, polled)
        await record_published(writer, newest.hour, newest.stations, run_id, now)
    return (newest.hour - first) // timedelta(hours=1) + 1


async def _nationwide(
    ctx: RunContext, report: JobReport, client: SourceClient, settings: AirKoreaSettings, newest: Newest
) -> str | None:
    """Poll 전국 and store it; or, without storing anything, why it cannot be trusted."""
    nationwide = airkorea_extract.NATIONWIDE
    known = await station_count(ctx.writer.engine)
    try:
        pages = [page async for page in airkorea_extract.fetch_sido_pages(client, nationwide, settings)]
    except (AuthError, QuotaError):  # the provinces would be refused too
        raise
    except SourceError as exc:
        return f"the {nationwide} answer failed ({exc})"
    stations = len({item.get("stationName") for page in pages for item in page.items})
    if not stations:
        return f"the {nationwide} answer was empty"
    if stations < NATIONWIDE_MIN_SHARE * known:
        return f"the {nationwide} answer held {stations} stations of the {known} known"
    for page in pages:
        if page.shortfall:
            report.warnings.append(page.describe_shortfall(f"province {nationwide}"))
        newest.add(await store(ctx, report, page.items, None, nationwide))
    return None


def sido_calls(settings: Settings, _data_term: DataTerm | None) -> dict[str, int]:
    source = settings.sources.airkorea
    return {airkorea_extract.SIDO_OPERATION: airkorea_extract.sido_calls(source.sidos, source.num_of_rows)}
