"""Section ``archive``: the raw archive's cost on a cycle of the daemon.

A cycle is :func:`pipeline.runner.run_jobs` of every enabled job, with the default settings, against the
simulator in its own process (fixed clock), timed in this process; the archive on and off alternate (ABBA),
each cycle in a fresh database (in one database the second cycle's details would be within their TTL: a
different cycle), after one cycle of warm-up. The wall time is what the daemon sees; the default rate
limits bound it, so the CPU time the archive adds (compression, hashing, its rows) is shown beside it.
The archive's bytes per day and its cost on the backfill are measured by the ``day`` and ``backfill``
sections.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.bench.day import _quiet
from pipeline.bench.harness import Line, Sizes, _kst_clock, _simulator, register
from pipeline.config import parse_settings
from pipeline.keys import Secrets
from pipeline.load.db import create_engine, migrate
from pipeline.load.writer import Writer
from pipeline.runner import run_jobs
from pipeline.simulator import SIM_DATA_GO_KEY, SIM_TMDB_READ_TOKEN

CYCLE_TARGET = 1.05
MB = 1_000_000


@dataclass(frozen=True, slots=True)
class Cycle:
    archive: bool
    wall: float  # run_jobs, as this process timed it
    cpu: float  # this process's CPU time (every thread) during it
    requests: int
    responses: int  # archived
    received: int  # bytes as received, of the archived responses
    stored: int  # bytes stored (compressed, each distinct body once)


async def _cycle(base: str, archive: bool, tmp: Path) -> Cycle:
    url = f"sqlite+aiosqlite:///{tmp / 'cycle.db'}"
    settings = parse_settings({"database": {"url": url}, "archive": {"enabled": archive}})
    settings = settings.with_base_urls(f"{base}/3", f"{base}/B552584")
    secrets = Secrets(tmdb_api_key=SIM_TMDB_READ_TOKEN, data_go_api_key=SIM_DATA_GO_KEY)
    await migrate(url)
    engine = create_engine(url)
    try:
        writer = Writer(engine, settings.database.chunk_size)
        cpu, started = time.process_time(), time.perf_counter()
        report = await run_jobs(settings, secrets, writer)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await engine.dispose()
    if report.status != "success":
        raise RuntimeError(f"archive: the cycle ended {report.status}: {report.error}")
    with sqlite3.connect(tmp / "cycle.db") as conn:
        requests = conn.execute("SELECT requests FROM runs WHERE id = ?", (report.run_id,)).fetchone()[0]
        responses, received = conn.execute(
            "SELECT count(*), coalesce(sum(b.size), 0) FROM raw_responses r JOIN raw_bodies b ON b.hash = r.body_hash"
        ).fetchone()
        stored = conn.execute("SELECT coalesce(sum(stored_size), 0) FROM raw_bodies").fetchone()[0]
    return Cycle(archive, wall, cpu, int(requests or 0), int(responses), int(received), int(stored))


def time_cycles(base: str, trials: int) -> list[Cycle]:
    """One warm-up cycle, then ``trials`` cycles with the archive on and as many off, in ABBA order."""
    order = [index % 4 in (0, 3) for index in range(2 * trials)]  # on, off, off, on, on, off …

    async def every() -> list[Cycle]:
        found = []
        for index, archive in enumerate([True, *order]):
            with tempfile.TemporaryDirectory() as tmp:
                cycle = await _cycle(base, archive, Path(tmp))
            if index:
                found.append(cycle)
        return found

    with _quiet():
        return asyncio.run(every())


@register("archive")
def bench_archive(sizes: Sizes) -> list[Line]:
    with _simulator(0, _kst_clock()) as (base, _pid):
        cycles = time_cycles(base, sizes.cycle_trials)
    on = [c for c in cycles if c.archive]
    off = [c for c in cycles if not c.archive]
    wall_on, wall_off = statistics.median(c.wall for c in on), statistics.median(c.wall for c in off)
    cpu_on, cpu_off = statistics.median(c.cpu for c in on), statistics.median(c.cpu for c in off)
    ratio = wall_on / wall_off
    one = on[len(on) // 2]
    every = "; ".join(
        f"{'on' if archive else 'off'} " + ", ".join(f"{c.wall:.2f}" for c in cycles if c.archive == archive)
        for archive in (True, False)
    )
    added = cpu_on - cpu_off
    return [
        Line(
            "archive",
            "a cycle (every job, default settings): wall, archive on / off",
            wall_on,
            "s",
            wall_off,
            "archive off",
            ratio,
            f"≤ {CYCLE_TARGET:.2f}",
            ratio <= CYCLE_TARGET,
            f"medians of {len(on)} + {len(off)} cycles, ABBA, each in a fresh database ({every} s); "
            f"{one.requests} requests, {one.responses} archived: {one.received / MB:.2f} MB received, "
            f"{one.stored / MB:.2f} MB stored; the default rate limits bound the wall time",
        ),
        Line(
            "archive",
            "a cycle: CPU of the process, archive on / off",
            cpu_on,
            "s",
            cpu_off,
            "archive off",
            cpu_on / cpu_off if cpu_off else None,
            "report",
            None,
            f"medians; the archive adds {added * 1000:+.0f} ms of CPU a cycle, {added / wall_off * 100:+.1f} % of "
            f"the cycle's wall time ({added / max(one.responses, 1) * 1000:.2f} ms a response)",
        ),
    ]
