"""The TMDB backfill: ``/discover/movie`` (theatrical releases in the region within the range), ten pages a
chunk, each page's movies stored like the daemon's now-playing list (:func:`pipeline.jobs.tmdb.store_movie_list`)
as ``list_name = 'discover'`` snapshots."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import aiohttp

from pipeline.config import Settings
from pipeline.errors import ConfigError, QuotaError
from pipeline.extract import tmdb as tmdb_extract
from pipeline.extract.http import make_session
from pipeline.extract.stats import job_stats
from pipeline.jobs.context import JobReport, RunContext, make_ledger
from pipeline.jobs.tmdb import Listing, store_movie_list
from pipeline.keys import Secrets
from pipeline.load.archive import receiver_for
from pipeline.load.backfills import open_backfill
from pipeline.load.runs import start_run
from pipeline.load.writer import Writer

from .chunks import BackfillReport, Done, NoProgress, Progress, finish, run_chunks
from .plan import DayRange, tmdb_backfill_id

CHUNK_PAGES = 10


def page_chunks(total_pages: int) -> list[str]:
    return [f"pages {p}-{min(p + CHUNK_PAGES - 1, total_pages)}" for p in range(1, total_pages + 1, CHUNK_PAGES)]


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
    backfill_id = tmdb_backfill_id(days, region)
    report = BackfillReport(backfill_id, "tmdb")
    started = time.monotonic()
    run_id = await start_run(writer, "backfill_tmdb", "backfill")
    http = session or make_session()
    client = tmdb_extract.make_client(http, tmdb, secrets)
    client.after_receive = receiver_for(settings, writer, run_id)
    params = tmdb_extract.discover_query(tmdb.language, region, days.first, days.last)
    ctx = RunContext(settings, writer, run_id, datetime.now(UTC), {"tmdb": client}, make_ledger(settings, writer))
    token = job_stats.set(report.stats)
    try:
        chunks = page_chunks(await tmdb_extract.fetch_discover_total_pages(client, params))
        todo, done_before = await open_backfill(
            writer, backfill_id, "tmdb", days.first, days.last, {"region": region}, chunks
        )
        report.chunks_total, report.chunks_skipped = len(chunks), done_before
        progress.start(len(chunks), done_before, "page ranges")

        async def chunk_work(chunk: str, done: Done) -> int:
            low, high = (int(x) for x in chunk.removeprefix("pages ").split("-"))
            listing = Listing()
            async for page in tmdb_extract.fetch_discover_pages(
                client, params, first_page=low, max_pages=high - low + 1
            ):
                listing.add(page)
            report.rows_fetched += listing.fetched
            job = JobReport(job="tmdb")
            first_position = (low - 1) * tmdb_extract.PAGE_SIZE + 1
            await store_movie_list(
                ctx, job, listing.items, list_name="discover", language=tmdb.language, first_position=first_position
            )
            report.rows_rejected += job.rejected
            await done(job.upserted)  # after its own short transactions: no lock is held across requests
            return job.upserted

        await run_chunks(todo, chunk_work, 1, report, writer, run_id, progress)
    except QuotaError as exc:  # TMDB has no daily quota; kept for symmetry with a future ledger
        report.pause(exc, datetime.now(UTC))
    finally:
        job_stats.reset(token)
        progress.stop()
        if session is None:
            await http.close()
    return await finish(writer, report, run_id, started)
