"""Section 3, ``loader``: our upsert against raw ``sqlite3`` executemany of today's unconditional upsert — fresh,
again over unchanged rows, and again with 5 % of them changed; dlt when installed.

Each trial loads one database per side three times in a row (:func:`loads`): the rows into an empty table (run
1), the same rows an hour later (run 2: nothing changed, so our write-nothing upsert writes nothing), and the
rows with every 20th reading's PM10 revised an hour after that (run 3). Both databases run the migrations, so
both carry the same schema and the revision trigger: the raw statement rewrites every row each time, and the
trigger records a revision wherever the values did change, as it does for ours. After each load the bench
counts what the database holds (rows of that run, revisions of that run), untimed, and a line whose counts are
not the expected ones fails, whatever its speed.
"""

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
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, Table
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from pipeline.bench.harness import Line, Sizes, insert_sql, register
from pipeline.load.db import create_engine, upgrade_sync
from pipeline.load.rows import sqlite_datetime
from pipeline.load.statements import UpsertOptions, prepare_upsert
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


#: the ``again, 5 % changed`` load revises every this many-th reading (its PM10 + 1)
CHANGE_EVERY = 20


def revised_readings(rows: Sequence[AirReading], every: int = CHANGE_EVERY) -> list[AirReading]:
    """``rows`` with every ``every``-th reading's PM10 one higher (a revision by AirKorea), from the first."""
    return [replace(r, pm10=(r.pm10 or 0) + 1) if i % every == 0 else r for i, r in enumerate(rows)]


@dataclass(frozen=True, slots=True)
class Load:
    """One timed upsert of a trial: ``readings`` written by run ``run_id`` at ``now``; ``written`` and
    ``revised`` are the rows new or changed and the revisions it must leave (our upsert)."""

    label: str
    readings: list[AirReading]
    run_id: int
    now: datetime
    written: int
    revised: int


def loads(rows: list[AirReading], now: datetime) -> tuple[Load, Load, Load]:
    """Fresh, again with nothing changed (a later run and time), again with 5 % revised (later still)."""
    changed = revised_readings(rows)
    count = sum(1 for old, new in zip(rows, changed, strict=True) if old is not new)
    return (
        Load("fresh", rows, 1, now, len(rows), 0),
        Load("again, unchanged", rows, 2, now + timedelta(hours=1), 0, 0),
        Load(f"again, {100 // CHANGE_EVERY} % changed", changed, 3, now + timedelta(hours=2), count, count),
    )


@dataclass(frozen=True, slots=True)
class Timed:
    """A load's time and what the database held after it: rows of its run, revisions of its run; and what
    our upsert returned (``None`` for the raw side)."""

    seconds: float
    stored: int
    revisions: int
    returned: int | None = None


def _prepared_database(path: Path, station_names: list[str], run_ids: Sequence[int]) -> str:
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
        conn.executemany(run_sql, [(i, "bench", "manual", stamp, "running", 0, 0, 0, 0) for i in run_ids])
    conn.close()
    return url


def _held(conn: sqlite3.Connection, run_id: int) -> tuple[int, int]:
    """Rows the run wrote and revisions it recorded (a scan of the table: ~20 ms on 200,000 rows, untimed)."""
    stored = conn.execute("SELECT count(*) FROM air_readings WHERE run_id = ?", (run_id,)).fetchone()[0]
    revisions = conn.execute("SELECT count(*) FROM air_reading_revisions WHERE run_id = ?", (run_id,)).fetchone()[0]
    return int(stored), int(revisions)


async def _ours(url: str, path: Path, trial: Sequence[Load]) -> tuple[list[Timed], str]:
    """Our loader from what the transform hands it (a columnar batch), as raw executemany is handed its tuples.

    Returns each load's figures and today's unconditional statement (``prepare`` without options), which the
    raw side runs."""
    engine = create_engine(url)
    try:
        writer = Writer(engine)
        timed = []
        for load in trial:
            batch = AirBatch.from_readings(load.readings)
            started = time.perf_counter()
            returned = await upsert_air_readings(writer, batch, load.run_id, load.now)
            seconds = time.perf_counter() - started
            with closing(sqlite3.connect(path)) as conn:
                timed.append(Timed(seconds, *_held(conn, load.run_id), returned))
        return timed, baseline_sql()
    finally:
        await engine.dispose()


def baseline_sql() -> str:
    """Today's unconditional upsert, as the loader ran it before write-nothing upserts: every column of
    ``air_readings`` but the values' digest, which came with them."""
    legacy = Table(
        "air_readings",
        MetaData(),
        *(Column(c.name, c.type, primary_key=c.primary_key) for c in air_readings.columns if c.name != "values_digest"),
    )
    sql = prepare_upsert(legacy, UpsertOptions("air_readings"), sqlite_dialect()).sql
    assert sql is not None
    return sql


def _tuples(load: Load) -> list[tuple[Any, ...]]:
    """A load's rows as raw ``sqlite3`` takes them (built by hand, untimed: the raw side is handed tuples)."""
    now = sqlite_datetime(load.now)
    names = [f.name for f in fields(AirReading)]
    tuples = []
    for reading in load.readings:
        values = [
            sqlite_datetime(v) if n == "measured_at" else v for n, v in zip(names, astuple_fast(reading), strict=True)
        ]
        tuples.append((*values, load.run_id, now))
    return tuples


def _raw(path: Path, sql: str, trial: Sequence[Load], chunk: int) -> list[Timed]:
    """Raw sqlite3 executemany of ``sql`` (today's unconditional upsert), same chunked transactions, same
    pragmas as the engine's."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    timed = []
    try:
        for load in trial:
            tuples = _tuples(load)
            started = time.perf_counter()
            for begin in range(0, len(tuples), chunk):
                conn.execute("BEGIN")
                conn.executemany(sql, tuples[begin : begin + chunk])
                conn.execute("COMMIT")
            seconds = time.perf_counter() - started
            timed.append(Timed(seconds, *_held(conn, load.run_id)))
    finally:
        conn.close()
    return timed


def astuple_fast(reading: AirReading) -> tuple[Any, ...]:
    return tuple(getattr(reading, f.name) for f in fields(AirReading))


def unexpected(load: Load, ours: Sequence[Timed], raw: Sequence[Timed], raw_name: str = "raw") -> str:
    """What the trials' counts got wrong for ``load`` ("" when all are as expected): ours must return and
    write ``load.written`` rows and record ``load.revised`` revisions; an unconditional baseline (``raw``)
    rewrites every row and records the same revisions."""
    n = len(load.readings)
    problems = []
    for t in ours:
        if (t.returned, t.stored, t.revisions) != (load.written, load.written, load.revised):
            returned = "nothing" if t.returned is None else f"{t.returned:,}"
            problems.append(
                f"ours returned {returned}, wrote {t.stored:,}, recorded {t.revisions:,} revisions "
                f"(expected {load.written:,}, {load.written:,}, {load.revised:,})"
            )
    for t in raw:
        if (t.stored, t.revisions) != (n, load.revised):
            problems.append(
                f"{raw_name} wrote {t.stored:,}, recorded {t.revisions:,} revisions (expected {n:,}, {load.revised:,})"
            )
    return "; ".join(dict.fromkeys(problems))


def _note(load: Load, repeats: int, n: int) -> str:
    same = "both databases: the same schema and revision trigger"
    if load.label == "fresh":
        return (
            f"median of {repeats}; ours includes the values' digests, the write-nothing statement (many rows a "
            f"statement) and the first chunk's pre-read; raw: the unconditional upsert, row by row; {same}"
        )
    share = f" ({100 * load.written / n:.0f} %)" if load.written else ""
    return (
        f"median of {repeats}; ours: {load.written:,} written{share}, {load.revised:,} revisions; raw rewrites all "
        f"{n:,} rows ({load.revised:,} revisions); {same}"
    )


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
def bench_loader(sizes: Sizes) -> list[Line]:
    """The section's lines: :func:`loader_lines` of three trials."""
    return loader_lines(sizes, repeats=3)


def loader_lines(sizes: Sizes, repeats: int) -> list[Line]:
    """Median of ``repeats`` interleaved trials, each into fresh databases (ours, then raw, then ours …), each
    trial the three :func:`loads` in a row."""
    rows = synthetic_readings(sizes.loader_rows)
    stations = sorted({r.station_name for r in rows})
    trial = loads(rows, datetime.now(UTC))
    run_ids = [load.run_id for load in trial]
    ours: list[list[Timed]] = []
    raw: list[list[Timed]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(repeats):
            ours_path, raw_path = Path(tmp) / f"ours{index}.db", Path(tmp) / f"raw{index}.db"
            timed, sql = asyncio.run(_ours(_prepared_database(ours_path, stations, run_ids), ours_path, trial))
            ours.append(timed)
            _prepared_database(raw_path, stations, run_ids)
            raw.append(_raw(raw_path, sql, trial, 5000))
        # dlt re-merges at ~1,000 rows/s: the peer line uses at most 20,000 rows (its rate is what is compared)
        peer_rows = rows[:DLT_ROWS]
        peer = _dlt(peer_rows, Path(tmp))
    n = len(rows)
    lines = []
    # the unchanged re-upsert writes nothing, so it must beat rewriting every row; the others must keep up
    targets = {"fresh": 0.8, "again, unchanged": 1.5}
    for index, load in enumerate(trial):
        ours_s = statistics.median(t[index].seconds for t in ours)
        raw_s = statistics.median(t[index].seconds for t in raw)
        ratio = raw_s / ours_s
        target = targets.get(load.label, 0.8)
        wrong = unexpected(load, [t[index] for t in ours], [t[index] for t in raw])
        note = _note(load, repeats, n)
        lines.append(
            Line(
                "loader",
                f"upsert {n:,} readings, {load.label}",
                n / ours_s,
                "rows/s",
                baseline=n / raw_s,
                baseline_name="raw sqlite3 executemany (rows/s)",
                ratio=ratio,
                target=f"≥ {target:.2f}",
                passed=ratio >= target and not wrong,
                note=f"UNEXPECTED: {wrong}; {note}" if wrong else note,
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
        for index, label in enumerate(("fresh", "again")):  # again: our unchanged re-upsert, dlt's re-merge
            ours_rate = n / statistics.median(t[index].seconds for t in ours)
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
                    note="" if index == 0 else "ours: the unchanged re-upsert; dlt: the same rows merged again",
                )
            )
    return lines
