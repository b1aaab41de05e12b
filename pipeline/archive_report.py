"""``pipeline archive``: what the raw archive holds — bodies and bytes per source, operation and KST day, the
compression, the oldest and newest, and what retention will prune next. Read-only; loads no HTTP library."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.load.db import create_engine, display_url, error_message, sqlite_path
from pipeline.load.tables import raw_bodies, raw_responses
from pipeline.transform.common import KST


@dataclass(slots=True)
class ArchiveDay:
    source: str
    operation: str
    kst_date: date
    responses: int = 0
    bodies: int = 0  # bodies first stored that day (identical ones are stored once)
    received_bytes: int = 0  # what the responses weighed as received
    stored_bytes: int = 0  # what the bodies first stored that day take, compressed

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "operation": self.operation,
            "kst_date": self.kst_date.isoformat(),
            "responses": self.responses,
            "bodies": self.bodies,
            "received_bytes": self.received_bytes,
            "stored_bytes": self.stored_bytes,
        }


@dataclass(slots=True)
class ArchiveReport:
    enabled: bool
    keep_seconds: float
    days: list[ArchiveDay] = field(default_factory=list)
    oldest: datetime | None = None
    newest: datetime | None = None
    prune_responses: int = 0  # what the next prune removes (responses older than keep)
    prune_before: datetime | None = None

    @property
    def received_bytes(self) -> int:
        return sum(day.received_bytes for day in self.days)

    @property
    def stored_bytes(self) -> int:
        return sum(day.stored_bytes for day in self.days)

    @property
    def ratio(self) -> float | None:
        """Bytes received per byte stored (compression and deduplication together)."""
        return self.received_bytes / self.stored_bytes if self.stored_bytes else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "keep_seconds": self.keep_seconds,
            "responses": sum(day.responses for day in self.days),
            "bodies": sum(day.bodies for day in self.days),
            "received_bytes": self.received_bytes,
            "stored_bytes": self.stored_bytes,
            "ratio": round(self.ratio, 2) if self.ratio else None,
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "newest": self.newest.isoformat() if self.newest else None,
            "next_prune": {
                "before": self.prune_before.isoformat() if self.prune_before else None,
                "responses": self.prune_responses,
            },
            "days": [day.as_dict() for day in self.days],
        }


async def archive_report(engine: AsyncEngine, settings: Settings, now: datetime) -> ArchiveReport:
    keep = settings.archive.keep
    report = ArchiveReport(settings.archive.enabled, keep)
    r, b = raw_responses.c, raw_bodies.c
    query = (
        select(r.source, r.operation, r.fetched_at, r.body_hash, b.size, b.stored_size)
        .join_from(raw_responses, raw_bodies, b.hash == r.body_hash)
        .order_by(r.id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        if keep:
            report.prune_before = now - timedelta(seconds=keep)
            older = select(func.count()).select_from(raw_responses).where(r.fetched_at < report.prune_before)
            report.prune_responses = int((await conn.execute(older)).scalar_one())
    days: dict[tuple[str, str, date], ArchiveDay] = {}
    seen: set[str] = set()
    for row in rows:
        day = row.fetched_at.astimezone(KST).date()
        entry = days.get((row.source, row.operation, day))
        if entry is None:
            entry = days[(row.source, row.operation, day)] = ArchiveDay(row.source, row.operation, day)
        entry.responses += 1
        entry.received_bytes += row.size
        if row.body_hash not in seen:
            seen.add(row.body_hash)
            entry.bodies += 1
            entry.stored_bytes += row.stored_size
    report.days = sorted(days.values(), key=lambda d: (d.kst_date, d.source, d.operation))
    if rows:
        moments = [row.fetched_at for row in rows]
        report.oldest, report.newest = min(moments), max(moments)
    return report


async def collect_archive(settings: Settings, now: datetime) -> ArchiveReport:
    url = settings.database.url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise ConfigError(f"database.url: {path} does not exist yet; run 'pipeline migrate' or 'pipeline run'")
    engine = create_engine(url)
    try:
        return await archive_report(engine, settings, now)
    except (SQLAlchemyError, OSError) as exc:
        raise ConfigError(f"database.url: cannot read {display_url(url)}: {error_message(exc)}") from None
    finally:
        await engine.dispose()


def by_day(report: ArchiveReport) -> dict[date, tuple[int, int]]:
    """Received and stored bytes per KST day, every source together."""
    totals: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for day in report.days:
        totals[day.kst_date][0] += day.received_bytes
        totals[day.kst_date][1] += day.stored_bytes
    return {day: (received, stored) for day, (received, stored) in sorted(totals.items())}
