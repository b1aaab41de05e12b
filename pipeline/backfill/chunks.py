"""Running a backfill's chunks: a few at a time, each marked in the ledger; the report and its run row.

A quota stop (code 22 or the ledger's limit) lets the running chunks end and leaves the rest pending.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from pipeline.errors import AuthError, QuotaError, SourceError
from pipeline.extract.stats import RequestStats
from pipeline.load.backfills import close_backfill, mark_chunk
from pipeline.load.quota import next_kst_midnight
from pipeline.load.runs import RunStatus, RunTotals, finish_run
from pipeline.load.writer import Writer
from pipeline.resources import peak_rss_mb

Source = Literal["airkorea", "tmdb"]
Status = Literal["done", "paused", "partial", "failed"]
Done = Callable[[int], Awaitable[None]]


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
    status: Status = "done"  # done, paused (quota), partial (some chunks failed), failed
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

    def pause(self, exc: QuotaError, now: datetime) -> None:
        resume = next_kst_midnight(now)
        self.status = "paused"
        self.message = (
            f"paused by the daily quota ({exc}); run the same command after {resume:%Y-%m-%d %H:%M} KST to resume"
        )


async def run_chunks(
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
    refused: list[AuthError] = []

    async def worker() -> None:
        while queue and not stop and not refused:
            chunk = queue.pop()

            async def done(rows: int, chunk: str = chunk) -> None:
                await mark_chunk(writer, report.backfill_id, chunk, "done", run_id, rows=rows, attempt=True)

            try:
                rows = await work(chunk, done)
            except QuotaError as exc:
                stop.append(exc)
                await mark_chunk(writer, report.backfill_id, chunk, "pending", run_id, error=str(exc), attempt=True)
                return
            except AuthError as exc:  # the key is refused: every other chunk would be too; say it once
                refused.append(exc)
                await mark_chunk(writer, report.backfill_id, chunk, "pending", run_id, error=str(exc), attempt=True)
                return
            except SourceError as exc:
                report.chunks_failed += 1
                report.errors.append(f"{chunk}: {exc}")
                await mark_chunk(writer, report.backfill_id, chunk, "failed", run_id, error=str(exc), attempt=True)
                progress.advance(1, 0)
                continue
            report.chunks_done += 1
            report.rows_upserted += rows
            progress.advance(1, rows)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    report.chunks_pending = len(queue) + len(stop) + len(refused)
    if refused:
        report.status = "partial" if report.chunks_done else "failed"
        report.message = str(refused[0])
    if stop:
        raise stop[0]


RUN_STATUS: dict[Status, RunStatus] = {"done": "success", "paused": "partial", "partial": "partial", "failed": "failed"}


async def finish(writer: Writer, report: BackfillReport, run_id: int, started: float) -> BackfillReport:
    """Close the report, its ``runs`` row and its ledger entry."""
    report.seconds = time.monotonic() - started
    report.peak_rss_mb = peak_rss_mb()
    for stage, seconds in report.stats.seconds.items():
        report.stages[stage] = seconds
    if report.status != "paused":
        if report.chunks_failed and report.chunks_done:
            report.status = "partial"
        elif report.chunks_failed:
            report.status = "failed"
    run_status = RUN_STATUS[report.status]
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
    await finish_run(writer, run_id, run_status, totals, error=error, details=details)
    await close_backfill(writer, report.backfill_id, report.status)
    return report
