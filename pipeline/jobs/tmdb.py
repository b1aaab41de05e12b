"""The TMDB job: every now-playing page, then each movie's details; a snapshot per movie per run.

:func:`store_movie_list` is shared with the backfill's discover chunks: details are fetched for the listed
movies, then movies, snapshots and rejects are written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

from pipeline.config import DataTerm, Settings
from pipeline.errors import RecordError, SourceError
from pipeline.extract import tmdb as tmdb_extract
from pipeline.jobs.context import JobReport, RunContext
from pipeline.load.queries import fresh_details
from pipeline.load.upsert import insert_rejects, insert_snapshots, upsert_movies
from pipeline.transform.common import Reject, make_reject
from pipeline.transform.tmdb import Movie, MovieSnapshot, RawListItem, movie_from_list_item, to_movie, to_snapshot

Listed = list[tuple[RawListItem, int]]  # (list item, its page), in list order


class Listing:
    """List items in order, each movie once: TMDB re-ranks between page requests, so a movie can be listed
    again on the next page; the first occurrence keeps its place."""

    def __init__(self) -> None:
        self.items: Listed = []
        self.duplicates = 0
        self.fetched = 0
        self._seen: set[int] = set()

    def add(self, page: tmdb_extract.ListPage) -> None:
        self.fetched += len(page.results)
        for item in page.results:
            movie_id = item.get("id")
            if isinstance(movie_id, int):
                if movie_id in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(movie_id)
            self.items.append((item, page.page))


async def collect_now_playing(ctx: RunContext, report: JobReport) -> None:
    """``tmdb``: every now-playing page, deduplicated, with each movie's details."""
    settings = ctx.settings.sources.tmdb
    listing = Listing()
    async for page in tmdb_extract.fetch_now_playing(ctx.clients["tmdb"], settings):
        listing.add(page)
    report.fetched += listing.fetched
    if listing.duplicates:
        report.warnings.append(f"{listing.duplicates} movie(s) listed twice across pages (deduplicated)")
    await store_movie_list(ctx, report, listing.items, list_name="now_playing", language=settings.language)


async def _details(ctx: RunContext, ids: Iterable[int], language: str, rejects: list[Reject]) -> dict[int, Movie]:
    details: dict[int, Movie] = {}
    async for movie_id, body in tmdb_extract.fetch_movie_details(ctx.clients["tmdb"], ids, language):
        if isinstance(body, SourceError):
            rejects.append(make_reject("tmdb", f"details for movie {movie_id}: {body}", {"id": movie_id}))
            continue
        try:
            details[movie_id] = to_movie(body)
        except RecordError as exc:
            rejects.append(make_reject("tmdb", f"movie {movie_id}: {exc.reason}", body))
    return details


async def store_movie_list(
    ctx: RunContext, report: JobReport, listed: Listed, *, list_name: str, language: str, first_position: int = 1
) -> None:
    """Fetch the details of listed movies whose stored details are older than ``sources.tmdb.details_ttl``,
    then write movies, snapshots (every listed movie, every run) and rejects.

    ``listed`` holds ``(item, page)`` in list order, duplicates removed; positions count from ``first_position``.
    A snapshot of a movie whose details were not fetched again takes the stored revenue.
    """
    rejects: list[Reject] = []
    ids = [item["id"] for item, _ in listed if isinstance(item.get("id"), int)]
    ttl = ctx.settings.sources.tmdb.details_ttl
    fresh = await fresh_details(ctx.writer.engine, ids, ctx.now() - timedelta(seconds=ttl)) if ttl else {}
    details = await _details(ctx, [i for i in ids if i not in fresh], language, rejects)
    report.counts["details_fetched"] += len(ids) - len(fresh)
    report.counts["details_skipped"] += len(fresh)
    await write_movie_list(ctx, report, listed, details, fresh, rejects, list_name, first_position)


async def write_movie_list(
    ctx: RunContext,
    report: JobReport,
    listed: Listed,
    details: dict[int, Movie],
    fresh: dict[int, int | None],
    rejects: list[Reject],
    list_name: str,
    first_position: int = 1,
) -> None:
    """Movies (with details, or bare list items that never overwrite details), one snapshot per listed movie
    (a movie whose details were not fetched takes its ``fresh`` stored revenue), and rejects. The live job and
    replay write through it."""
    bare: list[Movie] = []
    snapshots: list[MovieSnapshot] = []
    for position, (item, page) in enumerate(listed, start=first_position):
        movie_id = item.get("id")
        try:
            movie = details.get(movie_id) if isinstance(movie_id, int) else None
            snapshot = to_snapshot(item, position=position, page=page, list_name=list_name, movie=movie)
            if snapshot.tmdb_id in fresh:
                snapshot = replace(snapshot, revenue=fresh[snapshot.tmdb_id])
            elif snapshot.tmdb_id not in details:
                bare.append(movie_from_list_item(item))
        except RecordError as exc:
            rejects.append(make_reject("tmdb", f"{list_name} item: {exc.reason}", item))
            continue
        snapshots.append(snapshot)
    now = ctx.now()  # what the details TTL compares against (pipeline.clock: the simulator's, simulating)
    at = ctx.written_at()
    written = await upsert_movies(ctx.writer, list(details.values()), ctx.run_id, now, written_at=at)
    if bare:
        written += await upsert_movies(ctx.writer, bare, ctx.run_id, now, details=False, written_at=at)
    snapshot_rows = await insert_snapshots(ctx.writer, snapshots, ctx.run_id, ctx.started_at)
    rejected = await insert_rejects(ctx.writer, rejects, ctx.run_id)
    report.rows["movies"] += written
    report.rows["movie_snapshots"] += snapshot_rows
    report.rejected += rejected


def planned_calls(_settings: Settings, _data_term: DataTerm | None) -> dict[str, int]:
    """TMDB has no daily quota (a rate limit only): nothing to plan against a ledger."""
    return {}
