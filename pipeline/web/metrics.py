"""``GET /metrics``: the pipeline's state in the Prometheus text format, read from the database.

Every value comes from the database, never from counters in this process, so ``pipeline serve`` and the
daemon's web surface answer the same, and a restart loses nothing but the cache below. The text is
``prometheus_client``'s: the families are built from one snapshot, then yielded by a collector registered
in a fresh :class:`~prometheus_client.CollectorRegistry` and rendered by ``generate_latest``.

Families (prefix ``pipeline_``; a family with nothing to report is present without samples):

=============================================  =========  ======================  ==========================
family                                         type       labels                  from
=============================================  =========  ======================  ==========================
``runs_total``                                 counter    job, status             ``runs`` rows, finished
``runs_in_progress``                           gauge      job                     ``runs`` rows ``running``
``job_runs_total``                             counter    job, status             each job's outcome
``run_duration_seconds``                       histogram  job                     runs that ran
``rows_written_total``                         counter    table                   ``runs.details`` rows
``rows_rejected_total``                        counter    source                  ``rejects``
``requests_total``                             counter    source, operation       ``runs.details``
``request_failures_total``                     counter    source, error_class     ``runs.details``
``retries_total``                              counter    source                  ``runs.details``
``airkorea_quota_calls`` / ``_limit`` /        gauge      operation               ``api_calls`` (KST day)
``_left`` / ``_exhausted``
``job_last_success_age_seconds``,              gauge      job                     :func:`collect_status`
``job_last_success_timestamp_seconds``,
``job_freshness_limit_seconds``, ``job_fresh``,
``job_enabled``; ``healthy``
``completeness_24h_ratio``,                    gauge      (state)                 ``StatusReport``
``completeness_24h_station_hours``,
``completeness_24h_expected_station_hours``,
``newest_published_hour_timestamp_seconds``
``archive_responses``, ``archive_bodies``,     gauge      –                       ``raw_responses``,
``archive_received_bytes``,                                                       ``raw_bodies``
``archive_stored_bytes``
``revisions_total``                            counter    table                   the two revision tables
=============================================  =========  ======================  ==========================

Counters count from the first run the database holds; gauges say what it holds now (the archive, which
retention prunes) or today (the quota). Durations come from ``runs.started_at``/``finished_at``: whole
seconds on SQLite, which stores times to the second.

Threat model: the surface may be reachable from other machines (``web.host``), and a label is text an
operator's tools store and show. So no label value is read from text an API or an error produced: they are
our own job, status, table, operation and error-class names, and each one is checked (:func:`_label`: a
short identifier, unchanged by the redactor) or shown as ``other``. Error messages are never labels. The
whole text then goes through the redactor, in case a name became a secret after it was checked.

A scrape is cheap (see :class:`_IdLog`, :class:`_TailCount`, :class:`_Archive`): it never scans
``air_readings`` nor any table's history. What it knows of the append-only tables (``runs``,
``raw_responses``, ``rejects``, the revision tables: integer ids, in insertion order) is cached per engine;
each scrape reads the rows added since the last one, through the primary key, and folds each finished run's
``details`` once. A run still ``running`` is read again until it finishes. The first scrape of a process
reads the history once (measured: 4–6 s for a year, 18,250 runs and 80,000 archived responses, on the busy
2-core development machine), in chunks, so a scrape cut by ``web.request_timeout`` leaves the next one less
to do. The verdicts of :func:`collect_status` (freshness, the 24-hour completeness) are asked again only
when a run finished, or when a job's last success passes its freshness limit: ``collect_status`` reads
whole tables (~230 ms on a year: ``table_counts``' ``count(*)`` of 5.9 M readings, ``last_runs`` over every
run); any other scrape takes ~10 ms there.
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import Table, case, func, inspect, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline import clock
from pipeline.config import Settings
from pipeline.errors import ConfigError, ErrorClass
from pipeline.jobs import JOBS, Source
from pipeline.jobs.context import make_ledger
from pipeline.load.db import display_url, error_message
from pipeline.load.quota import Usage
from pipeline.load.tables import air_reading_revisions, movie_revisions, raw_bodies, raw_responses, rejects, runs
from pipeline.load.writer import Writer
from pipeline.redaction import redact
from pipeline.status import StatusReport, collect_status
from pipeline.web.app import context

#: run durations: from half a second (a TMDB list within its TTL) to an hour (a nationwide backfill)
DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
#: a row seen this long ago (or written this long ago) is settled: no row with a smaller id can still appear.
#: PostgreSQL hands out ids when a row is inserted, so a transaction that commits late shows a smaller id
#: after larger ones; every writer of these tables commits within seconds.
SETTLE_SECONDS = 60.0
#: ids per bucket of the archive's totals: what a prune removes is subtracted a bucket at a time
ARCHIVE_BUCKET = 1024
#: ids per ``IN (...)`` when reading the details of finished runs
IN_CHUNK = 500
#: archived responses read per query
ARCHIVE_CHUNK = 5000
#: statuses of rows that did not run (yet): no duration
NOT_RUN = frozenset({"running", "missed", "skipped"})
#: states of a station-hour in the completeness ledger, as ``pipeline status --json`` names them
COMPLETENESS_STATES = ("received", "flagged", "not_published", "missing")

SOURCES: frozenset[str] = frozenset(get_args(Source))
ERROR_CLASSES: frozenset[str] = frozenset(get_args(ErrorClass))
SOURCE_OF_JOB: dict[str, str] = {name: job.source for name, job in JOBS.items()}
REVISION_TABLES: tuple[Table, ...] = (air_reading_revisions, movie_revisions)
ARCHIVE_TABLES = frozenset({raw_responses.name, raw_bodies.name})
TABLES = frozenset({runs.name, rejects.name, *ARCHIVE_TABLES, *(t.name for t in REVISION_TABLES)})

_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: the verdicts of :func:`_label`: the same few names come back in every run's details
_LABELS: dict[str, str] = {}


def _label(value: object) -> str:
    """A label value: one of our own names (a short identifier the redactor leaves alone), else ``other``."""
    if not isinstance(value, str):
        return "other"
    found = _LABELS.get(value)
    if found is None:
        if len(_LABELS) > 4096:  # names are few; anything else is not worth keeping
            _LABELS.clear()
        found = _LABELS[value] = value if _LABEL.fullmatch(value) and redact(value) == value else "other"
    return found


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _counts(value: object) -> Iterable[tuple[str, int]]:
    """The ``{name: n}`` maps of ``runs.details`` (requests, failures, rows), tolerating anything else."""
    if isinstance(value, Mapping):
        for key, n in value.items():
            if _count(n):
                yield _label(key), _count(n)


# --- the append-only tables, read incrementally -----------------------------------------------------------


@dataclass(slots=True)
class _IdLog:
    """Which rows of an append-only table (integer ids) have been folded into the totals, each exactly once.

    Every row up to ``floor`` is folded, except those in ``pending`` (runs still running when the floor
    passed them); past the floor, ``folded`` says which are. A scrape reads the rows past the floor and the
    pending ones. The floor passes a row once it is *settled*: seen, or written, :data:`SETTLE_SECONDS`
    ago, so a row that shows up late below larger ids (PostgreSQL) is still folded.
    """

    floor: int = 0
    seen: dict[int, float] = field(default_factory=dict)  # rows past the floor: when first seen
    folded: set[int] = field(default_factory=set)  # rows past the floor already folded
    pending: set[int] = field(default_factory=set)  # rows up to the floor not folded yet

    def is_new(self, row_id: int) -> bool:
        return row_id in self.pending or (row_id > self.floor and row_id not in self.folded)

    def fold(self, row_id: int) -> None:
        if row_id in self.pending:
            self.pending.discard(row_id)
        else:
            self.folded.add(row_id)

    def settle(self, visible: Iterable[tuple[int, bool]], mono: float) -> bool:
        """Move the floor over the settled rows of ``visible`` (rows past it, in id order, and whether they
        were written :data:`SETTLE_SECONDS` ago, as the database compared); ``False`` when it stopped at one
        that is not settled yet."""
        floor = self.floor
        rows = [(row_id, bool(old)) for row_id, old in visible if row_id > floor]
        for row_id, _old in rows:
            self.seen.setdefault(row_id, mono)
        settled = True
        for row_id, old in rows:
            if not old and mono - self.seen[row_id] < SETTLE_SECONDS:
                settled = False
                break
            if row_id not in self.folded:
                self.pending.add(row_id)
            floor = row_id
        if floor != self.floor:
            self.floor = floor
            self.seen = {k: v for k, v in self.seen.items() if k > floor}
            self.folded = {k for k in self.folded if k > floor}
        return settled

    def upto(self) -> int:
        """The largest id folded."""
        return max([self.floor, *self.folded])


@dataclass(slots=True)
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))  # the last: +Inf
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1  # the first bound >= seconds
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        bounds = [*(repr(b) for b in DURATION_BUCKETS), "+Inf"]  # "0.5", "1.0", … as prometheus_client
        running, result = 0, []
        for bound, n in zip(bounds, self.buckets, strict=True):
            running += n
            result.append((bound, float(running)))
        return result


@dataclass(slots=True)
class _Runs:
    """The totals of every finished run, each run's row and ``details`` folded once."""

    log: _IdLog = field(default_factory=_IdLog)
    parsed: int = 0  # runs folded: each finished run once, however many scrapes saw it
    running: dict[int, str] = field(default_factory=dict)  # id → job of the rows still running
    by_status: Counter[tuple[str, str]] = field(default_factory=Counter)
    job_outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    durations: dict[str, _Histogram] = field(default_factory=dict)
    rows: Counter[str] = field(default_factory=Counter)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)

    def fold(self, row: Any) -> None:
        job, status = _label(row.job), _label(row.status)
        self.by_status[(job, status)] += 1
        if row.status not in NOT_RUN and row.finished_at is not None:
            seconds = max(0.0, (row.finished_at - row.started_at).total_seconds())
            self.durations.setdefault(job, _Histogram()).observe(seconds)
        try:
            details = orjson.loads(row.details) if row.details else {}
        except orjson.JSONDecodeError:
            details = {}
        self._fold_details(row.job, status, details if isinstance(details, dict) else {})
        self.parsed += 1
        self.log.fold(row.id)

    def _fold_details(self, job: str, status: str, details: dict[str, Any]) -> None:
        """Three shapes (see :mod:`pipeline.runner`, :mod:`pipeline.backfill.chunks`, :mod:`pipeline.replay`):
        ``{job: {status, rows, requests, failures, retries, …}}`` for the scheduled jobs (several in a cycle),
        one flat record ``{backfill: "source:…", requests, failures, retries, …}`` for a backfill, and
        ``{replay: {rows, …}}`` for a replay."""
        backfill = details.get("backfill")
        if isinstance(backfill, str):
            prefix = backfill.split(":", 1)[0]  # the backfill's id: source:from..to:selection
            if prefix in SOURCES:
                self._fold_requests(prefix, details)
            return
        for name, entry in details.items():
            if not isinstance(entry, dict):
                continue
            source = SOURCE_OF_JOB.get(name)
            if source is not None:
                self.job_outcomes[(name, _label(entry.get("status")))] += 1
                self._fold_requests(source, entry)
            for table, n in _counts(entry.get("rows")):
                self.rows[table] += n
        if job in SOURCE_OF_JOB and not isinstance(details.get(job), dict):
            self.job_outcomes[(job, status)] += 1  # it ended before it wrote details (abandoned, missed)

    def _fold_requests(self, source: str, entry: Mapping[str, Any]) -> None:
        for operation, n in _counts(entry.get("requests")):
            self.requests[(source, operation)] += n
        for error_class, n in _counts(entry.get("failures")):
            self.failures[(source, error_class if error_class in ERROR_CLASSES else "other")] += n
        self.retries[source] += _count(entry.get("retries"))


async def _update_runs(conn: AsyncConnection, state: _Runs, mono: float, cutoff: datetime) -> None:
    """Fold the runs that finished since the last scrape, ``IN_CHUNK`` at a time: each chunk is folded
    without an await, so a scrape cancelled half-way (``web.request_timeout``) keeps what it folded."""
    r = runs.c
    window = r.id > state.log.floor
    if state.log.pending:
        window = or_(window, r.id.in_(sorted(state.log.pending)))
    # a run's row is written as it starts, a missed window's as it finishes (its start is the scheduled time)
    old = case((r.finished_at.is_(None), r.started_at < cutoff), else_=r.finished_at < cutoff).label("old")
    visible = (await conn.execute(select(r.id, r.job, r.status, old).where(window).order_by(r.id))).all()
    new = [row.id for row in visible if row.status != "running" and state.log.is_new(row.id)]
    for start in range(0, len(new), IN_CHUNK):
        query = select(r.id, r.job, r.status, r.started_at, r.finished_at, r.details).where(
            r.id.in_(new[start : start + IN_CHUNK])
        )
        for row in sorted((await conn.execute(query)).all(), key=lambda row: int(row.id)):
            state.fold(row)
    state.running = {row.id: _label(row.job) for row in visible if row.status == "running"}
    state.log.settle(((row.id, row.old) for row in visible), mono)


@dataclass(slots=True)
class _TailCount:
    """``count(*)`` of an append-only table (grouped by one column), without counting its history each time.

    Rows up to ``settled_id`` are counted once in ``settled``; each scrape counts only the rows past it (the
    last minute's). The largest id seen at a scrape becomes settled :data:`SETTLE_SECONDS` later, when the
    slice up to it is counted one last time. The first scrape settles at once what was written longer ago
    than that (the newest such row, found walking the primary key down from the top), so a year of
    revisions is counted once, not at every scrape of the first minute.
    """

    settled_id: int = 0
    settled: Counter[str] = field(default_factory=Counter)
    tail: Counter[str] = field(default_factory=Counter)
    marks: list[tuple[float, int]] = field(default_factory=list)  # (when, the largest id then)

    def total(self) -> Counter[str]:
        return self.settled + self.tail


@dataclass(frozen=True, slots=True)
class _Counted:
    """A table counted by :class:`_TailCount`: its time of writing, and the column its counts are split by."""

    table: Table
    written: str
    group: str | None = None


COUNTED = (
    _Counted(rejects, "created_at", "source"),
    *(_Counted(table, "revised_at") for table in REVISION_TABLES),
)


async def _update_count(
    conn: AsyncConnection, counted: _Counted, state: _TailCount, top: int | None, mono: float, cutoff: datetime
) -> None:
    table = counted.table
    due = [mark for seen, mark in state.marks if mono - seen >= SETTLE_SECONDS]
    target = max([state.settled_id, *due])
    if top is not None and not state.marks and not state.settled_id:
        old = select(table.c.id).where(table.c[counted.written] < cutoff)
        target = max(target, (await conn.execute(old.order_by(table.c.id.desc()).limit(1))).scalar() or 0)
    key = table.c[counted.group] if counted.group else None

    async def count(low: int, high: int | None) -> Counter[str]:
        if top is None or top <= low or (high is not None and high <= low):
            return Counter()
        where = [table.c.id > low] + ([table.c.id <= high] if high is not None else [])
        if key is None:
            return Counter({"": int((await conn.execute(select(func.count()).where(*where))).scalar_one())})
        rows = (await conn.execute(select(key, func.count()).where(*where).group_by(key))).all()
        return Counter({_label(name): int(n) for name, n in rows})

    settling, tail = await count(state.settled_id, target), await count(target, None)
    state.settled += settling
    state.settled_id = target
    state.tail = tail
    state.marks = [(seen, mark) for seen, mark in state.marks if mark > target]
    if top is not None and top > target:
        state.marks.append((mono, top))


@dataclass(slots=True)
class _Bucket:
    responses: int = 0
    received: int = 0  # bytes of the responses' bodies as received
    bodies: int = 0  # distinct bodies whose newest response is in this bucket
    stored: int = 0  # their bytes as stored (compressed)


@dataclass(slots=True)
class _Archive:
    """What the raw archive holds, kept per bucket of :data:`ARCHIVE_BUCKET` response ids.

    A body counts in the bucket of its newest response: a prune deletes the oldest responses, then the
    bodies no response refers to any more — exactly the bodies whose newest response it deleted. So a prune
    (the smallest id grew) drops the buckets below the new smallest id and counts the two at the boundary
    again, ~2,000 rows through the primary key, instead of summing the whole archive.
    """

    log: _IdLog = field(default_factory=_IdLog)
    low: int | None = None  # the smallest response id at the last scrape
    buckets: dict[int, _Bucket] = field(default_factory=dict)

    def totals(self) -> _Bucket:
        total = _Bucket()
        for bucket in self.buckets.values():
            total.responses += bucket.responses
            total.received += bucket.received
            total.bodies += bucket.bodies
            total.stored += bucket.stored
        return total

    def fold(self, row: Any, prev: int | None) -> None:
        """One response; ``prev``: the newest response before it with the same body."""
        bucket = self.buckets.setdefault(row.id // ARCHIVE_BUCKET, _Bucket())
        bucket.responses += 1
        bucket.received += int(row.size)
        before = self.buckets.get(prev // ARCHIVE_BUCKET) if prev is not None else None
        if before is not None:  # the body moves from its previous response's bucket
            before.bodies -= 1
            before.stored -= int(row.stored_size)
        bucket.bodies += 1
        bucket.stored += int(row.stored_size)
        self.log.fold(row.id)


async def _newest_with_body(conn: AsyncConnection, hashes: Iterable[str], below: int) -> dict[str, int]:
    """Per body hash, its newest response with an id under ``below``: one grouped query per ``IN_CHUNK``
    hashes, not a subquery per row (PostgreSQL's index on ``body_hash`` does not order a body's responses by
    id, so a per-row ``max`` reads all the responses of a body received thousands of times, for each)."""
    r = raw_responses.c
    found: dict[str, int] = {}
    wanted = sorted(set(hashes))
    for start in range(0, len(wanted), IN_CHUNK):
        query = (
            select(r.body_hash, func.max(r.id))
            .where(r.body_hash.in_(wanted[start : start + IN_CHUNK]), r.id < below)
            .group_by(r.body_hash)
        )
        found.update({digest: int(newest) for digest, newest in (await conn.execute(query)).all()})
    return found


async def _update_archive(
    conn: AsyncConnection, state: _Archive, low: int | None, mono: float, cutoff: datetime
) -> None:
    """After a prune, count the boundary buckets again; then fold the new responses, ``ARCHIVE_CHUNK`` at a
    time (each chunk without an await: a cancelled scrape keeps what it folded)."""
    if low is None:  # empty (SQLite then hands out ids from 1 again)
        state.log, state.low, state.buckets = _IdLog(), None, {}
        return
    r, b = raw_responses.c, raw_bodies.c
    columns = (
        r.id,
        r.body_hash,
        (r.fetched_at < cutoff).label("old"),
        func.coalesce(b.size, 0).label("size"),
        func.coalesce(b.stored_size, 0).label("stored_size"),
    )
    responses = select(*columns).join_from(raw_responses, raw_bodies, b.hash == r.body_hash, isouter=True)
    if state.low is not None and low > state.low and state.buckets:
        upto = state.log.upto()
        first = low // ARCHIVE_BUCKET
        recounted: dict[int, _Bucket] = {}
        for number in (first, first + 1):
            if number not in state.buckets:
                continue
            span = (r.id >= number * ARCHIVE_BUCKET, r.id < (number + 1) * ARCHIVE_BUCKET, r.id <= upto)
            held = [row for row in (await conn.execute(responses.where(*span))).all() if not state.log.is_new(row.id)]
            newest = await _newest_with_body(conn, (row.body_hash for row in held), upto + 1)
            counted = recounted[number] = _Bucket()
            for row in held:  # the responses folded so far (a response not folded yet is folded below)
                counted.responses += 1
                counted.received += int(row.size)
                if newest.get(row.body_hash) == row.id:
                    counted.bodies += 1
                    counted.stored += int(row.stored_size)
        state.buckets = {k: v for k, v in state.buckets.items() if k >= first}
        state.buckets.update(recounted)
    state.low = low
    query = responses.order_by(r.id).limit(ARCHIVE_CHUNK)
    after, settling = state.log.floor, True
    while True:
        rows = (await conn.execute(query.where(r.id > after))).all()
        new = [row for row in rows if state.log.is_new(row.id)]
        previous = await _newest_with_body(conn, (row.body_hash for row in new), rows[0].id) if new else {}
        for row in rows:  # in id order: a body met twice in the chunk moves to the later response
            if state.log.is_new(row.id):
                state.fold(row, previous.get(row.body_hash))
            previous[row.body_hash] = row.id
        if settling:
            settling = state.log.settle(((row.id, row.old) for row in rows), mono)
        if len(rows) < ARCHIVE_CHUNK:
            return
        after = rows[-1].id


# --- the cache of one engine ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Status:
    """A :func:`collect_status` report, and when it must be asked again."""

    report: StatusReport
    settings: Settings
    parsed: int  # runs folded when it was asked: a finished run can change its verdicts
    at: datetime

    def outdated(self, settings: Settings, parsed: int, now: datetime) -> bool:
        if settings is not self.settings or parsed != self.parsed or now < self.at:
            return True
        # the verdict stays collect_status's: this only notices that one of them would change now
        return any(
            job.fresh and job.last_success_at is not None
            and (now - job.last_success_at).total_seconds() > job.freshness_seconds
            for job in self.report.jobs
        )  # fmt: skip


@dataclass(slots=True)
class _Cache:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tables: frozenset[str] = frozenset()
    runs: _Runs = field(default_factory=_Runs)
    archive: _Archive = field(default_factory=_Archive)
    rejects: _TailCount = field(default_factory=_TailCount)
    revisions: dict[str, _TailCount] = field(default_factory=dict)
    status: _Status | None = None


#: per engine (the web surface keeps one open): dropped with it
_CACHES: weakref.WeakKeyDictionary[AsyncEngine, _Cache] = weakref.WeakKeyDictionary()


def cache_for(engine: AsyncEngine) -> _Cache:
    """The cache of ``engine`` (tests look at how many runs it parsed)."""
    cache = _CACHES.get(engine)
    if cache is None:
        cache = _CACHES[engine] = _Cache()
    return cache


async def _tops(conn: AsyncConnection, tables: frozenset[str]) -> dict[str, int | None]:
    """The largest id of each table (and the smallest of ``raw_responses``) in one round trip; each is one
    primary-key lookup (SQLite optimises a lone ``min``/``max`` per subquery)."""
    present = [t for t in (runs, rejects, raw_responses, *REVISION_TABLES) if t.name in tables]
    columns = [select(func.max(t.c.id)).scalar_subquery().label(t.name) for t in present]
    if raw_responses.name in tables:
        columns.append(select(func.min(raw_responses.c.id)).scalar_subquery().label("archive_low"))
    row = (await conn.execute(select(*columns))).one()
    return dict(row._mapping)


def _reset_if_replaced(cache: _Cache, tops: Mapping[str, int | None]) -> None:
    """A table whose largest id went below what was folded was emptied or replaced (a restored backup):
    start its totals again."""
    if (tops[runs.name] or 0) < cache.runs.log.floor:
        cache.runs = _Runs()
    if raw_responses.name in tops and (tops[raw_responses.name] or 0) < cache.archive.log.floor:
        cache.archive = _Archive()
    if rejects.name in tops and (tops[rejects.name] or 0) < cache.rejects.settled_id:
        cache.rejects = _TailCount()
    for name, state in list(cache.revisions.items()):
        if (tops.get(name) or 0) < state.settled_id:
            cache.revisions[name] = _TailCount()


async def _refresh(settings: Settings, engine: AsyncEngine, cache: _Cache, now: datetime) -> list[Usage]:
    """Bring the cache up to date with the database; returns today's quota use."""
    mono, cutoff = time.monotonic(), datetime.now(UTC) - timedelta(seconds=SETTLE_SECONDS)  # settled: written before
    shown = display_url(settings.database.url)
    try:
        async with engine.connect() as conn:
            if not cache.tables >= TABLES:  # an older schema: look again until every table is there
                cache.tables = frozenset(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            if runs.name not in cache.tables:
                raise ConfigError(f"database.url: {shown} has no pipeline tables; run 'pipeline migrate'")
            tops = await _tops(conn, cache.tables)
            _reset_if_replaced(cache, tops)
            await _update_runs(conn, cache.runs, mono, cutoff)
            if cache.tables >= ARCHIVE_TABLES:
                await _update_archive(conn, cache.archive, tops["archive_low"], mono, cutoff)
            for counted in COUNTED:
                name = counted.table.name
                if name in cache.tables:
                    state = cache.rejects if name == rejects.name else cache.revisions.setdefault(name, _TailCount())
                    await _update_count(conn, counted, state, tops[name], mono, cutoff)
        if not settings.sources.airkorea.enabled:
            return []
        return await make_ledger(settings, Writer(engine), lambda: now).usage()
    except (SQLAlchemyError, OSError) as exc:  # asyncpg raises connection failures unwrapped
        raise ConfigError(f"database.url: cannot read {shown}: {error_message(exc)}") from None


# --- the families -------------------------------------------------------------------------------------------


def _counter(name: str, documentation: str, labels: Sequence[str], values: Mapping[Any, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(key if isinstance(key, tuple) else (key,) if labels else (), value)
    return family


def _gauge(
    name: str, documentation: str, labels: Sequence[str] = (), values: Mapping[Any, float] | None = None
) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted((values or {}).items()):
        family.add_metric(key if isinstance(key, tuple) else (key,) if labels else (), value)
    return family


def _run_families(state: _Runs) -> list[Metric]:
    histogram = HistogramMetricFamily(
        "pipeline_run_duration_seconds",
        "Seconds from start to finish of runs that ran (missed and skipped windows excluded), by what ran.",
        labels=["job"],
    )
    for job, observed in sorted(state.durations.items()):
        histogram.add_metric([job], observed.cumulative(), observed.total)
    return [
        _counter(
            "pipeline_runs_total",
            "Finished runs (rows of runs) by what ran (cycle, a job, backfill_*, replay) and how it ended.",
            ["job", "status"],
            state.by_status,
        ),
        _gauge(
            "pipeline_runs_in_progress",
            "Runs recorded as running, by what runs.",
            ["job"],
            Counter(state.running.values()),
        ),
        _counter(
            "pipeline_job_runs_total",
            "Outcomes of the scheduled jobs: one per job per run (a cycle runs several).",
            ["job", "status"],
            state.job_outcomes,
        ),
        histogram,
        _counter(
            "pipeline_rows_written_total",
            "Rows written to each table by the jobs and replays (backfills record no split per table).",
            ["table"],
            state.rows,
        ),
        _counter(
            "pipeline_requests_total",
            "HTTP requests sent (every attempt, retries included) by source and API operation.",
            ["source", "operation"],
            state.requests,
        ),
        _counter(
            "pipeline_request_failures_total",
            "Failed request attempts by source and error class (transient, auth, quota, not_found, bad_request).",
            ["source", "error_class"],
            state.failures,
        ),
        _counter(
            "pipeline_retries_total",
            "Requests retried after a transient failure, by source.",
            ["source"],
            state.retries,
        ),
    ]


def _quota_families(quota: Sequence[Usage]) -> list[Metric]:
    return [
        _gauge(
            "pipeline_airkorea_quota_calls",
            "data.go.kr calls counted today (KST day), per operation.",
            ["operation"],
            {_label(u.operation): u.calls for u in quota},
        ),
        _gauge(
            "pipeline_airkorea_quota_limit",
            "data.go.kr daily quota per operation.",
            ["operation"],
            {_label(u.operation): u.limit for u in quota},
        ),
        _gauge(
            "pipeline_airkorea_quota_left",
            "data.go.kr calls left today (KST day), per operation (0 once exhausted).",
            ["operation"],
            {_label(u.operation): u.left for u in quota},
        ),
        _gauge(
            "pipeline_airkorea_quota_exhausted",
            "1 when data.go.kr answered code 22 (quota exceeded) today for the operation.",
            ["operation"],
            {_label(u.operation): int(u.exhausted) for u in quota},
        ),
    ]


def _status_families(report: StatusReport, now: datetime) -> list[Metric]:
    jobs = report.jobs
    success = {job.job: job.last_success_at for job in jobs if job.last_success_at is not None}
    counts = report.completeness
    ratio = counts.completeness if counts is not None else None
    states = (
        dict(
            zip(COMPLETENESS_STATES, (counts.received, counts.flagged, counts.unpublished, counts.missing), strict=True)
        )
        if counts is not None
        else {}
    )
    return [
        _gauge(
            "pipeline_job_last_success_age_seconds",
            "Seconds since the start of each job's last successful run (as pipeline status).",
            ["job"],
            {job: (now - at).total_seconds() for job, at in success.items()},
        ),
        _gauge(
            "pipeline_job_last_success_timestamp_seconds",
            "Unix time of the start of each job's last successful run.",
            ["job"],
            {job: at.timestamp() for job, at in success.items()},
        ),
        _gauge(
            "pipeline_job_freshness_limit_seconds",
            "How old a job's last success may be before it counts as stale.",
            ["job"],
            {job.job: job.freshness_seconds for job in jobs},
        ),
        _gauge(
            "pipeline_job_fresh",
            "1 when an enabled job succeeded within its freshness limit (pipeline status: fresh), 0 when STALE.",
            ["job"],
            {job.job: int(job.fresh) for job in jobs if job.enabled},
        ),
        _gauge(
            "pipeline_job_enabled", "1 when the job is enabled.", ["job"], {job.job: int(job.enabled) for job in jobs}
        ),
        _gauge(
            "pipeline_healthy",
            "1 when every enabled job is fresh (pipeline status exits 0, /healthz answers 200).",
            values={(): int(report.healthy)},
        ),
        _gauge(
            "pipeline_completeness_24h_ratio",
            "Received or flagged station-hours over those published, in the 24 hours up to the newest published.",
            values={(): ratio} if ratio is not None else {},
        ),
        _gauge(
            "pipeline_completeness_24h_station_hours",
            "Expected station-hours of the last 24 published hours by state.",
            ["state"],
            states,
        ),
        _gauge(
            "pipeline_completeness_24h_expected_station_hours",
            "Station-hours expected in the last 24 published hours.",
            values={(): counts.expected} if counts is not None else {},
        ),
        _gauge(
            "pipeline_newest_published_hour_timestamp_seconds",
            "Unix time of the end of the newest hour AirKorea was seen to publish.",
            values={(): report.newest_hour.timestamp()} if report.newest_hour is not None else {},
        ),
    ]


def _store_families(cache: _Cache) -> list[Metric]:
    held = cache.archive.totals() if cache.tables >= ARCHIVE_TABLES else None
    archive = {
        "pipeline_archive_responses": (
            "Responses held in the raw archive.",
            held.responses if held is not None else None,
        ),
        "pipeline_archive_bodies": (
            "Distinct bodies held in the raw archive.",
            held.bodies if held is not None else None,
        ),
        "pipeline_archive_received_bytes": (
            "Bytes of the archived responses' bodies as received.",
            held.received if held is not None else None,
        ),
        "pipeline_archive_stored_bytes": (
            "Bytes the archive's bodies take as stored (compressed, each once).",
            held.stored if held is not None else None,
        ),
    }
    revisions = {name: state.total()[""] for name, state in cache.revisions.items()}
    return [
        *(
            _gauge(name, documentation, values={(): value} if value is not None else {})
            for name, (documentation, value) in archive.items()
        ),
        _counter(
            "pipeline_rows_rejected_total",
            "Records that could not be normalised (rows of rejects), by source.",
            ["source"],
            cache.rejects.total() if rejects.name in cache.tables else {},
        ),
        _counter(
            "pipeline_revisions_total",
            "Changes of stored values recorded by the revision triggers, by revision table.",
            ["table"],
            revisions,
        ),
    ]


class _Snapshot:
    """The collector: yields the families built from one snapshot of the database."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families

    def describe(self) -> Iterable[Metric]:  # the registry checks the names are unique
        return self.families


async def render_metrics(settings: Settings, engine: AsyncEngine, now: datetime | None = None) -> bytes:
    """The exposition text of ``engine``'s database (read-only; see the module docstring)."""
    now = now or clock.now()
    cache = cache_for(engine)
    async with cache.lock:  # one scrape at a time updates the cache
        quota = await _refresh(settings, engine, cache, now)
        if cache.status is None or cache.status.outdated(settings, cache.runs.parsed, now):
            report = await collect_status(settings, now, engine, totals=False)
            cache.status = _Status(report, settings, cache.runs.parsed, now)
        families = [
            *_run_families(cache.runs),
            *_quota_families(quota),
            *_status_families(cache.status.report, now),
            *_store_families(cache),
        ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    text = generate_latest(registry).decode()
    return redact(text).encode()  # the last line of defence: no secret by value, whatever a label held


async def handle(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await render_metrics(ctx.settings, ctx.engine)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
