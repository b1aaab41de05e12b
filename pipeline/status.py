"""``pipeline status``: per job the last run, the last success, freshness, the next fire time; the last
backfill and replay runs; table totals; the completeness of the last 24 published hours (the ledger).

Healthy (exit 0) means every enabled job succeeded within its freshness limit; it serves as a container or
systemd health check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.gaps import last_day_completeness
from pipeline.jobs import JOBS
from pipeline.jobs.context import make_ledger
from pipeline.load.coverage import newest_published
from pipeline.load.db import create_engine, display_url, error_message, sqlite_path
from pipeline.load.queries import table_counts
from pipeline.load.quota import Usage
from pipeline.load.runs import last_runs, load_timetable
from pipeline.load.writer import Writer
from pipeline.lock import daemon_pid
from pipeline.timetable import freshness_limit
from pipeline.transform.coverage import DayCounts


@dataclass(frozen=True, slots=True)
class JobState:
    job: str
    enabled: bool
    last_run_id: int | None
    last_status: str | None
    last_started_at: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    age_seconds: float | None
    freshness_seconds: float
    fresh: bool
    running: bool
    next_run_at: datetime | None

    @property
    def state(self) -> str:
        """The verdict ``pipeline status`` prints and ``/healthz`` returns: fresh, STALE or disabled."""
        return "disabled" if not self.enabled else ("fresh" if self.fresh else "STALE")


@dataclass(frozen=True, slots=True)
class OtherRun:
    """The newest run of something that is not a scheduled job: a backfill, a replay."""

    name: str
    last_run_id: int | None
    last_status: str | None
    last_started_at: datetime | None
    last_error: str | None
    running: bool


@dataclass(frozen=True, slots=True)
class StatusReport:
    database: str
    daemon_pid: int | None
    jobs: list[JobState]
    totals: dict[str, int]
    quota: list[Usage]
    others: list[OtherRun] = field(default_factory=list)
    completeness: DayCounts | None = None  # the ledger over the 24 published hours up to newest_hour
    newest_hour: datetime | None = None  # the newest hour AirKorea was seen to publish

    @property
    def healthy(self) -> bool:
        return all(job.fresh for job in self.jobs if job.enabled)

    def as_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            return value.isoformat() if isinstance(value, datetime) else value

        return {
            "database": self.database,
            "healthy": self.healthy,
            "daemon_pid": self.daemon_pid,
            "jobs": [{k: plain(v) for k, v in asdict(job).items()} for job in self.jobs],
            "other_runs": [{k: plain(v) for k, v in asdict(run).items()} for run in self.others],
            "totals": self.totals,
            "completeness_24h": None
            if self.completeness is None
            else {
                "newest_hour": plain(self.newest_hour),
                "expected": self.completeness.expected,
                "received": self.completeness.received,
                "flagged": self.completeness.flagged,
                "not_published": self.completeness.unpublished,
                "missing": self.completeness.missing,
                "completeness": self.completeness.completeness,
            },
            "quota": [
                {
                    "operation": u.operation,
                    "kst_date": u.day.isoformat(),
                    "calls": u.calls,
                    "limit": u.limit,
                    "left": u.left,
                    "exhausted": u.exhausted,
                }
                for u in self.quota
            ],
        }


async def collect_status(
    settings: Settings, now: datetime | None = None, engine: AsyncEngine | None = None, *, totals: bool = True
) -> StatusReport:
    """The report of ``pipeline status`` and ``GET /healthz``, read through ``engine`` when given (the web
    surface's read-only engine, kept open) or an engine of its own. ``totals=False`` leaves out the row
    counts (``count(*)`` of every table: 100 ms and more on a year of readings), which a health probe every few
    seconds does not need."""
    url = settings.database.url
    path = sqlite_path(url)
    if engine is None and path is not None and not path.exists():
        raise ConfigError(f"database.url: {path} does not exist yet; run 'pipeline migrate' or 'pipeline run'")
    now = now or datetime.now(UTC)
    shown = display_url(url)
    own = engine is None
    engine = engine or create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        if "runs" not in names:
            raise ConfigError(f"database.url: {shown} has no pipeline tables; run 'pipeline migrate'")
        writer = Writer(engine)
        history = await last_runs(writer)
        pid = await daemon_pid(url, engine)
        timetable = await load_timetable(writer) if pid is not None and "daemon_jobs" in names else {}
        counts = await table_counts(engine) if totals else {}
        quota = await make_ledger(settings, writer).usage() if settings.sources.airkorea.enabled else []
        newest = await newest_published(engine) if "air_coverage" in names else None
        completeness = await last_day_completeness(engine, newest) if newest is not None else None
    except (SQLAlchemyError, OSError) as exc:  # asyncpg raises connection failures unwrapped
        raise ConfigError(f"database.url: cannot read {shown}: {error_message(exc)}") from None
    finally:
        if own:
            await engine.dispose()
    timezone = ZoneInfo(settings.schedule.timezone)
    jobs: list[JobState] = []
    for job, declared in JOBS.items():
        enabled = declared.enabled(settings)
        record = history.get(job, {})
        last, success = record.get("last"), record.get("success")
        limit = freshness_limit(settings.schedule.jobs[job], timezone)
        age = (now - success["started_at"]).total_seconds() if success else None
        jobs.append(
            JobState(
                job=job,
                enabled=enabled,
                last_run_id=last["id"] if last else None,
                last_status=last["status"] if last else None,
                last_started_at=last["started_at"] if last else None,
                last_error=last["error"] if last else None,
                last_success_at=success["started_at"] if success else None,
                age_seconds=round(age, 1) if age is not None else None,
                freshness_seconds=limit.total_seconds(),
                fresh=age is not None and age <= limit.total_seconds(),
                running="running" in record,
                next_run_at=timetable.get(job),
            )
        )
    others = [_other(name, record) for name, record in sorted(history.items()) if name not in (*JOBS, "cycle")]
    return StatusReport(
        database=shown,
        daemon_pid=pid,
        jobs=jobs,
        totals=counts,
        quota=quota,
        others=others,
        completeness=completeness,
        newest_hour=newest,
    )


def _other(name: str, record: dict[str, Any]) -> OtherRun:
    last = record.get("running") or record.get("last")
    return OtherRun(
        name=name,
        last_run_id=last["id"] if last else None,
        last_status=last["status"] if last else None,
        last_started_at=last["started_at"] if last else None,
        last_error=last["error"] if last else None,
        running="running" in record,
    )
