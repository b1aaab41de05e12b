"""``pipeline bench``: speed and footprint, each beside a baseline measured in the same run.

Absolute times drift on shared machines, so every line is a ratio to something measured alongside it. The
simulator always runs in its own process (``pipeline simulate``), as a real API would.

Sections: ``extract`` (concurrent requests against the ideal bound, and against sequential ``requests``),
``loader`` (our upsert against raw ``sqlite3`` executemany, fresh and over the same rows; dlt when installed),
``backfill`` (the nationwide 3-month backfill end to end), ``daemon`` (idle footprint after one cycle) and
``queries`` (the views on a year of hourly readings).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy.engine import make_url

from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract.http import SourceClient
from pipeline.load.db import create_engine, display_url, upgrade_sync
from pipeline.load.tables import air_readings
from pipeline.load.upsert import Writer, reading_rows, sqlite_datetime
from pipeline.redaction import redact
from pipeline.resources import proc_cpu_seconds, proc_rss_mb
from pipeline.simulator import SIM_DATA_GO_KEY, SIM_TMDB_API_KEY
from pipeline.transform.airkorea import AirReading

SECTIONS = ("extract", "loader", "backfill", "daemon", "queries")
DLT_ROWS = 20_000
ZONE_KST = ZoneInfo("Asia/Seoul")


@dataclass
class Line:
    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class Sizes:
    requests: int
    concurrency: int
    latency_ms: float
    loader_rows: int
    backfill_args: tuple[str, ...]
    idle_seconds: float
    query_days: int
    query_stations: int
    backfill_trials: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(500, 10, 50, 200_000, ("--all-stations",), 60, 365, 670, 3)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(100, 10, 20, 20_000, ("--sido", "서울"), 5, 30, 100, 1)


# --- helpers ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def simulator_process(latency_ms: float = 0.0, clock: str | None = None) -> Iterator[str]:
    """``pipeline simulate`` in its own process; yields its base URL."""
    with _simulator(latency_ms, clock) as (base, _pid):
        yield base


@contextmanager
def _simulator(latency_ms: float = 0.0, clock: str | None = None) -> Iterator[tuple[str, int]]:
    """``pipeline simulate`` in its own process; yields its base URL and process id."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "pipeline",
        "--log-level",
        "WARNING",
        "simulate",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
    ]
    if clock:
        args += ["--clock", clock]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PIPELINE_CONFIG",)}
    return env | {"TMDB_API_KEY": SIM_TMDB_API_KEY, "DATA_GO_API_KEY": SIM_DATA_GO_KEY}


def _config(path: Path, base: str, extra: str = "") -> Path:
    config = path / "config.yaml"
    config.write_text(
        f"""
database: {{url: "sqlite+aiosqlite:///{path / "bench.db"}"}}
sources:
  tmdb: {{base_url: "{base}/3", rate_limit: 40}}
  airkorea: {{base_url: "{base}/B552584", rate_limit: 50, concurrency: 4, daily_quota: 100000}}
{extra}""",
        encoding="utf-8",
    )
    return config


def _kst_clock() -> str:
    """A fixed simulator clock: this hour, 30 minutes past, in KST."""
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    return now.astimezone(ZONE_KST).isoformat()


# --- 1 + 2: extract ---------------------------------------------------------------------------------------


async def _concurrent(base: str, n: int, concurrency: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, limit_per_host=32)) as session:
        client = SourceClient(
            session,
            source="airkorea",
            base_url=f"{base}/B552584/{airkorea_extract.SERVICE}",
            classify=airkorea_extract.classify,
            concurrency=concurrency,
            rate_limit=100_000.0,
            timeout=30,
            attempts=1,
            max_retry_time=30,
            params={"serviceKey": SIM_DATA_GO_KEY},
        )
        params = {"sidoName": "세종", "returnType": "json", "numOfRows": "100", "ver": "1.5"}
        await client.get(airkorea_extract.SIDO_OPERATION, params, "warm-up")
        started = time.perf_counter()
        pages = await asyncio.gather(*(client.get(airkorea_extract.SIDO_OPERATION, params, "bench") for _ in range(n)))
        elapsed = time.perf_counter() - started
    assert all(page.items for page in pages)
    return elapsed


def _sequential_requests(base: str, n: int) -> float:
    import requests  # the synchronous way the pipeline replaces (an optional bench dependency)

    url = f"{base}/B552584/{airkorea_extract.SERVICE}/{airkorea_extract.SIDO_OPERATION}"
    params = {"serviceKey": SIM_DATA_GO_KEY, "sidoName": "세종", "returnType": "json", "numOfRows": "100", "ver": "1.5"}
    with requests.Session() as session:
        session.get(url, params=params, timeout=30).raise_for_status()
        started = time.perf_counter()
        for _ in range(n):
            response = session.get(url, params=params, timeout=30)
            response.raise_for_status()
            response.json()
        return time.perf_counter() - started


def bench_extract(sizes: Sizes) -> list[Line]:
    n, c, latency = sizes.requests, sizes.concurrency, sizes.latency_ms / 1000
    with simulator_process(sizes.latency_ms) as base:
        ours = asyncio.run(_concurrent(base, n, c))
        ideal = math.ceil(n / c) * latency
        lines = [
            Line(
                "extract",
                f"{n} requests, concurrency {c}, latency {sizes.latency_ms:.0f} ms",
                ours,
                "s",
                ideal,
                "ideal ceil(N/C)×L",
                ours / ideal,
                "≤ 1.10",
                ours / ideal <= 1.10,
            )
        ]
        try:
            seed = _sequential_requests(base, n)
        except ImportError:
            lines.append(
                Line(
                    "extract",
                    "sequential requests (seed's way)",
                    math.nan,
                    "s",
                    note="requests is not installed: pip install -e '.[bench]'",
                )
            )
            return lines
    speedup = seed / ours
    lines.append(
        Line(
            "extract",
            "speed-up over sequential requests",
            speedup,
            "×",
            seed,
            "requests, sequential (s)",
            speedup / c,
            f"≥ {0.9 * c:.0f}× (0.9 × C)",
            speedup >= 0.9 * c,
        )
    )
    return lines


# --- 3: loader --------------------------------------------------------------------------------------------


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
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executemany(
            "INSERT INTO air_stations (station_name, sido_name, first_seen_at, updated_at) VALUES (?, '서울', ?, ?)",
            [(s, "2026-01-01 00:00:00", "2026-01-01 00:00:00") for s in station_names],
        )
        conn.execute(
            "INSERT INTO runs (id, job, trigger, started_at, status, requests, rows_fetched, rows_upserted, "
            "rows_rejected) VALUES (1, 'bench', 'manual', '2026-01-01 00:00:00', 'running', 0, 0, 0, 0)"
        )
    return url


async def _ours(url: str, rows: list[AirReading]) -> tuple[float, float, str]:
    engine = create_engine(url)
    try:
        writer = Writer(engine)
        now = datetime.now(UTC)
        timings = []
        for _ in range(2):  # fresh, then the same rows again (all conflicts)
            started = time.perf_counter()
            await writer.upsert_air_readings(rows, 1, now)
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
            Line("loader", f"upsert {n:,} readings, {label}", n / ours_s, "rows/s", n / raw_s,
                 "raw sqlite3 executemany (rows/s)", ratio, "≥ 0.80", ratio >= 0.8, note=f"median of {repeats}")
        )  # fmt: skip
    if peer is None:
        lines.append(
            Line("loader", "dlt (sqlalchemy destination, merge)", math.nan, "rows/s",
                 note="dlt is not installed (optional: pip install -e '.[bench]')")
        )  # fmt: skip
    else:
        for index, label in enumerate(("fresh", "again")):
            ours_rate = n / statistics.median(t[index] for t in ours)
            peer_rate = len(peer_rows) / peer[index]
            lines.append(
                Line("loader", f"ours vs dlt merge, {label}", ours_rate, "rows/s", peer_rate,
                     f"dlt merge of {len(peer_rows):,} rows (rows/s)", ours_rate / peer_rate, "report")
            )  # fmt: skip
    return lines


# --- 3b: loader on PostgreSQL (when the config's database is PostgreSQL) --------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin(dsn: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_trials(url: str, rows: list[AirReading], repeats: int, chunk: int) -> dict[str, list[float]]:
    """Our writer, asyncpg ``executemany`` and ``COPY`` on a throwaway database of the configured server.

    Each method loads the rows fresh (into an emptied table) and then again (all conflicts): ``executemany`` of
    the statement our writer renders; ``COPY`` straight into the table fresh, and again ``COPY`` into a staging
    table then one ``INSERT … SELECT … ON CONFLICT DO UPDATE`` (PostgreSQL's bulk upsert). Same chunks, one
    transaction each.
    """
    import asyncpg

    name = f"pipeline_bench_{os.getpid()}_{secrets.token_hex(3)}"
    server = _asyncpg_dsn(url)
    await _pg_admin(server, f'CREATE DATABASE "{name}"')
    bench_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    timings: dict[str, list[float]] = {}
    try:
        await asyncio.to_thread(upgrade_sync, bench_url)
        now = datetime.now(UTC)
        engine = create_engine(bench_url)
        conn = await asyncpg.connect(_asyncpg_dsn(bench_url), timeout=10)
        try:
            await conn.executemany(
                "INSERT INTO air_stations (station_name, sido_name, first_seen_at, updated_at) "
                "VALUES ($1, '서울', $2, $2)",
                [(s, now) for s in sorted({r.station_name for r in rows})],
            )
            await conn.execute(
                "INSERT INTO runs (id, job, trigger, started_at, status, requests, rows_fetched, rows_upserted, "
                "rows_rejected) VALUES (1, 'bench', 'manual', now(), 'running', 0, 0, 0, 0)"
            )
            writer = Writer(engine, chunk_size=chunk)
            prepared = writer.prepare(air_readings)
            assert prepared.sql is not None
            sql, columns = prepared.sql, list(prepared.columns)
            tuples = reading_rows(rows, 1, now, sqlite_form=False)
            await conn.execute("CREATE UNLOGGED TABLE stage_air (LIKE air_readings)")
            upsert_from_stage = "INSERT INTO air_readings SELECT * FROM stage_air" + sql[sql.index(" ON CONFLICT") :]

            async def ours() -> None:
                await writer.upsert_air_readings(rows, 1, now)

            async def executemany() -> None:
                for begin in range(0, len(tuples), chunk):
                    async with conn.transaction():
                        await conn.executemany(sql, tuples[begin : begin + chunk])

            async def copy(again: bool) -> None:
                for begin in range(0, len(tuples), chunk):
                    async with conn.transaction():
                        if not again:
                            await conn.copy_records_to_table(
                                "air_readings", records=tuples[begin : begin + chunk], columns=columns
                            )
                            continue
                        await conn.execute("TRUNCATE stage_air")
                        await conn.copy_records_to_table(
                            "stage_air", records=tuples[begin : begin + chunk], columns=columns
                        )
                        await conn.execute(upsert_from_stage)

            methods: dict[str, Callable[[bool], Awaitable[None]]] = {
                "ours": lambda _again: ours(),
                "executemany": lambda _again: executemany(),
                "copy": copy,
            }
            for _ in range(repeats):  # interleaved, so that drift hits every method alike
                for method, load in methods.items():
                    await conn.execute("TRUNCATE air_readings")
                    await conn.execute("CHECKPOINT")
                    for again in (False, True):
                        started = time.perf_counter()
                        await load(again)
                        timings.setdefault(f"{method} {'again' if again else 'fresh'}", []).append(
                            time.perf_counter() - started
                        )
        finally:
            await conn.close()
            await engine.dispose()
    finally:
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}"')
    return timings


def bench_loader_postgres(sizes: Sizes, url: str, repeats: int = 3) -> list[Line]:
    """The loader lines on PostgreSQL: our upsert against asyncpg's ``executemany`` and ``COPY``."""
    rows = synthetic_readings(sizes.loader_rows)
    n = len(rows)
    where = display_url(url)
    try:
        timings = asyncio.run(_pg_trials(url, rows, repeats, 5000))
    except Exception as exc:  # no CREATEDB right, server gone: the line says why, the other sections still run
        message = redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return [Line("loader", f"PostgreSQL ({where})", math.nan, "rows/s", note=f"not measured: {message}")]

    def rate(key: str) -> float:
        return n / statistics.median(timings[key])

    lines = []
    for label in ("fresh", "again"):
        ours, many, copy = rate(f"ours {label}"), rate(f"executemany {label}"), rate(f"copy {label}")
        shown = "fresh" if label == "fresh" else "again (all conflicts)"
        copy_name = "COPY (rows/s)" if label == "fresh" else "COPY to staging + INSERT…SELECT upsert (rows/s)"
        lines += [
            Line("loader", f"PostgreSQL: upsert {n:,} readings, {shown}", ours, "rows/s", many,
                 "asyncpg executemany (rows/s)", ours / many, "≥ 0.80", ours / many >= 0.8,
                 note=f"median of {repeats}; {where}"),
            Line("loader", f"PostgreSQL: ours vs COPY, {label}", ours, "rows/s", copy, copy_name, ours / copy,
                 "report"),
        ]  # fmt: skip
    return lines


# --- 4: backfill ------------------------------------------------------------------------------------------


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
        subprocess.run([*pipeline, "--log-level", "ERROR", "run", "--once", "--config", str(config),
                        "--job", "airkorea_sido"], env=_env(), check=True, capture_output=True)  # fmt: skip
        args = [*pipeline, "--log-level", "WARNING", "backfill", "airkorea", "--config", str(config),
                "--from", first.isoformat(), "--to", today.isoformat(), *sizes.backfill_args]  # fmt: skip
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


def bench_backfill(sizes: Sizes) -> list[Line]:
    """The median of ``sizes.backfill_trials`` backfills (a shared machine has slow spells), each into a
    fresh database; its CPU per process and stages are shown, with every trial's rate."""
    with _simulator(0, _kst_clock()) as (base, simulator_pid):
        trials = sorted((_backfill_trial(base, simulator_pid, sizes) for _ in range(sizes.backfill_trials)),
                        key=lambda trial: trial.rate)  # fmt: skip
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
        Line("backfill", f"{' '.join(sizes.backfill_args)} 3 months, {median.rows:,} rows, end to end", rate,
             "rows/s", target="≥ 50,000", passed=rate >= 50_000,
             note=f"median of {len(trials)} ({every}); {timing}; {cpu}; stages: {stages}"),
        Line("backfill", "peak RSS: backfill process + parse worker", rss_main + rss_worker, "MB", target="≤ 300",
             passed=rss_main + rss_worker <= 300,
             note=f"main {rss_main:.0f} MB, worker {rss_worker:.0f} MB (the largest of {len(trials)})"),
    ]  # fmt: skip


# --- 5: daemon footprint ----------------------------------------------------------------------------------


def bench_daemon(sizes: Sizes) -> list[Line]:
    with simulator_process(0) as base, tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), base)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--log-level", "WARNING", "run", "--config", str(config)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    with sqlite3.connect(Path(tmp) / "bench.db") as conn:
                        done = conn.execute("SELECT count(DISTINCT job) FROM runs WHERE status = 'success'").fetchone()
                except sqlite3.Error:
                    continue
                if done[0] >= 3:
                    break
            else:
                raise RuntimeError("the daemon did not finish its first cycle")
            time.sleep(1)
            rss = proc_rss_mb(proc.pid)
            cpu_before = proc_cpu_seconds(proc.pid)
            time.sleep(sizes.idle_seconds)
            cpu = (proc_cpu_seconds(proc.pid) - cpu_before) / sizes.idle_seconds * 100
        finally:
            proc.terminate()
            proc.wait(60)
    return [
        Line("daemon", "RSS of the idle daemon after one cycle", rss, "MB", target="≤ 100", passed=rss <= 100),
        Line(
            "daemon",
            f"CPU of the idle daemon over {sizes.idle_seconds:.0f}s",
            cpu,
            "% of a core",
            target="report",
            note="scheduler timers only",
        ),
    ]


# --- issue 6: queries at a year's scale -----------------------------------------------------------------------


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
        "INSERT INTO air_stations (station_name, sido_name, first_seen_at, updated_at) VALUES (?, ?, ?, ?)",
        [(n, ["서울", "부산", "경기"][i % 3], stamp, stamp) for i, n in enumerate(names)],
    )
    conn.execute("COMMIT")
    hours = [sqlite_datetime(start + timedelta(hours=h)) for h in range(days * 24)]
    sql = (
        "INSERT INTO air_readings (station_name, measured_at, so2, co, o3, no2, pm10, pm25, khai, pm10_grade, "
        "pm25_grade, updated_at) VALUES (?, ?, 0.003, 0.4, 0.03, 0.02, ?, ?, 60, 1, 1, ?)"
    )
    total = 0
    for name in names:
        conn.execute("BEGIN")
        conn.executemany(sql, ((name, h, rng.randint(5, 90), rng.randint(2, 40), stamp) for h in hours))
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


RUNNERS: dict[str, Callable[[Sizes], list[Line]]] = {
    "extract": bench_extract,
    "loader": bench_loader,
    "backfill": bench_backfill,
    "daemon": bench_daemon,
    "queries": bench_queries,
}


def run(sections: list[str], quick: bool, report: Callable[[Line], None], postgres: str | None = None) -> list[Line]:
    """Run ``sections``; with ``postgres`` (the config's PostgreSQL URL) the loader is measured there too."""
    sizes = Sizes.quick() if quick else Sizes.full()
    lines: list[Line] = []
    for section in sections:
        found = RUNNERS[section](sizes)
        if section == "loader" and postgres:
            found += bench_loader_postgres(sizes, postgres)
        for line in found:
            lines.append(line)
            report(line)
    return lines


def format_line(line: Line) -> str:
    def num(value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"

    verdict = {True: "PASS", False: "FAIL", None: ""}[line.passed]
    baseline = f"{num(line.baseline)} {line.baseline_name}" if line.baseline is not None else "-"
    ratio = num(line.ratio) if line.ratio is not None else "-"
    text = (
        f"{line.section:<9} {line.name:<62} {num(line.value):>12} {line.unit:<12} baseline {baseline:<40} "
        f"ratio {ratio:<8} target {line.target:<14} {verdict}"
    )
    return text + (f"  ({line.note})" if line.note else "")


def write_json(lines: list[Line], path: Path, quick: bool) -> None:
    payload = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version},
        "lines": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(line).items()}
            for line in lines
        ],
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
