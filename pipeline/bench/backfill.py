"""Section 4, ``backfill``: the nationwide 3-month backfill end to end, against the simulator in its own process;
the raw archive's cost on it (trials with the archive off interleaved), and ``replay`` of its archive.

The replay rebuilds the data tables of an archive-on trial's database from its archive alone: the tables
emptied, then :func:`pipeline.replay.replay` in this process (no network: it should beat the backfill).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.bench.harness import ZONE_KST, Line, Sizes, _config, _env, _kst_clock, _simulator, register
from pipeline.config import parse_settings
from pipeline.jobs.airkorea import PageParser
from pipeline.keys import Secrets
from pipeline.lifecycle import Opened
from pipeline.load.db import create_engine
from pipeline.load.writer import Writer
from pipeline.replay import ReplaySelection, replay
from pipeline.resources import proc_cpu_seconds

#: the data tables a replay rebuilds, children first (the order they are emptied in; as tests/test_replay.py)
DATA_TABLES = ("rejects", "movie_snapshots", "movies", "air_coverage", "air_readings", "air_published_hours",
               "air_stations")  # fmt: skip
ARCHIVE_OFF = "archive: {enabled: false}\n"


@dataclass(frozen=True)
class ReplayTrial:
    rows: int  # air_readings upserted
    seconds: float  # as the replay timed itself
    bodies: int
    received_bytes: int  # the archive: bodies as received, and as stored (compressed), distinct bodies
    stored_bytes: int
    distinct: int
    emptied: float  # seconds to empty the data tables first (not timed in the rate)
    kept: int  # air_readings before the tables were emptied, and after the replay
    held: int

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class BackfillTrial:
    rows: int
    seconds: float  # the run, as the backfill timed itself
    wall: float  # the process, imports and migration check included
    simulator_cpu: float
    details: dict[str, Any]
    archive: bool = True
    replayed: ReplayTrial | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


async def _replay_into(url: str, parser: PageParser | None) -> tuple[int, float, int]:
    settings = parse_settings({"database": {"url": url}})
    engine = create_engine(url)
    try:
        writer = Writer(engine, settings.database.chunk_size)
        report = await replay(Opened(settings, Secrets(), engine, writer), ReplaySelection(), parser=parser)
    finally:
        await engine.dispose()
    if report.status != "success" or report.skipped:
        raise RuntimeError(f"replay: {report.status}, {report.skipped} skipped: {'; '.join(report.errors)}")
    return report.rows["air_readings"], report.seconds, report.bodies


def replay_archive(db: Path, parser: PageParser | None = None) -> ReplayTrial:
    """Empty the data tables of ``db`` and rebuild them from its archive with ``replay``."""
    count = "SELECT count(*) FROM air_readings"
    with sqlite3.connect(db) as conn:
        received, stored, distinct = conn.execute(
            "SELECT coalesce(sum(size), 0), coalesce(sum(stored_size), 0), count(*) FROM raw_bodies"
        ).fetchone()
        kept = conn.execute(count).fetchone()[0]
        began = time.perf_counter()
        for table in DATA_TABLES:
            conn.execute(f"DELETE FROM {table}")
    emptied = time.perf_counter() - began
    rows, seconds, bodies = asyncio.run(_replay_into(f"sqlite+aiosqlite:///{db}", parser))
    with sqlite3.connect(db) as conn:
        held = conn.execute(count).fetchone()[0]
    return ReplayTrial(rows, seconds, bodies, int(received), int(stored), int(distinct), emptied, kept, held)


def _backfill_trial(
    base: str, simulator_pid: int, sizes: Sizes, *, archive: bool = True, then_replay: bool = False
) -> BackfillTrial:
    """One nationwide backfill into a fresh database, against the running simulator; with ``then_replay``,
    its data tables are then rebuilt from its archive."""
    today = datetime.now(ZONE_KST).date()
    first = today - timedelta(days=89)
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), base, "" if archive else ARCHIVE_OFF)
        pipeline = [sys.executable, "-m", "pipeline"]
        # the station list first (a separate, tiny step), so the measured run is the backfill itself
        subprocess.run(
            [*pipeline, "--log-level", "ERROR", "run", "--once", "--config", str(config), "--job", "airkorea_sido"],
            env=_env(),
            check=True,
            capture_output=True,
        )
        dates = ["--from", first.isoformat(), "--to", today.isoformat()]
        backfill = ["backfill", "airkorea", "--config", str(config), *dates, *sizes.backfill_args]
        args = [*pipeline, "--log-level", "WARNING", *backfill]
        started, simulator_cpu = time.perf_counter(), proc_cpu_seconds(simulator_pid)
        result = subprocess.run(args, env=_env(), capture_output=True, text=True)
        wall = time.perf_counter() - started
        simulator_cpu = proc_cpu_seconds(simulator_pid) - simulator_cpu
        if result.returncode != 0:
            raise RuntimeError(f"backfill failed: {result.stdout[-500:]} {result.stderr[-500:]}")
        db = Path(tmp) / "bench.db"
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT rows_upserted, details FROM runs WHERE job = 'backfill_airkorea'").fetchone()
            archived = conn.execute("SELECT count(*) FROM raw_responses").fetchone()[0]
        if bool(archived) != archive:
            raise RuntimeError(f"backfill with the archive {'on' if archive else 'off'}: {archived} responses archived")
        replayed = replay_archive(db) if then_replay else None
    details = json.loads(rows[1])
    return BackfillTrial(int(rows[0]), float(details["seconds_total"]), wall, simulator_cpu, details, archive, replayed)


def _median(trials: list[BackfillTrial]) -> BackfillTrial:
    return sorted(trials, key=lambda trial: trial.rate)[len(trials) // 2]


@register("backfill")
def bench_backfill(sizes: Sizes) -> list[Line]:
    """The median of ``sizes.backfill_trials`` backfills (a shared machine has slow spells), each into a
    fresh database; its CPU per process and stages are shown, with every trial's rate. Trials with the archive
    off alternate with them (the archive's cost), and the first archive-on trial's archive is replayed."""
    on: list[BackfillTrial] = []
    off: list[BackfillTrial] = []
    with _simulator(0, _kst_clock()) as (base, simulator_pid):
        for index in range(sizes.backfill_trials):
            on.append(_backfill_trial(base, simulator_pid, sizes, archive=True, then_replay=index == 0))
            off.append(_backfill_trial(base, simulator_pid, sizes, archive=False))
    median, median_off = _median(on), _median(off)
    details = median.details
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(details.get("stages", {}).items()))
    rss_main = max(float(t.details["peak_rss_mb"]) for t in on)
    rss_worker = max(float(t.details["worker_peak_rss_mb"]) for t in on)
    cpu = (
        f"CPU: backfill {details['cpu_seconds']:.1f}s, parse worker {details['worker_cpu_seconds']:.1f}s, "
        f"simulator {median.simulator_cpu:.1f}s"
    )
    timing = f"run {median.seconds:.1f}s (process wall {median.wall:.1f}s: {median.rows / median.wall:,.0f} rows/s)"

    def every(trials: list[BackfillTrial]) -> str:
        return ", ".join(f"{t.rate:,.0f}" for t in trials)

    rate, rate_off = median.rate, median_off.rate
    archive_ratio = rate / rate_off
    cpu_on = statistics.median(float(t.details["cpu_seconds"]) for t in on)
    cpu_off = statistics.median(float(t.details["cpu_seconds"]) for t in off)
    replayed = on[0].replayed
    assert replayed is not None
    replay_ratio = replayed.rate / rate
    mb = 1_000_000
    return [
        Line(
            "backfill",
            f"{' '.join(sizes.backfill_args)} 3 months, {median.rows:,} rows, end to end",
            rate,
            "rows/s",
            target="≥ 50,000",
            passed=rate >= 50_000,
            note=f"median of {len(on)} ({every(on)}); {timing}; {cpu}; stages: {stages}",
        ),
        Line(
            "backfill",
            "peak RSS: backfill process + parse worker",
            rss_main + rss_worker,
            "MB",
            target="≤ 300",
            passed=rss_main + rss_worker <= 300,
            note=f"main {rss_main:.0f} MB, worker {rss_worker:.0f} MB (the largest of {len(on)})",
        ),
        Line(
            "backfill",
            "archive on / off: the backfill's rows/s",
            rate,
            "rows/s",
            rate_off,
            "archive off",
            archive_ratio,
            "≥ 0.90",
            archive_ratio >= 0.9,
            f"medians of {len(on)} interleaved trials each (on {every(on)}; off {every(off)}); backfill process "
            f"CPU {cpu_on:.1f}s on, {cpu_off:.1f}s off; archived {replayed.bodies:,} responses, "
            f"{replayed.received_bytes / mb:,.0f} MB received, {replayed.stored_bytes / mb:,.1f} MB stored "
            f"({replayed.received_bytes / max(replayed.stored_bytes, 1):.1f}×)",
        ),
        Line(
            "backfill",
            f"replay of the backfill's archive, {replayed.rows:,} rows, into emptied tables",
            replayed.rate,
            "rows/s",
            rate,
            "backfill",
            replay_ratio,
            "≥ 1.00",
            replay_ratio >= 1.0,
            "replay() in process as `pipeline replay` runs it (pages parsed ahead in a worker): "
            f"{replayed.bodies:,} bodies in {replayed.seconds:.1f}s (the "
            f"first archive-on trial's database, its data tables emptied in {replayed.emptied:.1f}s first), "
            f"beside the backfill's median; air_readings held {replayed.kept:,} after the backfill, "
            f"{replayed.held:,} after the replay",
        ),
    ]
