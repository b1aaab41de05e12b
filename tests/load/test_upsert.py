"""The loader against a migrated temporary database: whole rows, upserted twice."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from pipeline.errors import LoadError
from pipeline.load.runs import RunTotals, finish_run, get_run, start_run
from pipeline.load.statements import COPY_MIN_ROWS, SQLITE_MAX_PARAMETERS, MultiRow
from pipeline.load.tables import air_readings, air_stations, movie_snapshots, movies, rejects
from pipeline.load.upsert import (
    insert_rejects,
    insert_snapshots,
    upsert_air_readings,
    upsert_air_stations,
    upsert_movies,
)
from pipeline.load.writer import Writer
from pipeline.transform.airkorea import AirReading, AirStation
from pipeline.transform.common import KST, make_reject
from pipeline.transform.tmdb import Movie, MovieSnapshot

T0 = datetime(2026, 11, 27, 15, tzinfo=UTC)
NULLS = {f.name: None for f in dataclasses.fields(AirReading)} | {"station_name": "중구", "measured_at": T0}


def reading(**values: object) -> AirReading:
    return AirReading(**{**NULLS, **values})  # type: ignore[arg-type]


async def test_air_readings_upsert_twice_updates_in_place(writer: Writer) -> None:
    run_id = await start_run(writer, "test", "manual")
    await upsert_air_stations(writer, [AirStation("중구", "서울", "111121", "도시대기")], T0)
    rows = [reading(measured_at=T0 + timedelta(hours=h), pm10=10 + h, pm10_flag=None) for h in range(250)]
    assert await upsert_air_readings(writer, rows, run_id, T0) == 250  # three chunks of 100
    revised = [dataclasses.replace(rows[0], pm10=None, pm10_flag="통신장애")]
    # write-nothing: of the 250 rows sent again, only the one that changed is written
    assert await upsert_air_readings(writer, revised + rows[1:], run_id, T0 + timedelta(hours=1)) == 1
    async with writer.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM air_readings"))).scalar_one()
        first = (await conn.execute(select(air_readings).where(air_readings.c.measured_at == T0))).mappings().one()
        raw_time = (await conn.execute(text("SELECT measured_at FROM air_readings ORDER BY 1 LIMIT 1"))).scalar_one()
    assert count == 250
    assert {k: v for k, v in first.items() if k != "values_digest"} == {
        **dataclasses.asdict(revised[0]), "run_id": run_id, "updated_at": T0 + timedelta(hours=1)
    }  # fmt: skip
    assert isinstance(first["values_digest"], int)
    if writer.dialect == "sqlite":
        assert raw_time == "2026-11-27 15:00:00"  # UTC, readable, sortable text in SQLite
    else:
        assert raw_time == T0 and raw_time.utcoffset() == timedelta(0)  # timestamptz, read back in UTC


async def test_duplicate_keys_in_one_chunk_last_wins(writer: Writer) -> None:
    # AirKorea can list a station-hour twice in one page: the later row wins, on both backends
    run_id = await start_run(writer, "test", "manual")
    await upsert_air_stations(
        writer, [AirStation("중구", "서울", None, None), AirStation("중구", None, "111121", None)], T0
    )
    await upsert_air_readings(writer, [reading(pm10=1), reading(pm10=2)], run_id, T0)
    async with writer.engine.connect() as conn:
        station = (await conn.execute(select(air_stations.c.sido_name, air_stations.c.station_code))).one()
        pm10 = (await conn.execute(select(air_readings.c.pm10))).scalars().all()
    assert tuple(station) == ("서울", "111121") and pm10 == [2]


async def test_large_batches_upsert_alike_on_both_backends_a_twice_seen_key_last(writer: Writer) -> None:
    """Batches of COPY_MIN_ROWS or more go by COPY and one merge on PostgreSQL (executemany on SQLite)."""
    big = Writer(writer.engine, chunk_size=5000)
    run_id = await start_run(big, "test", "manual")
    await upsert_air_stations(big, [AirStation("중구", "서울", "111121", "도시대기")], T0)
    hours = COPY_MIN_ROWS + 200
    rows = [
        reading(measured_at=T0 + timedelta(hours=h), pm10=h % 300, so2=0.0031, pm10_flag=None) for h in range(hours)
    ]
    twice = [*rows, reading(measured_at=T0, pm10=999, pm10_flag="통신장애")]  # hour 0 again, last in the batch
    assert await upsert_air_readings(big, twice, run_id, T0) == hours + 1
    revised = [dataclasses.replace(r, pm25=7) for r in rows[1:]]  # all conflicts: updated in place
    assert await upsert_air_readings(big, revised, run_id, T0 + timedelta(hours=1)) == hours - 1
    async with big.engine.connect() as conn:
        count, pm25 = (await conn.execute(text("SELECT count(*), sum(pm25) FROM air_readings"))).one()
        first = (await conn.execute(select(air_readings).where(air_readings.c.measured_at == T0))).mappings().one()
        last = (await conn.execute(select(air_readings.c.so2, air_readings.c.updated_at).where(
            air_readings.c.measured_at == T0 + timedelta(hours=hours - 1)))).one()  # fmt: skip
    assert (count, pm25) == (hours, 7 * (hours - 1))
    assert (first["pm10"], first["pm10_flag"], first["pm25"], first["updated_at"]) == (999, "통신장애", None, T0)
    assert tuple(last) == (0.0031, T0 + timedelta(hours=1))
    with pytest.raises(LoadError, match=r"writing air_readings failed: .*(?i:foreign key)"):
        await upsert_air_readings(big, [dataclasses.replace(r, station_name="없는역") for r in rows], run_id, T0)
    async with big.engine.connect() as conn:  # the failed batch left nothing behind
        assert (await conn.execute(text("SELECT count(*) FROM air_readings"))).scalar_one() == hours
    assert (big.prepare(air_readings).bulk is not None) == (big.dialect == "postgresql")


@pytest.mark.backends("postgresql")
async def test_a_value_copy_cannot_encode_is_a_load_error(writer: Writer) -> None:
    big = Writer(writer.engine, chunk_size=5000)
    run_id = await start_run(big, "test", "manual")
    await upsert_air_stations(big, [AirStation("중구", "서울", None, None)], T0)
    rows = [reading(measured_at=T0 + timedelta(hours=h), pm10=1) for h in range(COPY_MIN_ROWS)]
    rows[5] = dataclasses.replace(rows[5], pm10="abc")  # type: ignore[arg-type]
    with pytest.raises(LoadError, match=r"^writing air_readings failed: a value does not fit its column's type"):
        await upsert_air_readings(big, rows, run_id, T0)
    assert await upsert_air_readings(big, rows[:5], run_id, T0) == 5  # the connection is usable again


async def test_station_upsert_keeps_known_province_and_first_seen(writer: Writer) -> None:
    await upsert_air_stations(writer, [AirStation("종로구", "서울", "111123", "도시대기")], T0)
    later = T0 + timedelta(days=1)
    # the per-station endpoint does not say the province: it must not erase it
    await upsert_air_stations(writer, [AirStation("종로구", None, None, None)], later)
    async with writer.engine.connect() as conn:
        row = (await conn.execute(select(air_stations))).mappings().one()
    assert dict(row) == {"station_name": "종로구", "sido_name": "서울", "station_code": "111123",
                         "mang_name": "도시대기", "first_seen_at": T0, "updated_at": later}  # fmt: skip


def movie(tmdb_id: int, **values: object) -> Movie:
    base = {f.name: None for f in dataclasses.fields(Movie)} | {"tmdb_id": tmdb_id, "title": f"m{tmdb_id}"}
    return Movie(**{**base, **values})  # type: ignore[arg-type]


async def test_movies_upsert_and_bare_rows_never_overwrite_details(writer: Writer) -> None:
    run1 = await start_run(writer, "test", "manual")
    await upsert_movies(writer, [movie(1, runtime=120, release_date=date(2026, 11, 1))], run1, T0)
    await upsert_movies(writer, [movie(1, title="list item only")], run1, T0, details=False)
    await upsert_movies(writer, [movie(2, title="bare")], run1, T0, details=False)
    run2 = await start_run(writer, "test", "manual")
    later = T0 + timedelta(hours=6)
    await upsert_movies(writer, [movie(1, runtime=121, release_date=date(2026, 11, 1))], run2, later)
    async with writer.engine.connect() as conn:
        rows = {r["tmdb_id"]: r for r in (await conn.execute(select(movies))).mappings()}
    assert set(rows) == {1, 2}
    assert rows[1]["title"] == "m1" and rows[1]["runtime"] == 121 and rows[1]["release_date"] == date(2026, 11, 1)
    assert rows[1]["first_seen_at"] == T0 and rows[1]["updated_at"] == later and rows[1]["last_run_id"] == run2
    assert rows[2]["details_fetched"] is False and rows[2]["title"] == "bare"


async def test_snapshots_one_per_movie_per_run(writer: Writer) -> None:
    run1 = await start_run(writer, "test", "manual")
    await upsert_movies(writer, [movie(1)], run1, T0)
    snap = MovieSnapshot(1, "now_playing", 1, 1, 12.5, 7.0, 10, None, date(2026, 11, 1))
    await insert_snapshots(writer, [snap], run1, T0)
    await insert_snapshots(writer, [snap], run1, T0)  # the same run again: still one row
    run2 = await start_run(writer, "test", "manual")
    await insert_snapshots(writer, [dataclasses.replace(snap, popularity=13.0)], run2, T0 + timedelta(hours=1))
    async with writer.engine.connect() as conn:
        rows = (await conn.execute(select(movie_snapshots).order_by(movie_snapshots.c.run_id))).mappings().all()
    assert [(r["run_id"], r["popularity"], r["captured_at"]) for r in rows] == [
        (run1, 12.5, T0), (run2, 13.0, T0 + timedelta(hours=1))
    ]  # fmt: skip


async def test_foreign_keys_are_enforced(writer: Writer) -> None:
    run_id = await start_run(writer, "test", "manual")
    with pytest.raises(LoadError, match=r"(?i)foreign key"):
        await upsert_air_readings(writer, [reading(station_name="없는역")], run_id, T0)


async def test_naive_datetimes_are_refused(writer: Writer) -> None:
    with pytest.raises(LoadError, match="naive datetime"):
        await upsert_air_stations(writer, [AirStation("a", None, None, None)], datetime(2026, 1, 1))


async def test_run_lifecycle(writer: Writer) -> None:
    run_id = await start_run(writer, "cycle", "manual", T0)
    assert (await get_run(writer, run_id) or {})["status"] == "running"
    await finish_run(writer, run_id, "partial", RunTotals(5, 4, 3, 1), error="tmdb: x", details={"a": 1})
    row = await get_run(writer, run_id)
    assert row is not None
    assert (row["status"], row["requests"], row["rows_fetched"], row["rows_upserted"], row["rows_rejected"]) == (
        "partial", 5, 4, 3, 1,
    )  # fmt: skip
    assert row["error"] == "tmdb: x" and row["details"] == '{"a": 1}' and row["finished_at"] >= T0


@pytest.mark.backends("sqlite")
async def test_wal_and_pragmas(writer: Writer) -> None:
    async with writer.engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
        busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
    assert (mode, fks, busy) == ("wal", 1, 30000)


@pytest.mark.backends("postgresql")
async def test_postgres_times_are_timestamptz_and_connections_named(writer: Writer) -> None:
    async with writer.engine.connect() as conn:
        kinds = (await conn.execute(text(
            "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND column_name IN ('measured_at', 'started_at', 'finished_at', 'updated_at', 'captured_at', 'first_seen_at')"
        ))).scalars().all()  # fmt: skip
        name = (await conn.execute(text("SELECT current_setting('application_name')"))).scalar_one()
    assert set(kinds) == {"timestamp with time zone"} and name == "pipeline"


async def test_rejects_are_inserted_with_their_run(writer: Writer) -> None:
    run_id = await start_run(writer, "test", "manual")
    items = [make_reject("airkorea", f"bad value {i}", {"pm10Value": "x", "i": i}) for i in range(3)]
    assert await insert_rejects(writer, items, run_id) == 3
    assert await insert_rejects(writer, [], run_id) == 0
    async with writer.engine.connect() as conn:
        rows = (await conn.execute(select(rejects).order_by(rejects.c.id))).mappings().all()
    assert [(r["run_id"], r["source"], r["reason"], r["record"]) for r in rows] == [
        (run_id, "airkorea", f"bad value {i}", f'{{"i": {i}, "pm10Value": "x"}}') for i in range(3)
    ]
    assert all(r["created_at"].tzinfo is not None for r in rows)


def test_postgresql_statements_are_rendered_for_asyncpg_and_values_encoded_for_it() -> None:
    from sqlalchemy import JSON, Column, Integer, MetaData, Table

    from pipeline.load.db import create_engine

    writer = Writer(create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"))  # no connection is made
    prepared = writer.prepare(movies, keep=("first_seen_at",))
    assert prepared.sql is not None and "$1" in prepared.sql and "ON CONFLICT (tmdb_id) DO UPDATE" in prepared.sql
    adult, at = prepared.columns.index("adult"), prepared.columns.index("updated_at")
    row = [None] * len(prepared.columns)
    row[adult], row[at] = 1, datetime(2026, 1, 1, 9, tzinfo=KST)
    encoded = prepared.encode([row])[0]
    assert encoded[adult] is True and encoded[at] == datetime(2026, 1, 1, 0, tzinfo=UTC) and encoded[at].tzinfo is UTC
    row[at] = datetime(2026, 1, 1)
    with pytest.raises(LoadError, match="naive datetime"):
        prepared.encode([row])
    # a type whose values SQLAlchemy must process (JSON) keeps the Core statement and its processing
    other = Table("other", MetaData(), Column("id", Integer, primary_key=True), Column("doc", JSON))
    assert writer.prepare(other).sql is None


@pytest.mark.postgres
async def test_a_role_without_temporary_tables_gets_row_by_row_batches(postgres_url: str) -> None:
    from sqlalchemy.engine import make_url

    from pipeline.load.db import create_engine, migrate
    from tests.backends import fetch_async

    await migrate(postgres_url)
    role, database = f"pipeline_notemp_{secrets.token_hex(3)}", make_url(postgres_url).database
    await fetch_async(postgres_url, f"CREATE ROLE {role} LOGIN")
    try:
        for sql in (f"GRANT USAGE ON SCHEMA public TO {role}", f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
                    f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}",
                    f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC'):  # fmt: skip
            await fetch_async(postgres_url, sql)
        engine = create_engine(make_url(postgres_url).set(username=role).render_as_string(hide_password=False))
        try:
            writer = Writer(engine, chunk_size=5000)
            run_id = await start_run(writer, "test", "manual")
            await upsert_air_stations(writer, [AirStation("중구", "서울", None, None)], T0)
            rows = [reading(measured_at=T0 + timedelta(hours=h), pm10=h) for h in range(COPY_MIN_ROWS + 1)]
            assert await upsert_air_readings(writer, rows, run_id, T0) == COPY_MIN_ROWS + 1
            assert writer._stage_allowed is False  # it asked once, and sent the batch with executemany
        finally:
            await engine.dispose()
        count = await fetch_async(postgres_url, "SELECT count(*), sum(pm10) FROM air_readings")
        assert count == [(COPY_MIN_ROWS + 1, sum(range(COPY_MIN_ROWS + 1)))]
    finally:
        await fetch_async(postgres_url, f'GRANT TEMPORARY ON DATABASE "{database}" TO PUBLIC')
        await fetch_async(postgres_url, f"DROP OWNED BY {role}")
        await fetch_async(postgres_url, f"DROP ROLE {role}")


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://nobody@127.0.0.1:1/none"])
def test_statements_are_cached_by_every_option(url: str) -> None:
    """A second caller with other options gets its own statement, never the first caller's."""
    from pipeline.load.db import create_engine

    writer = Writer(create_engine(url))  # no connection is made
    keep = writer.prepare(movies, keep=("first_seen_at",))
    plain = writer.prepare(movies)
    assert keep.sql is not None and plain.sql is not None
    assert "first_seen_at = excluded.first_seen_at" not in keep.sql
    assert "first_seen_at = excluded.first_seen_at" in plain.sql
    coalesced = writer.prepare(air_stations, keep=("first_seen_at",), coalesce=("sido_name",))
    assert "coalesce(excluded.sido_name, air_stations.sido_name)" in str(coalesced.sql)
    assert "coalesce" not in str(writer.prepare(air_stations, keep=("first_seen_at",)).sql)
    assert "DO NOTHING" in str(writer.prepare(movies, do_nothing=True).sql)
    assert writer.prepare(movies, keep=("first_seen_at",)) is keep  # and each is compiled once


def test_many_rows_a_statement_within_sqlites_parameter_limit() -> None:
    one = "INSERT INTO t (a, b, c) VALUES (?, ?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
    multi = MultiRow.for_statement(one, 3)
    assert multi is not None and multi.rows == SQLITE_MAX_PARAMETERS // 3
    assert multi.sql.count("(?, ?, ?)") == multi.rows and multi.sql.endswith("DO UPDATE SET b = excluded.b")
    groups, rest = multi.split([(i, i, i) for i in range(2 * multi.rows + 5)])
    assert [len(g) for g in groups] == [3 * multi.rows] * 2 and groups[1][:3] == (multi.rows,) * 3
    assert rest == [(i, i, i) for i in range(2 * multi.rows, 2 * multi.rows + 5)]
    wide = "INSERT INTO t VALUES (" + ", ".join("?" * 600) + ")"
    assert MultiRow.for_statement(wide, 600) is None  # not two rows in 999 parameters: row by row
    assert MultiRow.for_statement(one.replace("VALUES (?, ?, ?)", "SELECT ?, ?, ?"), 3) is None
