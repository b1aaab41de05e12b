"""Section 3b, the ``loader`` on PostgreSQL (when the config's database is PostgreSQL): our upsert against
asyncpg's ``executemany`` and ``COPY``, in a throwaway database of the configured server."""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.engine import make_url

from pipeline.bench.harness import Line, Sizes, register_postgres
from pipeline.bench.loader import synthetic_readings
from pipeline.load.db import create_engine, display_url, upgrade_sync
from pipeline.load.rows import encode_readings
from pipeline.load.tables import air_readings
from pipeline.load.upsert import upsert_air_readings
from pipeline.load.writer import Writer
from pipeline.redaction import redact
from pipeline.transform.airkorea import AirBatch, AirReading


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
            assert prepared.bulk is not None
            sql, columns, bulk = prepared.sql, list(prepared.columns), prepared.bulk
            batch = AirBatch.from_readings(rows)  # what the transform hands the loader
            tuples = encode_readings(prepared.codec, batch, 1, now).rows

            async def ours() -> None:
                await upsert_air_readings(writer, batch, 1, now)

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
                        # the loader's own staging table and merge, on the driver's connection
                        await conn.execute(bulk.create)
                        await conn.copy_records_to_table(
                            bulk.stage, records=tuples[begin : begin + chunk], columns=columns
                        )
                        await conn.execute(bulk.merge)
                        await conn.execute(bulk.truncate)

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


@register_postgres("loader")
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
        copy_name = "COPY (rows/s)" if label == "fresh" else "COPY to staging + the loader's merge (rows/s)"
        lines += [
            Line(
                "loader",
                f"PostgreSQL: upsert {n:,} readings, {shown}",
                ours,
                "rows/s",
                baseline=many,
                baseline_name="asyncpg executemany (rows/s)",
                ratio=ours / many,
                target="≥ 0.80",
                passed=ours / many >= 0.8,
                note=f"median of {repeats}; {where}",
            ),
            Line(
                "loader",
                f"PostgreSQL: ours vs COPY, {label}",
                ours,
                "rows/s",
                baseline=copy,
                baseline_name=copy_name,
                ratio=ours / copy,
                target="report",
            ),
        ]
    return lines
