"""``pipeline replay``: the archived bodies re-parsed, re-transformed and upserted, without one request.

Bodies are replayed in fetch order, grouped by the run that fetched them, through the same code a live run
uses: AirKorea pages through :func:`~pipeline.jobs.airkorea.page_rows` and
:func:`~pipeline.jobs.airkorea.write_page` (readings, stations, rejects, the completeness ledger; a
province poll's newest hour extends the expected hours as it did live), TMDB list pages and details through
the transform and :func:`~pipeline.jobs.tmdb.write_movie_list`. Rows keep the run that fetched their body
(its id and start time: a snapshot is what that run saw); the replay itself is one recorded run
(``runs.trigger = 'replay'``) that counts what it did. Only answers with HTTP 200 are replayed; a body that
does not parse (an error envelope, truncated JSON) is counted as skipped, as it failed live.

Idempotent: upserts, and rejects written once per run and record; replaying twice changes nothing, and a
replay killed half-way is finished by running it again. It needs no keys and runs beside the daemon.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

from sqlalchemy import and_, exists, literal, select

from pipeline.backfill.chunks import NoProgress, Progress
from pipeline.backfill.plan import DayRange
from pipeline.backfill.tmdb import CHUNK_PAGES
from pipeline.backfill.worker import ProcessParser
from pipeline.errors import LoadError, PipelineError, RecordError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract import tmdb as tmdb_extract
from pipeline.jobs.airkorea import (
    INLINE,
    Newest,
    PageJob,
    PageParser,
    PageRows,
    advance_published,
    reading_codec,
    write_page,
)
from pipeline.jobs.context import JobReport, RunContext, make_ledger
from pipeline.jobs.tmdb import Listing, write_movie_list
from pipeline.lifecycle import Opened
from pipeline.load.archive import decompress
from pipeline.load.queries import fresh_details
from pipeline.load.runs import RunStatus, RunTotals, finish_run, start_run
from pipeline.load.tables import backfill_chunks, backfills, raw_bodies, raw_responses, rejects, runs
from pipeline.load.writer import Writer
from pipeline.redaction import redact
from pipeline.transform.common import KST, Reject, make_reject
from pipeline.transform.tmdb import Movie, to_movie

#: bodies fetched from the database at a time
BATCH = 64
#: AirKorea pages parsed ahead of the one being written (in a worker process, from MIN_BODIES_FOR_WORKER on)
LOOKAHEAD = 2
#: a worker process costs about a second to start: worth it from this many AirKorea bodies on
MIN_BODIES_FOR_WORKER = 8
_LIST_OPERATIONS = {"now_playing": "now_playing", "discover": "discover"}


@dataclass(frozen=True, slots=True)
class ReplaySelection:
    since: date | None = None
    until: date | None = None
    run: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    id: int
    run_id: int | None
    source: str
    operation: str
    params: dict[str, str]
    body_hash: str
    fetched_at: datetime


@dataclass(slots=True)
class ReplayReport:
    run_id: int | None = None
    status: str = "success"
    bodies: int = 0
    skipped: int = 0
    runs: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    items: int = 0  # records the bodies hold (a dry run counts them without writing)
    by_operation: Counter[str] = field(default_factory=Counter)

    @property
    def upserted(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows["air_readings"] / self.seconds if self.seconds else 0.0


def _kst_start(day: date) -> datetime:
    return datetime.combine(day, clock_time(), KST).astimezone(UTC)


async def responses(writer: Writer, selection: ReplaySelection) -> list[Response]:
    """The archived answers (HTTP 200) the selection names, in fetch order."""
    r = raw_responses.c
    query = select(r.id, r.run_id, r.source, r.operation, r.params, r.body_hash, r.fetched_at).where(r.status == 200)
    if selection.since is not None:
        query = query.where(r.fetched_at >= _kst_start(selection.since))
    if selection.until is not None:
        query = query.where(r.fetched_at < _kst_start(selection.until + timedelta(days=1)))
    if selection.run is not None:
        query = query.where(r.run_id == selection.run)
    if selection.source is not None:
        query = query.where(r.source == selection.source)
    async with writer.engine.connect() as conn:
        rows = (await conn.execute(query.order_by(r.id))).all()
    return [
        Response(row.id, row.run_id, row.source, row.operation, json.loads(row.params), row.body_hash, row.fetched_at)
        for row in rows
    ]


async def _bodies(writer: Writer, hashes: Sequence[str]) -> dict[str, bytes]:
    query = select(raw_bodies.c.hash, raw_bodies.c.encoding, raw_bodies.c.body).where(raw_bodies.c.hash.in_(hashes))
    async with writer.engine.connect() as conn:
        return {row.hash: decompress(row.encoding, row.body) for row in (await conn.execute(query)).all()}


async def _run_starts(writer: Writer, ids: set[int]) -> dict[int, datetime]:
    if not ids:
        return {}
    async with writer.engine.connect() as conn:
        found = (await conn.execute(select(runs.c.id, runs.c.started_at).where(runs.c.id.in_(ids)))).all()
    return {row.id: row.started_at for row in found}


async def _backfill_ranges(writer: Writer, ids: set[int]) -> dict[int, tuple[datetime, datetime]]:
    """For the runs that were AirKorea backfills, the hours their range kept (a station series reaches further
    back than the range: the backfill kept only the range, so must its replay)."""
    if not ids:
        return {}
    c, b = backfill_chunks.c, backfills.c
    query = (
        select(c.run_id, b.range_from, b.range_to)
        .join_from(backfill_chunks, backfills, b.id == c.backfill_id)
        .where(c.run_id.in_(ids), b.source == "airkorea")
        .distinct()
    )
    async with writer.engine.connect() as conn:
        found = (await conn.execute(query)).all()
    ranges: dict[int, tuple[datetime, datetime]] = {}
    for row in found:
        days = DayRange(row.range_from, row.range_to)
        ranges[row.run_id] = (days.start, days.end)
    return ranges


async def insert_new_rejects(writer: Writer, found: Sequence[Reject], run_id: int) -> int:
    """Rejects not yet recorded for ``run_id`` (same source, reason and record): replaying twice adds none."""
    written = 0
    now = datetime.now(UTC)
    async with writer.transaction() as conn:
        for reject in found:
            same = and_(
                rejects.c.run_id == run_id,
                rejects.c.source == reject.source,
                rejects.c.reason == reject.reason,
                rejects.c.record == reject.record,
            )
            values = select(
                literal(run_id), literal(reject.source), literal(reject.reason), literal(reject.record), literal(now)
            ).where(~exists().where(same))
            insert = rejects.insert().from_select(["run_id", "source", "reason", "record", "created_at"], values)
            written += (await conn.execute(insert)).rowcount or 0
    return written


class _RunReplay:
    """The responses of one original run, replayed."""

    def __init__(
        self,
        opened: Opened,
        report: ReplayReport,
        run_id: int,
        started_at: datetime,
        keep: tuple[datetime, datetime] | None = None,
    ) -> None:
        self.keep = keep  # a backfill's range: the hours it kept
        self.opened = opened
        self.writer = opened.writer
        self.report = report
        self.run_id = run_id
        ledger = make_ledger(opened.settings, opened.writer)
        self.ctx = RunContext(opened.settings, opened.writer, run_id, started_at, {}, ledger)
        self.ctx.clock = lambda: started_at  # movies' times: when that run fetched them
        self.ctx.written_clock = self.ctx.clock  # not later than the run's own writes: never over newer rows
        self.newest = Newest()
        self.polled: set[str] = set()
        self.nationwide = False
        self.pages: dict[tuple[str, int], list[tmdb_extract.ListPage]] = {}  # (list name, its chunk's first page)
        self.details: dict[int, Movie] = {}
        self.rejects: list[Reject] = []
        self.job = JobReport(job="tmdb")

    def page_job(self, response: Response) -> PageJob:
        station = (
            response.params.get("stationName") if response.operation == airkorea_extract.STATION_OPERATION else None
        )
        return PageJob(reading_codec(self.writer), self.run_id, response.fetched_at, station, self.keep,
                       sido=self._sido(response))  # fmt: skip

    @staticmethod
    def _sido(response: Response) -> str | None:
        return response.params.get("sidoName") if response.operation == airkorea_extract.SIDO_OPERATION else None

    async def airkorea(self, response: Response, rows: PageRows) -> None:
        """Write one page, parsed (perhaps ahead, in a worker) by :func:`page_rows`."""
        sido = self._sido(response)
        self.report.items += rows.fetched
        if self.report.dry_run:
            return
        written = await write_page(self.writer, rows, self.run_id)
        self.report.rows["air_stations"] += written.stations
        self.report.rows["air_readings"] += written.readings
        self.report.rejected += written.rejected
        if sido is not None:
            self.newest.add(rows)
            if sido == airkorea_extract.NATIONWIDE:
                self.nationwide = True
            else:
                self.polled.add(sido)

    def tmdb(self, response: Response, body: bytes) -> None:
        what = f"{response.operation} (archived)"
        parsed = tmdb_extract.classify(200, {}, body, what)
        if response.operation in _LIST_OPERATIONS:
            page = tmdb_extract.list_page(parsed, what)
            name = _LIST_OPERATIONS[response.operation]
            first = 1 if name == "now_playing" else (page.page - 1) // CHUNK_PAGES * CHUNK_PAGES + 1
            self.pages.setdefault((name, first), []).append(page)
            self.report.items += len(page.results)
        elif response.operation == "movie":
            self.report.items += 1
            try:
                movie = to_movie(parsed)
            except RecordError as exc:
                self.rejects.append(make_reject("tmdb", f"movie: {exc.reason}", parsed))
                return
            self.details[movie.tmdb_id] = movie

    async def finish(self) -> None:
        if self.report.dry_run:
            return
        if self.newest.hour is not None:
            polled = None if self.nationwide else sorted(self.polled)
            await advance_published(self.writer, self.newest, polled, self.run_id, self.ctx.started_at)
        listed_ids: list[int] = []
        for (name, first), pages in sorted(self.pages.items()):
            listing = Listing()
            for page in sorted(pages, key=lambda p: p.page):  # live: the pages in order, each movie once
                listing.add(page)
            ids = [item["id"] for item, _ in listing.items if isinstance(item.get("id"), int)]
            listed_ids += ids
            stored = [i for i in ids if i not in self.details]  # live: details within the TTL, not fetched
            fresh = await fresh_details(self.writer.engine, stored, datetime.min.replace(tzinfo=UTC))
            position = (first - 1) * tmdb_extract.PAGE_SIZE + 1
            await write_movie_list(self.ctx, self.job, listing.items, self.details, fresh, [], name, position)
        orphans = [movie for movie_id, movie in self.details.items() if movie_id not in set(listed_ids)]
        if orphans:  # details whose list pages are not in the selection: the movies still get them
            await write_movie_list(self.ctx, self.job, [], {m.tmdb_id: m for m in orphans}, {}, [], "now_playing")
        self.report.rejected += await insert_new_rejects(self.writer, self.rejects, self.run_id)
        self.report.rows.update(self.job.rows)


async def replay(
    opened: Opened,
    selection: ReplaySelection,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    parser: PageParser | None = None,
) -> ReplayReport:
    """Replay the selection (see the module docstring); a dry run parses and counts, and writes nothing."""
    writer = opened.writer
    progress = progress or NoProgress()
    report = ReplayReport(dry_run=dry_run)
    began = time.monotonic()
    found = await responses(writer, selection)
    report.by_operation.update(f"{r.source} {r.operation}" for r in found)
    starts = await _run_starts(writer, {r.run_id for r in found if r.run_id is not None})
    ranges = await _backfill_ranges(writer, set(starts))
    if not dry_run:
        report.run_id = await start_run(writer, "replay", "replay")
    progress.start(len(found), 0, "bodies")
    groups: dict[int | None, _RunReplay] = {}
    pool: ProcessParser | None = None
    if parser is None and sum(r.source == "airkorea" for r in found) >= MIN_BODIES_FOR_WORKER:
        pool = ProcessParser(1)  # parses the next pages while this process writes the current one
    parse = parser or pool or INLINE
    ahead: deque[tuple[_RunReplay, Response, asyncio.Future[PageRows]]] = deque()

    async def write_next() -> None:
        group, response, parsed = ahead.popleft()
        try:
            await group.airkorea(response, await parsed)
            report.bodies += 1
        except LoadError:
            raise
        except PipelineError:  # an error envelope or a body that does not parse: it failed live too
            report.skipped += 1
        progress.advance(1, 0)

    try:
        for offset in range(0, len(found), BATCH):
            batch = found[offset : offset + BATCH]
            bodies = await _bodies(writer, sorted({r.body_hash for r in batch}))
            for response in batch:
                owner = response.run_id if response.run_id in starts else report.run_id
                group = groups.get(owner)
                if group is None:
                    started = starts.get(owner, response.fetched_at) if owner is not None else response.fetched_at
                    keep = ranges.get(owner) if owner is not None else None
                    group = groups[owner] = _RunReplay(opened, report, owner or 0, started, keep)  # 0: a dry run
                body = bodies[response.body_hash]
                if response.source == "airkorea":  # pages are written in fetch order, parsed LOOKAHEAD ahead
                    ahead.append((group, response, asyncio.ensure_future(parse.parse(body, group.page_job(response)))))
                    if len(ahead) > LOOKAHEAD:
                        await write_next()
                    continue
                try:
                    group.tmdb(response, body)
                    report.bodies += 1
                except PipelineError:
                    report.skipped += 1
                progress.advance(1, 0)
        while ahead:
            await write_next()
        for group in groups.values():
            await group.finish()
        report.runs = len(groups)
    except BaseException as exc:
        report.status = "failed"
        report.errors.append(redact(f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        for _group, _response, parsed in ahead:  # a failure half-way: nothing parsed ahead is left running
            parsed.cancel()
        if ahead:
            await asyncio.gather(*(parsed for _g, _r, parsed in ahead), return_exceptions=True)
        if pool is not None:
            pool.close()
        progress.stop()
        report.seconds = time.monotonic() - began
        if report.run_id is not None:
            totals = RunTotals(requests=0, rows_fetched=report.items, rows_upserted=report.upserted,
                               rows_rejected=report.rejected)  # fmt: skip
            details: dict[str, Any] = {"replay": {"bodies": report.bodies, "skipped": report.skipped,
                                                  "runs": report.runs, "rows": dict(report.rows)}}  # fmt: skip
            status: RunStatus = "failed" if report.status == "failed" else "success"
            await finish_run(writer, report.run_id, status, totals, error="; ".join(report.errors) or None,
                             details=details)  # fmt: skip
    return report
