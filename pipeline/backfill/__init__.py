"""``pipeline backfill``: fill history once, in resumable chunks.

AirKorea's real-time API has no date parameters: ``getMsrstnAcctoRltmMesureDnsty`` serves windows that end
at the newest published hour (``pipeline.extract.airkorea.WINDOWS``). A backfill picks the smallest window that
covers the range, keeps only the rows inside it, and refuses a range older than the largest window.
TMDB history comes from ``/discover/movie`` (theatrical releases in the region within the range).

The work is split into chunks — one station, or ten TMDB list pages — recorded in ``backfill_chunks``
(:mod:`pipeline.load.backfills`). A chunk is marked done only after its rows are written, so a backfill killed
half-way and started again with the same arguments fetches only what is not done. Rows are upserted like the
daemon's; a quota stop (code 22 or the ledger's limit) leaves the remaining chunks pending and says when the
backfill can resume.

Modules: :mod:`.plan` (range, window, stations, dry run), :mod:`.chunks` (running chunks, the report),
:mod:`.airkorea` and :mod:`.tmdb` (the two sources), :mod:`.worker` (parse worker processes).
"""

from __future__ import annotations

from typing import Any, Literal

from pipeline.lifecycle import Opened
from pipeline.resources import peak_rss_mb

from .airkorea import backfill_airkorea
from .chunks import BackfillReport, NoProgress, Progress
from .plan import AirPlan, DayRange, DryRun, choose_window, dry_run_airkorea, dry_run_tmdb, parse_range, plan_airkorea
from .tmdb import backfill_tmdb


async def run(
    opened: Opened,
    source: Literal["airkorea", "tmdb"],
    days: DayRange,
    selection: dict[str, Any],
    *,
    dry_run: bool,
    progress: Progress | None = None,
) -> BackfillReport | DryRun:
    """One backfill (or its dry run) on an opened database: what ``pipeline backfill`` does."""
    settings, secrets, writer = opened.settings, opened.secrets, opened.writer
    if source == "tmdb":
        if dry_run:
            return dry_run_tmdb(days, selection["region"])
        return await backfill_tmdb(settings, secrets, writer, days, region=selection["region"], progress=progress)
    plan = await plan_airkorea(settings, writer, days, **selection)
    if dry_run:
        return await dry_run_airkorea(settings, writer, plan)
    return await backfill_airkorea(settings, secrets, writer, plan, progress=progress)


__all__ = [
    "AirPlan",
    "BackfillReport",
    "DayRange",
    "DryRun",
    "NoProgress",
    "Progress",
    "backfill_airkorea",
    "backfill_tmdb",
    "choose_window",
    "dry_run_airkorea",
    "parse_range",
    "peak_rss_mb",
    "plan_airkorea",
    "run",
]
