"""One recorded run: the chosen jobs (see :mod:`pipeline.jobs`) run concurrently as one row of ``runs``.

``pipeline run --once`` runs every enabled job as one run (``job = 'cycle'``); the daemon runs one job per
run. Each job catches its own source errors, so one failing source does not stop the others; the run is
``success`` when every job succeeded, ``failed`` when none did, ``partial`` otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from pipeline.config import DataTerm, JobName, Settings
from pipeline.errors import LoadError, NotFoundError, QuotaError, SourceError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract import tmdb as tmdb_extract
from pipeline.extract.http import SourceClient, make_session
from pipeline.extract.stats import job_stats
from pipeline.jobs import JOBS, Job, enabled_jobs
from pipeline.jobs.context import JobReport, RunContext, make_ledger, overall_status
from pipeline.keys import Secrets
from pipeline.lifecycle import writing
from pipeline.load.archive import Receiver, receiver_for
from pipeline.load.queries import table_counts
from pipeline.load.quota import QuotaLedger
from pipeline.load.runs import RunStatus, RunTotals, finish_run, start_run
from pipeline.load.writer import Writer
from pipeline.redaction import redact

log = logging.getLogger(__name__)


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
    def auth_errors(self) -> dict[str, str]:
        """Per source, its refusal of the key: one line however many requests and jobs it stopped."""
        found: dict[str, str] = {}
        for job in self.jobs:
            for source, message in job.auth.items():
                found.setdefault(source, message)
        return found

    @property
    def error(self) -> str | None:
        errors = [*self.auth_errors.values(), *(f"{j.job}: {e}" for j in self.jobs for e in j.errors[:3])]
        return "; ".join(errors)[:4000] if errors else None


async def _run_job(ctx: RunContext, job: Job) -> JobReport:
    report = JobReport(job=job.name)
    started = time.monotonic()
    job_stats.set(report.stats)  # this task's context: requests made for the job are counted in its report
    try:
        planned = job.planned_calls(ctx.settings, ctx.data_term)
        if planned:  # data.go.kr: the planned calls must fit in what is left of today's quota
            try:
                await ctx.ledger.check_plan(planned)
            except QuotaError:
                report.stats.actions["quota:deferred"] += 1
                raise
        await job.collect(ctx, report)
    except NotFoundError as exc:
        report.fail(exc, fatal=False)
    except (SourceError, LoadError) as exc:
        report.fail(exc, fatal=True)
    finally:
        report.seconds = time.monotonic() - started
    return report


async def _run_in_order(ctx: RunContext, selected: Sequence[Job]) -> list[JobReport]:
    """The jobs concurrently, except that a job waits for the selected jobs it comes ``after``."""
    tasks: dict[str, asyncio.Task[JobReport]] = {}

    async def run(job: Job) -> JobReport:
        before = [tasks[name] for name in job.after if name in tasks]
        if before:
            await asyncio.wait(before)
        return await _run_job(ctx, job)

    for job in selected:
        tasks[job.name] = asyncio.ensure_future(run(job))
    return list(await asyncio.gather(*tasks.values()))


def make_clients(
    settings: Settings,
    secrets: Secrets,
    session: aiohttp.ClientSession,
    ledger: QuotaLedger,
    archive: Receiver | None = None,
) -> dict[str, SourceClient]:
    clients: dict[str, SourceClient] = {}
    if settings.sources.tmdb.enabled:
        clients["tmdb"] = tmdb_extract.make_client(session, settings.sources.tmdb, secrets)
    if settings.sources.airkorea.enabled:
        clients["airkorea"] = airkorea_extract.make_client(
            session, settings.sources.airkorea, secrets, before_send=ledger.reserve, on_quota=ledger.exhaust
        )
    for client in clients.values():
        client.after_receive = archive
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
    selected = [JOBS[name] for name in jobs] if jobs is not None else enabled_jobs(settings)
    started_at = datetime.now(UTC)
    run_id = await start_run(writer, run_name, trigger, started_at)
    report = RunReport(run_id=run_id, job=run_name, trigger=trigger, started_at=started_at)
    clock = time.monotonic()
    own_session = session is None
    http = session or make_session()
    try:
        ledger = make_ledger(settings, writer, now)
        clients = make_clients(settings, secrets, http, ledger, receiver_for(settings, writer, run_id))
        ctx = RunContext(settings, writer, run_id, started_at, clients, ledger, data_term=data_term)
        if now is not None:
            ctx.clock = now
        report.jobs = await _run_in_order(ctx, selected)
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
    details: dict[str, dict[str, Any]] = {job.job: job.as_dict() for job in report.jobs}
    error = reason or report.error
    await finish_run(writer, report.run_id, report.status, report.totals, error=error, details=details)


async def run_once(
    settings: Settings,
    secrets: Secrets,
    jobs: Sequence[JobName] | None = None,
    *,
    trigger: str = "manual",
    simulate: bool = False,
) -> tuple[RunReport, dict[str, int]]:
    """Migrate, run every enabled job once as one run, and return the report and the table counts."""
    async with writing(settings, secrets, simulate=simulate) as opened:
        report = await run_jobs(opened.settings, opened.secrets, opened.writer, jobs, trigger=trigger)
        return report, await table_counts(opened.engine)
