"""What the commands print: summaries of a run, a backfill and the status, and some SQL to try.

Text from the APIs never reaches these lines unfiltered: error messages are built from redacted, printable
text (:func:`pipeline.redaction.printable`), and the rest are numbers and names of our own.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING

import click

from pipeline.config import Settings
from pipeline.load.db import display_url, sqlite_path
from pipeline.redaction import printable
from pipeline.transform.common import KST

if TYPE_CHECKING:
    from pipeline.archive_report import ArchiveReport
    from pipeline.backfill import BackfillReport, DryRun
    from pipeline.gaps import GapsReport
    from pipeline.replay import ReplayReport
    from pipeline.runner import RunReport
    from pipeline.status import StatusReport

TRY_QUERIES = (
    ("latest PM2.5 by province",
     "SELECT sido_name, round(avg(pm25), 1) AS pm25, count(pm25) AS stations FROM air_latest "
     "GROUP BY sido_name ORDER BY pm25 DESC;"),
    ("종로구, last 24 hours (KST)",
     "SELECT measured_at_kst, pm10, pm25, pm10_flag FROM air_readings_kst WHERE station_name = '종로구' "
     "ORDER BY measured_at DESC LIMIT 24;"),
    ("most popular movies now playing",
     "SELECT m.title, s.popularity, m.release_date, m.runtime FROM movie_snapshots s JOIN movies m USING (tmdb_id) "
     "WHERE s.run_id = (SELECT max(run_id) FROM movie_snapshots) ORDER BY s.popularity DESC LIMIT 10;"),
    ("why records were rejected", "SELECT source, reason, count(*) FROM rejects GROUP BY 1, 2 ORDER BY 3 DESC;"),
)  # fmt: skip  # a table of (title, query) pairs


def print_backfill(report: BackfillReport | DryRun) -> int:
    from pipeline.backfill import DryRun

    if isinstance(report, DryRun):
        click.echo("\n".join(report.lines))
        return 0
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(report.stages.items()))
    click.echo(f"backfill {report.backfill_id}: {report.status}")
    click.echo(
        f"  chunks: {report.chunks_done} done now, {report.chunks_skipped} done before, "
        f"{report.chunks_failed} failed, {report.chunks_pending} pending (of {report.chunks_total})"
    )
    click.echo(
        f"  rows: {report.rows_fetched:,} fetched, {report.rows_upserted:,} upserted, "
        f"{report.rows_out_of_range:,} outside the range, {report.rows_rejected:,} rejected"
    )
    click.echo(
        f"  {report.seconds:.1f}s, {report.rows_per_second:,.0f} rows/s, {report.stats.total_requests} requests, "
        f"peak RSS {report.peak_rss_mb:.0f} MB (+ worker {report.worker_peak_rss_mb:.0f} MB)"
    )
    if stages:
        click.echo(f"  stages (summed over concurrent chunks): {stages}")
    for line in ([report.message] if report.message else []) + report.errors[:5]:
        click.echo(f"  - {line}")
    return 0 if report.status == "done" else 1


def print_status(report: StatusReport) -> None:
    daemon = f"running (pid {report.daemon_pid})" if report.daemon_pid else "not running"
    click.echo(f"database {report.database}; daemon {daemon}")
    header = f"{'job':<18} {'last run':<26} {'last success':<20} {'age':>8} {'limit':>8}  {'state':<8} next run"
    click.echo(header)
    for job in report.jobs:
        last = f"#{job.last_run_id} {job.last_status} {_when(job.last_started_at)}" if job.last_run_id else "never"
        state = job.state
        if job.running:
            state += "+running"
        click.echo(
            f"{job.job:<18} {last:<26} {_when(job.last_success_at):<20} {_age(job.age_seconds):>8} "
            f"{_age(job.freshness_seconds):>8}  {state:<8} {_when(job.next_run_at)}"
        )
    for run in report.others:  # backfills and replays: shown, not part of the health verdict
        last = f"#{run.last_run_id} {run.last_status} {_when(run.last_started_at)}" if run.last_run_id else "never"
        click.echo(f"{run.name:<18} {last}" + ("  (running)" if run.running else ""))
    click.echo("rows: " + ", ".join(f"{table} {count}" for table, count in report.totals.items()))
    if report.completeness is not None and report.newest_hour is not None:
        done = report.completeness
        click.echo(
            f"completeness, the 24 hours to {_when(report.newest_hour)}: {_percent(done.completeness)} of "
            f"{done.published:,} published station-hours ({done.missing:,} missing, {done.flagged:,} flagged; "
            "see pipeline gaps)"
        )
    for usage in report.quota:
        state = "exhausted (code 22)" if usage.exhausted else f"{usage.left} left"
        click.echo(f"quota {usage.operation} {usage.day} KST: {usage.calls} of {usage.limit} calls used, {state}")


def print_replay(report: ReplayReport) -> int:
    echo = click.echo
    bodies = ", ".join(f"{count} {name}" for name, count in sorted(report.by_operation.items())) or "none"
    if report.dry_run:
        echo(f"replay (dry run): {sum(report.by_operation.values())} archived bodies ({bodies}), "
             f"{report.items:,} records; {report.skipped} would be skipped (they did not parse)")  # fmt: skip
        return 0
    rows = ", ".join(f"{n:,} {table}" for table, n in sorted(report.rows.items())) or "nothing"
    echo(f"replay run {report.run_id}: {report.status} in {report.seconds:.1f}s")
    echo(f"  {report.bodies} bodies of {report.runs} runs ({bodies}); {report.skipped} skipped (they did not parse)")
    echo(f"  wrote {rows}; rejected {report.rejected}; {report.rows_per_second:,.0f} readings/s")
    for line in report.errors[:5]:
        echo(f"  - {line}")
    return 0 if report.status == "success" else 1


def print_archive(report: ArchiveReport) -> None:
    echo = click.echo
    state = "on" if report.enabled else "off (archive.enabled: false)"
    keep = f"kept {_age(report.keep_seconds)}" if report.keep_seconds else "kept forever"
    echo(f"raw archive {state}, {keep}")
    if report.days:
        echo(f"{'KST day':<10} {'source':<8} {'operation':<32} {'responses':>9} {'bodies':>7} {'received':>10} "
             f"{'stored':>10}")  # fmt: skip
    for day in report.days:
        echo(
            f"{day.kst_date:%Y-%m-%d} {day.source:<8} {day.operation:<32} {day.responses:>9,} {day.bodies:>7,} "
            f"{_bytes(day.received_bytes):>10} {_bytes(day.stored_bytes):>10}"
        )
    ratio = f"{report.ratio:.1f}× smaller" if report.ratio else "-"
    echo(
        f"total: {sum(d.responses for d in report.days):,} responses, {sum(d.bodies for d in report.days):,} "
        f"bodies; {_bytes(report.received_bytes)} received, {_bytes(report.stored_bytes)} stored ({ratio}); "
        f"oldest {_when(report.oldest)}, newest {_when(report.newest)}"
    )
    if report.prune_before is not None:
        echo(f"next prune: {report.prune_responses:,} responses fetched before {_when(report.prune_before)}")


def _bytes(count: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def print_gaps(report: GapsReport) -> None:
    """One line per station-day listed, then the totals; station names are API text, shown printable."""
    echo = click.echo
    if report.days:
        echo(f"{'station':<14} {'province':<8} {'KST day':<10} {'exp':>4} {'recv':>4} {'flag':>4} {'miss':>4} "
             f"{'complete':>8}  missing hours")  # fmt: skip
    for day in report.days:
        complete = day.counts.completeness
        hours = " ".join(day.labels)
        if day.counts.missing and not day.repairable:
            hours += " (past the window)"
        elif day.repairable < day.counts.missing:
            hours += f" ({day.counts.missing - day.repairable} past the window)"
        where = f"{_pad(printable(day.station_name), 14)} {_pad(printable(day.sido_name or '-'), 8)}"
        echo(
            f"{where} {day.kst_date:%Y-%m-%d} "
            f"{day.counts.expected:>4} {day.counts.received:>4} {day.counts.flagged:>4} {day.counts.missing:>4} "
            f"{_percent(complete):>8}  {hours}"
        )
    totals = report.totals
    echo(
        f"total: {report.stations} stations, {report.station_days} station-days; {totals.expected:,} hours expected, "
        f"{totals.received:,} received, {totals.flagged:,} flagged, {totals.unpublished:,} never published, "
        f"{totals.missing:,} missing; completeness {_percent(totals.completeness)}"
    )
    window = f" (the API serves hours since {_when(report.oldest_repairable)})" if report.oldest_repairable else ""
    if report.ok:
        echo(f"nothing repairable is missing{window}")
    else:
        echo(f"{report.repairable:,} missing hours can still be fetched{window}: the station job heals them")


def _percent(share: float | None) -> str:
    """Rounded down: a share short of whole never shows as 100.0%."""
    return f"{math.floor(1000 * share) / 10:.1f}%" if share is not None else "-"


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (Hangul takes two)."""
    shown = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    return text + " " * max(width - shown, 0)


def _when(value: datetime | None) -> str:
    return value.astimezone(KST).strftime("%m-%d %H:%M KST") if value else "-"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def print_run(report: RunReport, counts: dict[str, int], settings: Settings) -> None:
    echo = click.echo
    echo(f"run {report.run_id} ({report.job}): {report.status} in {report.seconds:.1f}s")
    for job in report.jobs:
        rows = ", ".join(f"{n} {table}" for table, n in sorted(job.rows.items())) or "nothing"
        echo(
            f"  {job.job:<18} {job.status:<8} fetched {job.fetched}, wrote {rows}, rejected {job.rejected}, "
            f"{job.requests} requests, {job.seconds:.1f}s"
        )
        for line in (job.errors + job.warnings)[:5]:
            echo(f"    - {line}")
    for message in report.auth_errors.values():  # one line per source, however many requests it refused
        echo(f"  - {message}")
    url = settings.database.url
    echo("database " + display_url(url) + ": " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    path = sqlite_path(url)
    echo(f'\nTry some SQL (pipeline sql "…", or {f"sqlite3 {path}" if path else "psql"}):')
    for title, sql in TRY_QUERIES:
        echo(f"  -- {title}\n  {sql}")
