"""Section 6, ``queries``: the views on a year of hourly readings."""

from __future__ import annotations

import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.bench.harness import Line, Sizes, insert_sql, register
from pipeline.load.db import upgrade_sync
from pipeline.load.rows import sqlite_datetime
from pipeline.load.tables import air_readings, air_stations


def generate_year(path: Path, days: int, stations: int) -> int:
    """A migrated database with ``days`` of hourly readings for ``stations`` stations (raw inserts: fast)."""
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    rng = random.Random(11)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stamp = "2026-01-01 00:00:00"
    names = [f"측정소{i:03d}" for i in range(stations)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        insert_sql(air_stations, "station_name", "sido_name", "first_seen_at", "updated_at"),
        [(n, ["서울", "부산", "경기"][i % 3], stamp, stamp) for i, n in enumerate(names)],
    )
    conn.execute("COMMIT")
    hours = [sqlite_datetime(start + timedelta(hours=h)) for h in range(days * 24)]
    sql = insert_sql(
        air_readings,
        "station_name",
        "measured_at",
        "so2",
        "co",
        "o3",
        "no2",
        "pm10",
        "pm25",
        "khai",
        "pm10_grade",
        "pm25_grade",
        "updated_at",
    )
    total = 0
    for name in names:
        conn.execute("BEGIN")
        conn.executemany(
            sql,
            ((name, h, 0.003, 0.4, 0.03, 0.02, rng.randint(5, 90), rng.randint(2, 40), 60, 1, 1, stamp) for h in hours),
        )
        conn.execute("COMMIT")
        total += len(hours)
    conn.execute("ANALYZE")
    conn.close()
    return total


def _time_query(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = (), repeat: int = 7) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


QUERIES = {
    "air_latest (every station's newest reading)": ("SELECT * FROM air_latest", (), 50.0),
    "one station's air_daily for a year": (
        "SELECT * FROM air_daily WHERE station_name = ? ORDER BY kst_date",
        ("측정소042",),
        20.0,
    ),
    "one station's readings for a week": (
        "SELECT * FROM air_readings WHERE station_name = ? AND measured_at >= ? AND measured_at < ? "
        "ORDER BY measured_at",
        ("측정소042", "2026-03-01 00:00:00", "2026-03-08 00:00:00"),
        5.0,
    ),
}


@register("queries")
def bench_queries(sizes: Sizes) -> list[Line]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "year.db"
        started = time.perf_counter()
        total = generate_year(path, sizes.query_days, sizes.query_stations)
        generated = time.perf_counter() - started
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            lines = []
            for name, (sql, params, target) in QUERIES.items():
                ms = _time_query(conn, sql, params)
                lines.append(
                    Line(
                        "queries",
                        f"{name}, {total:,} rows",
                        ms,
                        "ms",
                        target=f"≤ {target:g}",
                        passed=ms <= target,
                        note=f"median of 7; data generated in {generated:.0f}s",
                    )
                )
        finally:
            conn.close()
    return lines
