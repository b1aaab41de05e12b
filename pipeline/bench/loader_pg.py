"""Section 3b, the ``loader`` on PostgreSQL (when the config's database is PostgreSQL): our upsert against
asyncpg's ``executemany`` of today's unconditional upsert and ``COPY``, in a throwaway database of the configured
server — fresh, again over unchanged rows and again with 5 % changed (the loads of :mod:`pipeline.bench.loader`).
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.engine import make_url

from pipeline.bench.harness import Line, Sizes, register_postgres
from pipeline.bench.loader import Load, Timed, loads, synthetic_readings, unexpected
from pipeline.load.db import create_engine, display_url, upgrade_sync
from pipeline.load.rows import encode_readings
from pipeline.load.tables import air_readings
from pipeline.load.upsert import upsert_air_readings
from pipeline.load.writer import Writer
from pipeline.redaction import redact
from pipeline.transform.airkorea import AirBatch


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


async def _pg_trials(
    url: str, trial: Sequence[Load], repeats: int, chunk: int
) -> tuple[dict[str, list[float]], dict[str, list[Timed]]]:
    """Our writer, asyncpg ``executemany`` and ``COPY`` on a throwaway database of the configured server.

    Each method loads the rows fresh (into emptied tables) and then the trial's other loads, in a row:
    ``executemany`` of today's unconditional statement (``prepare`` without options); ``COPY`` straight into
    the table fresh, and again ``COPY`` into a staging table then one ``INSERT … SELECT … ON CONFLICT DO
    UPDATE`` from it (PostgreSQL's bulk upsert, unconditional too). Same chunks, one transaction each. Returns
    the times, and each load's figures (:class:`~pipeline.bench.loader.Timed`), keyed ``"method label"``.
    """
    import asyncpg

    name = f"pipeline_bench_{os.getpid()}_{secrets.token_hex(3)}"
    server = _asyncpg_dsn(url)
    await _pg_admin(server, f'CREATE DATABASE "{name}"')
    bench_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    timings: dict[str, list[float]] = {}
    figures: dict[str, list[Timed]] = {}
    try:
        await asyncio.to_thread(upgrade_sync, bench_url)
        engine = create_engine(bench_url)
        conn = await asyncpg.connect(_asyncpg_dsn(bench_url), timeout=10)
        try:
            stamp = trial[0].now
            await conn.executemany(
                "INSERT INTO air_stations (station_name, sido_name, first_seen_at, updated_at) "
                "VALUES ($1, '서울', $2, $2)",
                [(s, stamp) for s in sorted({r.station_name for r in trial[0].readings})],
            )
            await conn.executemany(
                "INSERT INTO runs (id, job, trigger, started_at, status, requests, rows_fetched, rows_upserted, "
                "rows_rejected) VALUES ($1, 'bench', 'manual', now(), 'running', 0, 0, 0, 0)",
                [(load.run_id,) for load in trial],
            )
            writer = Writer(engine, chunk_size=chunk)
            prepared = writer.prepare(air_readings)  # today's unconditional upsert: the baselines' statement
            assert prepared.sql is not None
            assert prepared.bulk is not None
            sql, columns, bulk = prepared.sql, list(prepared.columns), prepared.bulk
            batches = [AirBatch.from_readings(load.readings) for load in trial]  # what the transform hands us
            encoded = [
                encode_readings(prepared.codec, batch, load.run_id, load.now).rows
                for batch, load in zip(batches, trial, strict=True)
            ]

            async def ours(index: int) -> int:
                load = trial[index]
                return await upsert_air_readings(writer, batches[index], load.run_id, load.now)

            async def executemany(index: int) -> None:
                tuples = encoded[index]
                for begin in range(0, len(tuples), chunk):
                    async with conn.transaction():
                        await conn.executemany(sql, tuples[begin : begin + chunk])

            async def copy(index: int) -> None:
                tuples = encoded[index]
                for begin in range(0, len(tuples), chunk):
                    async with conn.transaction():
                        if index == 0:
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

            methods: dict[str, Callable[[int], Awaitable[int | None]]] = {
                "ours": ours,
                "executemany": executemany,
                "copy": copy,
            }
            for _ in range(repeats):  # interleaved, so that drift hits every method alike
                for method, run in methods.items():
                    await conn.execute("TRUNCATE air_readings, air_reading_revisions")
                    await conn.execute("CHECKPOINT")
                    for index, load in enumerate(trial):
                        started = time.perf_counter()
                        returned = await run(index)
                        seconds = time.perf_counter() - started
                        key = f"{method} {load.label}"
                        timings.setdefault(key, []).append(seconds)
                        stored = await conn.fetchval("SELECT count(*) FROM air_readings WHERE run_id = $1", load.run_id)
                        revisions = await conn.fetchval(
                            "SELECT count(*) FROM air_reading_revisions WHERE run_id = $1", load.run_id
                        )
                        figures.setdefault(key, []).append(Timed(seconds, stored, revisions, returned))
        finally:
            await conn.close()
            await engine.dispose()
    finally:
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}"')
    return timings, figures


@register_postgres("loader")
def bench_loader_postgres(sizes: Sizes, url: str, repeats: int = 3) -> list[Line]:
    """The loader lines on PostgreSQL: our upsert against asyncpg's ``executemany`` and ``COPY``."""
    rows = synthetic_readings(sizes.loader_rows)
    n = len(rows)
    trial = loads(rows, datetime.now(UTC))
    where = display_url(url)
    try:
        timings, figures = asyncio.run(_pg_trials(url, trial, repeats, 5000))
    except Exception as exc:  # no CREATEDB right, server gone: the line says why, the other sections still run
        message = redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return [Line("loader", f"PostgreSQL ({where})", math.nan, "rows/s", note=f"not measured: {message}")]

    def rate(key: str) -> float:
        return n / statistics.median(timings[key])

    lines = []
    for load in trial:
        label = load.label
        ours, many, copy = rate(f"ours {label}"), rate(f"executemany {label}"), rate(f"copy {label}")
        wrong = "; ".join(
            found
            for found in (
                unexpected(load, figures[f"ours {label}"], figures[f"executemany {label}"]),
                unexpected(load, [], figures[f"copy {label}"], "COPY"),
            )
            if found
        )
        note = f"median of {repeats}; {where}" + (
            "" if label == "fresh" else f"; ours: {load.written:,} written, {load.revised:,} revisions"
        )
        copy_name = "COPY (rows/s)" if label == "fresh" else "COPY to staging + the loader's merge (rows/s)"
        lines += [
            Line(
                "loader",
                f"PostgreSQL: upsert {n:,} readings, {label}",
                ours,
                "rows/s",
                baseline=many,
                baseline_name="asyncpg executemany (rows/s)",
                ratio=ours / many,
                target="≥ 0.80",
                passed=ours / many >= 0.8 and not wrong,
                note=f"UNEXPECTED: {wrong}; {note}" if wrong else note,
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
