"""Section 4, ``backfill``: the nationwide 3-month backfill end to end, against the simulator in its own process."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.bench.harness import ZONE_KST, Line, Sizes, _config, _env, _kst_clock, _simulator, register
from pipeline.resources import proc_cpu_seconds


@dataclass(frozen=True)
class BackfillTrial:
    rows: int
    seconds: float  # the run, as the backfill timed itself
    wall: float  # the process, imports and migration check included
    simulator_cpu: float
    details: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def _backfill_trial(base: str, simulator_pid: int, sizes: Sizes) -> BackfillTrial:
    """One nationwide backfill into a fresh database, against the running simulator."""
    today = datetime.now(ZONE_KST).date()
    first = today - timedelta(days=89)
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), base)
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
        with sqlite3.connect(Path(tmp) / "bench.db") as conn:
            rows = conn.execute("SELECT rows_upserted, details FROM runs WHERE job = 'backfill_airkorea'").fetchone()
    details = json.loads(rows[1])
    return BackfillTrial(int(rows[0]), float(details["seconds_total"]), wall, simulator_cpu, details)


@register("backfill")
def bench_backfill(sizes: Sizes) -> list[Line]:
    """The median of ``sizes.backfill_trials`` backfills (a shared machine has slow spells), each into a
    fresh database; its CPU per process and stages are shown, with every trial's rate."""
    with _simulator(0, _kst_clock()) as (base, simulator_pid):
        trials = sorted(
            (_backfill_trial(base, simulator_pid, sizes) for _ in range(sizes.backfill_trials)),
            key=lambda trial: trial.rate,
        )
    median = trials[len(trials) // 2]
    details = median.details
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(details.get("stages", {}).items()))
    rss_main = max(float(t.details["peak_rss_mb"]) for t in trials)
    rss_worker = max(float(t.details["worker_peak_rss_mb"]) for t in trials)
    cpu = (
        f"CPU: backfill {details['cpu_seconds']:.1f}s, parse worker {details['worker_cpu_seconds']:.1f}s, "
        f"simulator {median.simulator_cpu:.1f}s"
    )
    timing = f"run {median.seconds:.1f}s (process wall {median.wall:.1f}s: {median.rows / median.wall:,.0f} rows/s)"
    every = ", ".join(f"{t.rate:,.0f}" for t in trials)
    rate = median.rate
    return [
        Line(
            "backfill",
            f"{' '.join(sizes.backfill_args)} 3 months, {median.rows:,} rows, end to end",
            rate,
            "rows/s",
            target="≥ 50,000",
            passed=rate >= 50_000,
            note=f"median of {len(trials)} ({every}); {timing}; {cpu}; stages: {stages}",
        ),
        Line(
            "backfill",
            "peak RSS: backfill process + parse worker",
            rss_main + rss_worker,
            "MB",
            target="≤ 300",
            passed=rss_main + rss_worker <= 300,
            note=f"main {rss_main:.0f} MB, worker {rss_worker:.0f} MB (the largest of {len(trials)})",
        ),
    ]
