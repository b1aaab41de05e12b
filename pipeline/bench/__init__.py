"""``pipeline bench``: speed and footprint, each beside a baseline measured in the same run.

Absolute times drift on shared machines, so every line is a ratio to something measured alongside it. The
simulator always runs in its own process (``pipeline simulate``), as a real API would.

Sections: ``extract`` (concurrent requests against the ideal bound, and against sequential ``requests``),
``loader`` (our upsert against raw ``sqlite3`` executemany of the unconditional upsert: fresh, again over
unchanged rows, again with 5 % changed; dlt when installed),
``backfill`` (the nationwide 3-month backfill end to end), ``daemon`` (idle footprint after one cycle),
``queries`` (the views on a year of hourly readings), ``day`` (a simulated day at the default timetable
beside the old default — calls, requests, completeness, the raw archive's bytes — and ``gaps`` on a year of
the ledger; its simulator runs in process, so that the bench can move its clock) and ``archive`` (the raw
archive's cost on a cycle; its cost on the backfill, and replay, are in ``backfill``).

One module per section, each registering its runner with the harness (``harness.py``: the lines, the sizes,
the simulator process, the run). Importing this package imports every section, so the registry is complete.
"""

from __future__ import annotations

from pipeline.bench.archive import bench_archive
from pipeline.bench.backfill import bench_backfill
from pipeline.bench.daemon import bench_daemon
from pipeline.bench.day import bench_day, simulate_day, time_gaps
from pipeline.bench.extract import bench_extract
from pipeline.bench.harness import SECTIONS, Line, Sizes, format_line, run, simulator_process, write_json
from pipeline.bench.loader import bench_loader, synthetic_readings
from pipeline.bench.loader_pg import bench_loader_postgres
from pipeline.bench.queries import QUERIES, bench_queries
from pipeline.bench.web import bench_web

__all__ = [
    "QUERIES",
    "SECTIONS",
    "Line",
    "Sizes",
    "bench_archive",
    "bench_backfill",
    "bench_daemon",
    "bench_day",
    "bench_extract",
    "bench_loader",
    "bench_loader_postgres",
    "bench_queries",
    "bench_web",
    "format_line",
    "run",
    "simulate_day",
    "simulator_process",
    "synthetic_readings",
    "time_gaps",
    "write_json",
]
