"""Section 3, ``loader``: our upsert against raw ``sqlite3`` executemany, fresh and over the same rows; dlt when
installed."""

from __future__ import annotations

import asyncio
import math
import os
import random
import sqlite3
import statistics
import tempfile
import time
import warnings
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.bench.harness import Line, Sizes, insert_sql, register
from pipeline.load.db import create_engine, upgrade_sync
from pipeline.load.rows import sqlite_datetime
from pipeline.load.tables import air_readings, air_stations, runs
from pipeline.load.upsert import upsert_air_readings
from pipeline.load.writer import Writer
from pipeline.transform.airkorea import AirBatch, AirReading

DLT_ROWS = 20_000


def synthetic_readings(n: int, stations: int = 670, seed: int = 7) -> list[AirReading]:
    """``n`` readings: hourly series of ``stations`` stations, values as the API's ranges."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[AirReading] = []
    hours = math.ceil(n / stations)
    for s in range(stations):
        name = f"station-{s:04d}"
        for h in range(hours):
            if len(rows) == n:
                break
            pm10 = rng.randint(5, 120)
            rows.append(
                AirReading(
                    name,
                    start + timedelta(hours=h),
                    0.003,
                    0.4,
                    0.03,
                    0.02,
                    pm10,
                    pm10 // 2,
                    pm10,
                    pm10 // 2,
                    60,
                    1,
                    1,
                    2,
                    1,
                    2,
                    1,
                    2,
                    1,
                    2,
                    None,
                    None,
                    None,
                    None,
                    None if pm10 > 10 else "통신장애",
                    None,
                )
            )
    return rows


def _prepared_database(path: Path, station_names: list[str]) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    upgrade_sync(url)
    stamp = "2026-01-01 00:00:00"
    station_sql = insert_sql(air_stations, "station_name", "sido_name", "first_seen_at", "updated_at")
    run_sql = insert_sql(
        runs,
        "id",
        "job",
        "trigger",
        "started_at",
        "status",
        "requests",
        "rows_fetched",
        "rows_upserted",
        "rows_rejected",
    )
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executemany(station_sql, [(s, "서울", stamp, stamp) for s in station_names])
        conn.execute(run_sql, (1, "bench", "manual", stamp, "running", 0, 0, 0, 0))
    return url


async def _ours(url: str, rows: list[AirReading]) -> tuple[float, float, str]:
    """Our loader from what the transform hands it (a columnar batch), as raw executemany is handed its tuples."""
    engine = create_engine(url)
    batch = AirBatch.from_readings(rows)
    try:
        writer = Writer(engine)
        now = datetime.now(UTC)
        timings = []
        for _ in range(2):  # fresh, then the same rows again (all conflicts)
            started = time.perf_counter()
            await upsert_air_readings(writer, batch, 1, now)
            timings.append(time.perf_counter() - started)
        prepared = writer.prepare(air_readings)
        assert prepared.sql is not None
        return timings[0], timings[1], prepared.sql
    finally:
        await engine.dispose()


def _raw(path: Path, sql: str, rows: list[AirReading], chunk: int) -> tuple[float, float]:
    """Raw sqlite3 executemany, same statement, same chunked transactions, same pragmas as the engine's."""
    now = sqlite_datetime(datetime.now(UTC))
    names = [f.name for f in fields(AirReading)]
    tuples = []
    for reading in rows:
        values = [
            sqlite_datetime(v) if n == "measured_at" else v for n, v in zip(names, astuple_fast(reading), strict=True)
        ]
        tuples.append((*values, 1, now))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    timings = []
    try:
        for _ in range(2):
            started = time.perf_counter()
            for begin in range(0, len(tuples), chunk):
                conn.execute("BEGIN")
                conn.executemany(sql, tuples[begin : begin + chunk])
                conn.execute("COMMIT")
            timings.append(time.perf_counter() - started)
    finally:
        conn.close()
    return timings[0], timings[1]


def astuple_fast(reading: AirReading) -> tuple[Any, ...]:
    return tuple(getattr(reading, f.name) for f in fields(AirReading))


def _dlt(rows: list[AirReading], workdir: Path) -> tuple[float, float] | None:
    # dlt logs through its own configuration: its warnings (all-NULL flag columns) are not ours to print
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    try:
        import dlt
    except ImportError:
        return None
    warnings.filterwarnings("ignore", module=r"dlt\.")  # SQLAlchemy warnings raised inside dlt's merge job
    records = [asdict(r) | {"measured_at": sqlite_datetime(r.measured_at)} for r in rows]
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        destination=dlt.destinations.sqlalchemy(f"sqlite:///{workdir / 'dlt.db'}"),
        dataset_name="bench",
        pipelines_dir=str(workdir / "dlt"),
    )
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        pipeline.run(
            records, table_name="air_readings", write_disposition="merge", primary_key=["station_name", "measured_at"]
        )
        timings.append(time.perf_counter() - started)
    return timings[0], timings[1]


@register("loader")
def bench_loader(sizes: Sizes, repeats: int = 3) -> list[Line]:
    """Median of ``repeats`` interleaved trials, each into fresh databases (ours, then raw, then ours …)."""
    rows = synthetic_readings(sizes.loader_rows)
    stations = sorted({r.station_name for r in rows})
    ours: list[tuple[float, float]] = []
    raw: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for trial in range(repeats):
            ours_url = _prepared_database(Path(tmp) / f"ours{trial}.db", stations)
            fresh, again, sql = asyncio.run(_ours(ours_url, rows))
            ours.append((fresh, again))
            _prepared_database(Path(tmp) / f"raw{trial}.db", stations)
            raw.append(_raw(Path(tmp) / f"raw{trial}.db", sql, rows, 5000))
        # dlt re-merges at ~1,000 rows/s: the peer line uses at most 20,000 rows (its rate is what is compared)
        peer_rows = rows[:DLT_ROWS]
        peer = _dlt(peer_rows, Path(tmp))
    n = len(rows)
    lines = []
    for index, label in enumerate(("fresh", "again (all conflicts)")):
        ours_s = statistics.median(t[index] for t in ours)
        raw_s = statistics.median(t[index] for t in raw)
        ratio = raw_s / ours_s
        lines.append(
            Line(
                "loader",
                f"upsert {n:,} readings, {label}",
                n / ours_s,
                "rows/s",
                baseline=n / raw_s,
                baseline_name="raw sqlite3 executemany (rows/s)",
                ratio=ratio,
                target="≥ 0.80",
                passed=ratio >= 0.8,
                note=f"median of {repeats}",
            )
        )
    if peer is None:
        lines.append(
            Line(
                "loader",
                "dlt (sqlalchemy destination, merge)",
                math.nan,
                "rows/s",
                note="dlt is not installed (optional: pip install -e '.[bench]')",
            )
        )
    else:
        for index, label in enumerate(("fresh", "again")):
            ours_rate = n / statistics.median(t[index] for t in ours)
            peer_rate = len(peer_rows) / peer[index]
            lines.append(
                Line(
                    "loader",
                    f"ours vs dlt merge, {label}",
                    ours_rate,
                    "rows/s",
                    baseline=peer_rate,
                    baseline_name=f"dlt merge of {len(peer_rows):,} rows (rows/s)",
                    ratio=ours_rate / peer_rate,
                    target="report",
                )
            )
    return lines
