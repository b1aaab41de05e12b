"""The AirKorea backfill: each station's series over the smallest window covering the range, one chunk a
station, through the same page → rows → database path as the daemon's jobs (:mod:`pipeline.jobs.airkorea`).

Memory does not grow with the range: stations are streamed a few at a time, each written as soon as it is
parsed.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp

from pipeline.config import AirKoreaSettings, Settings
from pipeline.errors import QuotaError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract.http import SourceClient, make_session
from pipeline.extract.stats import job_stats
from pipeline.jobs.airkorea import INLINE, PageJob, PageParser, reading_codec, write_page
from pipeline.jobs.context import make_ledger
from pipeline.keys import Secrets
from pipeline.load.archive import receiver_for
from pipeline.load.backfills import open_backfill
from pipeline.load.runs import start_run
from pipeline.load.upsert import upsert_air_stations
from pipeline.load.writer import Writer
from pipeline.resources import cpu_seconds, limit_malloc_arenas
from pipeline.transform.airkorea import RawAirItem, to_air_batch

from .chunks import BackfillReport, Done, NoProgress, Progress, finish, run_chunks
from .plan import AirPlan
from .worker import MIN_STATIONS_FOR_WORKERS, ProcessParser, default_workers

log = logging.getLogger(__name__)

#: stations in flight per HTTP request slot (``sources.airkorea.concurrency``)
CHUNKS_PER_REQUEST_SLOT = 2


async def _station(
    writer: Writer,
    client: SourceClient,
    source: AirKoreaSettings,
    plan: AirPlan,
    run_id: int,
    station: str,
    report: BackfillReport,
    done: Done,
    parser: PageParser,
) -> int:
    """One station: fetch its series (one page of up to ``MAX_ROWS_PER_PAGE``), keep the range, write, mark done."""
    job = PageJob(reading_codec(writer), run_id, datetime.now(UTC), station, (plan.days.start, plan.days.end))
    params = airkorea_extract.station_query(station, plan.window, ver=source.ver, rows=source.num_of_rows)
    operation = airkorea_extract.STATION_OPERATION
    body = await client.get(operation, params, operation, classify=airkorea_extract.raw_json_page)
    began = time.monotonic()
    rows = await parser.parse(body if isinstance(body, bytes) else body.items, job)
    if not rows.complete:  # more rows than one page: take the careful paged path
        items: list[RawAirItem] = []
        async for page in airkorea_extract.fetch_station_pages(client, station, source, plan.window):
            if page.shortfall:
                log.warning("backfill: %s", page.describe_shortfall(f"station {station}"))
            items.extend(page.items)
        rows = await INLINE.parse(items, job)
    report.rows_fetched += rows.fetched
    report.rows_out_of_range += rows.out_of_range
    if not rows.fetched:
        log.warning("backfill: station %r returned no readings (unknown station name?)", station)
    transformed = time.monotonic()
    async with writer.transaction():  # the rows and the chunk's "done" commit together
        written = await write_page(writer, rows, run_id)
        report.rows_rejected += written.rejected
        await done(written.readings)
    report.add_time(parser.stage, rows.seconds)
    report.add_time("wait for transform", transformed - began)
    report.add_time("load", time.monotonic() - transformed)
    return written.readings


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
    if workers is None:
        workers = default_workers() if len(plan.stations) >= MIN_STATIONS_FOR_WORKERS or plan.need_station_list else 0
    pool = ProcessParser(workers) if workers > 0 else None
    parser: PageParser = pool or INLINE
    source = settings.sources.airkorea.model_copy(update={"num_of_rows": airkorea_extract.MAX_ROWS_PER_PAGE})
    local = settings.model_copy(update={"sources": settings.sources.model_copy(update={"airkorea": source})})
    started, cpu_started, children_started = time.monotonic(), cpu_seconds(), cpu_seconds(resource.RUSAGE_CHILDREN)
    run_id = await start_run(writer, "backfill_airkorea", "backfill")
    http = session or make_session()
    ledger = make_ledger(local, writer, now)
    client = airkorea_extract.make_client(http, source, secrets, before_send=ledger.reserve, on_quota=ledger.exhaust)
    client.after_receive = receiver_for(settings, writer, run_id)
    token = job_stats.set(report.stats)
    try:
        stations = list(plan.stations)
        if plan.need_station_list:  # the database knows no stations: the province lists name them
            for sido in plan.sidos:
                async for page in airkorea_extract.fetch_sido_pages(client, sido, source):
                    batch = to_air_batch(page.items)
                    await upsert_air_stations(writer, batch.stations, datetime.now(UTC))
                    stations.extend(s.station_name for s in batch.stations)
            stations = list(dict.fromkeys(stations))
        todo, done_before = await open_backfill(
            writer, plan.backfill_id, "airkorea", plan.days.first, plan.days.last, plan.arguments, stations
        )
        report.chunks_total, report.chunks_skipped = len(stations), done_before
        if todo:  # a backfill starts when a call is left today, and pauses at the quota
            await ledger.check_plan({airkorea_extract.STATION_OPERATION: 1})
        progress.start(len(stations), done_before, "stations")

        async def chunk(station: str, done: Done) -> int:
            return await _station(writer, client, source, plan, run_id, station, report, done, parser)

        # Twice as many stations in flight as requests: the client still sends at most `concurrency` requests
        # at once, but while some stations wait for the worker or the writer, others are fetched (measured:
        # ~8% more rows/s on 2 cores than one station per request slot).
        await run_chunks(todo, chunk, CHUNKS_PER_REQUEST_SLOT * source.concurrency, report, writer, run_id, progress)
    except QuotaError as exc:
        report.pause(exc, (now or (lambda: datetime.now(UTC)))())
    finally:
        job_stats.reset(token)
        progress.stop()
        if pool is not None:
            pool.close()
            report.worker_peak_rss_mb = pool.worker_peak_rss_mb
            report.worker_cpu_seconds = cpu_seconds(resource.RUSAGE_CHILDREN) - children_started
        report.cpu_seconds = cpu_seconds() - cpu_started
        if session is None:
            await http.close()
    return await finish(writer, report, run_id, started)
