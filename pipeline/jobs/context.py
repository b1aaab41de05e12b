"""What a job runs with and what it reports: :class:`RunContext`, :class:`JobReport`, the quota ledger.

Shared by the runner (the daemon's and ``run --once``'s jobs), the backfill and replay. Importing it loads no
HTTP library: clients are made by the runner and handed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pipeline.clock import Clock, current, wall_clock
from pipeline.config import DataTerm, JobName, Settings
from pipeline.errors import AuthError, PipelineError, SourceError
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract.stats import RequestStats
from pipeline.load.quota import QuotaLedger
from pipeline.load.runs import RunStatus
from pipeline.load.writer import Writer
from pipeline.redaction import redact

if TYPE_CHECKING:
    from pipeline.extract.http import SourceClient
    from pipeline.jobs.airkorea import PageParser

JobStatus = Literal["success", "partial", "failed"]


@dataclass(slots=True)
class JobReport:
    """What one job did in one run."""

    job: JobName
    status: JobStatus = "success"
    fetched: int = 0
    rejected: int = 0
    rows: Counter[str] = field(default_factory=Counter)  # rows written per table
    counts: Counter[str] = field(default_factory=Counter)  # what else it counted: details fetched, skipped
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    auth: dict[str, str] = field(default_factory=dict)  # source → its refusal of the key, once
    error_class: str | None = None
    retry_at: datetime | None = None  # the job asks to run again then (an hour not yet published)
    seconds: float = 0.0
    stats: RequestStats = field(default_factory=RequestStats)

    @property
    def upserted(self) -> int:
        return sum(self.rows.values())

    @property
    def requests(self) -> int:
        return self.stats.total_requests

    def fail(self, exc: PipelineError, *, fatal: bool) -> None:
        """Record a failure; the same one (every province refused with the same key) is recorded once."""
        message = redact(str(exc))
        if isinstance(exc, AuthError):
            self.auth.setdefault(exc.source, message)
        elif message not in self.errors:
            self.errors.append(message)
        if isinstance(exc, SourceError):
            self.error_class = self.error_class or exc.error_class
        if fatal:
            self.status = "failed"
        elif self.status == "success":
            self.status = "partial"

    def as_dict(self) -> dict[str, Any]:
        """The job's entry in ``runs.details``: ``seconds`` is the job's own time; ``stage_seconds`` the time of
        its requests per stage (``fetch``, ``parse``), which the request stats call ``seconds``."""
        stats = self.stats.as_dict()
        stages = stats.pop("seconds")
        return {
            "status": self.status,
            "fetched": self.fetched,
            "upserted": self.upserted,
            "rejected": self.rejected,
            "rows": dict(self.rows),
            "counts": dict(self.counts),
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
            "errors": [*self.auth.values(), *self.errors],
            "error_class": self.error_class,
            **({"retry_at": self.retry_at.isoformat()} if self.retry_at else {}),
            **stats,
            "stage_seconds": stages,
        }


@dataclass(slots=True)
class RunContext:
    """One recorded run's database writer, clients, quota ledger and page parser, shared by its jobs."""

    settings: Settings
    writer: Writer
    run_id: int
    started_at: datetime
    clients: dict[str, SourceClient]
    ledger: QuotaLedger
    data_term: DataTerm | None = None  # overrides sources.airkorea.data_term (catch-up after a gap)
    parser: PageParser | None = None  # how AirKorea pages become rows (default: here, in the event loop)
    clock: Clock = field(default_factory=current)  # see pipeline.clock: the simulator's, when it serves
    written_clock: Clock = wall_clock  # a row's updated_at: the wall clock (a replay: the original run's start)

    def now(self) -> datetime:
        return self.clock()

    def written_at(self) -> datetime:
        """When rows are written, which orders writes (a row is never replaced by values written earlier)."""
        return self.written_clock()


def overall_status(reports: Sequence[JobReport]) -> RunStatus:
    if reports and all(r.status == "success" for r in reports):
        return "success"
    if not reports or all(r.status == "failed" for r in reports):
        return "failed"
    return "partial"


def make_ledger(settings: Settings, writer: Writer, clock: Callable[[], datetime] | None = None) -> QuotaLedger:
    """The daily call ledger of every data.go.kr operation, at ``sources.airkorea.daily_quota`` each."""
    quota = settings.sources.airkorea.daily_quota
    limits = dict.fromkeys(airkorea_extract.OPERATIONS, quota)
    return QuotaLedger(writer, limits, now=clock or current())
