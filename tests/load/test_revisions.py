"""Write-nothing upserts and the revision tables, on both backends: a change is written once and recorded
once with its old and new values; an unchanged row is not touched at all; older values never replace newer
ones; movies keep their descriptive history; now-playing intervals come from the snapshots."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from pipeline.load.rows import encode_readings
from pipeline.load.runs import start_run
from pipeline.load.tables import READING_VALUES, air_reading_revisions, air_readings, movie_revisions, movies
from pipeline.load.upsert import (
    insert_snapshots,
    readings_upsert,
    upsert_air_readings,
    upsert_air_stations,
    upsert_movies,
)
from pipeline.load.writer import Writer
from pipeline.transform.airkorea import AirBatch, AirReading, AirStation
from pipeline.transform.tmdb import Movie, MovieSnapshot, to_movie
from tests.backends import plain_rows

T0 = datetime(2026, 11, 27, 15, tzinfo=UTC)
HOUR = timedelta(hours=1)
NULLS = {f.name: None for f in dataclasses.fields(AirReading)} | {"station_name": "중구", "measured_at": T0}
FLAGGED = {"so2_flag": "통신장애", "co_flag": "통신장애", "o3_flag": "통신장애", "no2_flag": "통신장애",
           "pm10_flag": "통신장애", "pm25_flag": "통신장애"}  # fmt: skip
FILLED = {"so2": 0.003, "co": 0.4, "o3": 0.021, "no2": 0.017, "pm10": 41, "pm25": 22, "pm10_grade": 2,
          "pm25_grade": 2, "pm10_grade_1h": 2, "pm25_grade_1h": 2, "khai": 63, "khai_grade": 2}  # fmt: skip


def reading(**values: object) -> AirReading:
    return AirReading(**{**NULLS, **values})  # type: ignore[arg-type]


async def revisions(writer: Writer) -> list[dict[str, Any]]:
    async with writer.engine.connect() as conn:
        found = await conn.execute(select(air_reading_revisions).order_by(air_reading_revisions.c.id))
        return [dict(row) for row in found.mappings()]


async def raw_rows(writer: Writer, table: str) -> list[tuple[Any, ...]]:
    """The rows as the database holds them (text timestamps on SQLite): byte-identical means equal here."""
    async with writer.engine.connect() as conn:
        return plain_rows([tuple(r) for r in (await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))).all()])


async def stations(writer: Writer) -> int:
    await upsert_air_stations(writer, [AirStation("중구", "서울", "111121", "도시대기")], T0)
    return await start_run(writer, "test", "manual")


async def test_a_flagged_hour_filled_in_later_gives_one_revision_with_old_and_new_values(writer: Writer) -> None:
    poll = await stations(writer)
    assert await upsert_air_readings(writer, [reading(**FLAGGED)], poll, T0 + 20 * timedelta(minutes=1)) == 1
    series = await start_run(writer, "test", "manual")
    filled_at = T0 + 5 * HOUR
    assert await upsert_air_readings(writer, [reading(**FILLED)], series, filled_at) == 1
    [revision] = await revisions(writer)
    changed = sorted(revision["changed"].split())
    assert revision["changed"].startswith(" ") and revision["changed"].endswith(" ")
    assert changed == sorted([*FILLED, *FLAGGED])
    assert (revision["station_name"], revision["measured_at"]) == ("중구", T0)
    assert (revision["run_id"], revision["revised_at"]) == (series, filled_at)
    assert (revision["previous_run_id"], revision["previous_at"]) == (poll, T0 + 20 * timedelta(minutes=1))
    for column in READING_VALUES:
        if column in FILLED:
            assert (revision[f"old_{column}"], revision[f"new_{column}"]) == (None, FILLED[column]), column
        elif column in FLAGGED:
            assert (revision[f"old_{column}"], revision[f"new_{column}"]) == ("통신장애", None), column
        else:  # unchanged (NULL before and after): nothing recorded
            assert (revision[f"old_{column}"], revision[f"new_{column}"]) == (None, None), column
    async with writer.engine.connect() as conn:
        row = (await conn.execute(select(air_readings.c.run_id, air_readings.c.updated_at))).one()
        per_pollutant = (await conn.execute(text(
            "SELECT pollutant, old_value, new_value, old_flag, new_flag FROM air_revised_values ORDER BY pollutant"
        ))).all()  # fmt: skip
        summary = (await conn.execute(text("SELECT revisions, delay_hours FROM air_revised_readings"))).one()
    assert tuple(row) == (series, filled_at)  # the row points at the write that changed it
    assert [tuple(r) for r in per_pollutant] == [
        ("co", None, 0.4, "통신장애", None),
        ("khai", None, 63.0, None, None),
        ("no2", None, 0.017, "통신장애", None),
        ("o3", None, 0.021, "통신장애", None),
        ("pm10", None, 41.0, "통신장애", None),
        ("pm25", None, 22.0, "통신장애", None),
        ("so2", None, 0.003, "통신장애", None),
    ]
    assert summary[0] == 1 and abs(summary[1] - (5 - 1 / 3)) < 1e-6


async def test_an_identical_rerun_writes_nothing_and_leaves_the_row_byte_identical(writer: Writer) -> None:
    first = await stations(writer)
    rows = [reading(measured_at=T0 + h * HOUR, **FILLED) for h in range(30)]
    assert await upsert_air_readings(writer, rows, first, T0) == 30
    before = await raw_rows(writer, "air_readings")
    again = await start_run(writer, "test", "manual")
    assert await upsert_air_readings(writer, rows, again, T0 + 3 * HOUR) == 0
    assert await raw_rows(writer, "air_readings") == before  # updated_at and run_id too
    assert await revisions(writer) == []


async def test_the_statement_alone_writes_nothing_unchanged(writer: Writer) -> None:
    """Without the pre-read (the rows are sent), the statement's WHERE still leaves an unchanged row alone."""
    first = await stations(writer)
    rows = [reading(measured_at=T0 + h * HOUR, **FILLED) for h in range(5)]
    await upsert_air_readings(writer, rows, first, T0)
    before = await raw_rows(writer, "air_readings")
    prepared = writer.prepare(air_readings, compare=READING_VALUES, newer=("updated_at", "run_id"))
    assert prepared.prefilter is not None
    again = await start_run(writer, "test", "manual")
    encoded = encode_readings(prepared.codec, AirBatch.from_readings(rows), again, T0 + HOUR).rows
    changed = [*encoded[:-1], (*encoded[-1][:6], 99, *encoded[-1][7:])]  # the last reading's pm10 changes
    assert prepared.sql is not None
    async with writer.transaction() as conn:
        await conn.exec_driver_sql(prepared.sql, changed)
    after = await raw_rows(writer, "air_readings")
    assert after[:-1] == before[:-1]
    assert after[-1] != before[-1] and 99 in after[-1]
    # the row came with its old digest (made by hand): the trigger drops it, it no longer vouches for the values
    async with writer.engine.connect() as conn:
        digests = (await conn.execute(select(air_readings.c.values_digest).order_by(air_readings.c.measured_at))).scalars().all()  # fmt: skip
    assert digests[-1] is None and None not in digests[:-1]
    [revision] = await revisions(writer)
    assert revision["changed"] == " pm10 " and (revision["old_pm10"], revision["new_pm10"]) == (41, 99)


async def test_older_values_never_replace_newer_ones_but_the_run_that_wrote_them_may(writer: Writer) -> None:
    first = await stations(writer)
    second = await start_run(writer, "test", "manual")
    await upsert_air_readings(writer, [reading(pm10=30)], first, T0)
    await upsert_air_readings(writer, [reading(pm10=35)], second, T0 + 2 * HOUR)
    # a replay of the first run's older body: not written, no revision
    assert await upsert_air_readings(writer, [reading(pm10=30)], first, T0) == 1  # sent, but refused by the WHERE
    async with writer.engine.connect() as conn:
        assert (await conn.execute(select(air_readings.c.pm10, air_readings.c.run_id))).one() == (35, second)
    assert len(await revisions(writer)) == 1
    # a replay of the second run's body after a transform fix (the same run, its original time): written
    await upsert_air_readings(writer, [reading(pm10=36)], second, T0 + 2 * HOUR - timedelta(seconds=1))
    async with writer.engine.connect() as conn:
        assert (await conn.execute(select(air_readings.c.pm10))).scalar_one() == 36
    assert [(r["old_pm10"], r["new_pm10"], r["run_id"]) for r in await revisions(writer)] == [
        (30, 35, second),
        (35, 36, second),
    ]


async def test_in_the_same_second_the_later_run_wins_and_the_earlier_one_is_refused(writer: Writer) -> None:
    """SQLite keeps whole seconds: a poll and a heal series of the same hour can be written in one."""
    poll = await stations(writer)
    heal = await start_run(writer, "test", "manual")
    await upsert_air_readings(writer, [reading(**FLAGGED)], poll, T0)
    await upsert_air_readings(writer, [reading(**FILLED)], heal, T0)  # the same second, a later run: written
    await upsert_air_readings(writer, [reading(**FLAGGED)], poll, T0)  # the poll's body replayed: refused
    async with writer.engine.connect() as conn:
        assert (await conn.execute(select(air_readings.c.pm10, air_readings.c.run_id))).one() == (41, heal)
    assert [r["run_id"] for r in await revisions(writer)] == [heal]


async def test_every_value_grade_and_flag_is_tracked(writer: Writer) -> None:
    run = await stations(writer)
    base = reading(**FILLED)
    await upsert_air_readings(writer, [base], run, T0)
    for step, column in enumerate(READING_VALUES, start=1):
        current = await _current(writer)
        value: object = "점검및교정" if column.endswith("_flag") else (current[column] or 0) + 1
        await upsert_air_readings(writer, [dataclasses.replace(_as_reading(current), **{column: value})], run,
                                  T0 + step * HOUR)  # fmt: skip
    found = await revisions(writer)
    assert [r["changed"] for r in found] == [f" {c} " for c in READING_VALUES]


async def _current(writer: Writer) -> dict[str, Any]:
    async with writer.engine.connect() as conn:
        return dict((await conn.execute(select(air_readings))).mappings().one())


def _as_reading(row: dict[str, Any]) -> AirReading:
    return AirReading(**{f.name: row[f.name] for f in dataclasses.fields(AirReading)})


async def test_large_batches_keep_write_nothing_and_revisions_on_both_backends(writer: Writer) -> None:
    """Chunks of 5,000 (PostgreSQL: by COPY and one merge), the pre-read per chunk, a key twice in one chunk."""
    big = Writer(writer.engine, chunk_size=5000)
    run = await stations(big)
    rows = [reading(measured_at=T0 + h * HOUR, pm10=h % 90, pm25=h % 40) for h in range(12_000)]
    assert await upsert_air_readings(big, rows, run, T0) == 12_000
    changed = [dataclasses.replace(r, pm10=r.pm10 + 1) if i % 20 == 0 else r for i, r in enumerate(rows)]  # type: ignore[operator]
    twice = [rows[1], dataclasses.replace(rows[1], pm25=99), rows[1]]  # the last of a key wins: unchanged
    assert await upsert_air_readings(big, changed + twice, run, T0 + HOUR) == 600
    found = await revisions(big)
    assert len(found) == 600 and {r["changed"] for r in found} == {" pm10 "}
    async with big.engine.connect() as conn:
        pm25 = (await conn.execute(select(air_readings.c.pm25).where(air_readings.c.measured_at == rows[1].measured_at))).scalar_one()  # fmt: skip
    assert pm25 == rows[1].pm25


def movie(**values: object) -> Movie:
    base = to_movie({"id": 7, "title": "Late Title", "original_title": "Late Title", "runtime": 101,
                     "vote_count": 12, "vote_average": 7.1, "popularity": 3.5})  # fmt: skip
    return dataclasses.replace(base, **values)  # type: ignore[arg-type]


async def movie_revision_rows(writer: Writer) -> list[dict[str, Any]]:
    async with writer.engine.connect() as conn:
        found = await conn.execute(select(movie_revisions).order_by(movie_revisions.c.id))
        return [dict(row) for row in found.mappings()]


async def test_a_movie_field_change_gives_one_movie_revision(writer: Writer) -> None:
    first = await start_run(writer, "test", "manual")
    await upsert_movies(writer, [movie()], first, T0)
    second = await start_run(writer, "test", "manual")
    await upsert_movies(writer, [movie(popularity=9.9, vote_count=20)], second, T0 + HOUR)  # votes: snapshots
    assert await movie_revision_rows(writer) == []
    third = await start_run(writer, "test", "manual")
    await upsert_movies(writer, [movie(title="늦게 온 제목", runtime=104, popularity=9.9, vote_count=20)], third,
                        T0 + 2 * HOUR)  # fmt: skip
    [revision] = await movie_revision_rows(writer)
    assert revision["changed"] == " title runtime "
    assert (revision["old_title"], revision["new_title"]) == ("Late Title", "늦게 온 제목")
    assert (revision["old_runtime"], revision["new_runtime"]) == (101, 104)
    assert (revision["old_overview"], revision["new_overview"], revision["old_genres"]) == (None, None, None)
    assert (revision["run_id"], revision["previous_run_id"]) == (third, second)
    assert (revision["revised_at"], revision["previous_at"]) == (T0 + 2 * HOUR, T0 + HOUR)
    # the same details again: not even sent (the pre-read by the one-column key), nothing written, no revision
    before = await raw_rows(writer, "movies")
    assert await upsert_movies(writer, [movie(title="늦게 온 제목", runtime=104, popularity=9.9, vote_count=20)],
                               third, T0 + 2 * HOUR) == 0  # fmt: skip
    assert await raw_rows(writer, "movies") == before
    assert len(await movie_revision_rows(writer)) == 1


async def test_details_arriving_for_a_bare_list_item_are_no_revision(writer: Writer) -> None:
    run = await start_run(writer, "test", "manual")
    await upsert_movies(writer, [movie(runtime=None, overview=None)], run, T0, details=False)
    await upsert_movies(writer, [movie(overview="줄거리")], run, T0 + HOUR)
    assert await movie_revision_rows(writer) == []
    async with writer.engine.connect() as conn:
        row = (await conn.execute(select(movies.c.overview, movies.c.details_fetched))).one()
    assert tuple(row) == ("줄거리", True)


async def test_vote_count_zero_is_stored_as_no_rating(writer: Writer) -> None:
    run = await start_run(writer, "test", "manual")
    await upsert_movies(writer, [to_movie({"id": 8, "title": "New", "vote_count": 0, "vote_average": 0})], run, T0)
    async with writer.engine.connect() as conn:
        assert tuple((await conn.execute(select(movies.c.vote_average, movies.c.vote_count))).one()) == (None, 0)


async def test_a_movie_leaving_and_reentering_the_list_has_two_intervals(writer: Writer) -> None:
    present = {0: [7, 8], 1: [7, 8], 2: [8], 3: [7, 8], 4: [7]}  # list run → movies listed
    await upsert_movies(writer, [movie(), movie(tmdb_id=8, title="Other")], await start_run(writer, "t", "m"), T0)
    captured: dict[int, datetime] = {}
    for index, listed in present.items():
        run = await start_run(writer, "tmdb", "schedule")
        captured[index] = T0 + index * HOUR
        snapshots = [MovieSnapshot(i, "now_playing", p, 1, 1.0, 7.0, 12, None, None) for p, i in enumerate(listed, 1)]
        await insert_snapshots(writer, snapshots, run, captured[index])
    discover = await start_run(writer, "backfill", "backfill")  # a backfill's discover list is no list run
    await insert_snapshots(writer, [MovieSnapshot(7, "discover", 1, 1, 1.0, 7.0, 12, None, None)], discover,
                           T0 + 10 * HOUR)  # fmt: skip
    async with writer.engine.connect() as conn:
        found = (await conn.execute(text(
            "SELECT tmdb_id, interval_no, entered_at, last_seen_at, left_at, snapshots FROM now_playing_intervals "
            "ORDER BY tmdb_id, interval_no"
        ))).all()  # fmt: skip
    moments = plain_rows([tuple(r) for r in found])
    at = {index: plain_rows([(moment,)])[0][0] for index, moment in captured.items()}
    assert moments == [
        (7, 1, at[0], at[1], at[2], 2),
        (7, 2, at[3], at[4], None, 2),  # back in the list: a second interval, still listed
        (8, 1, at[0], at[3], at[4], 4),  # left at the last list run
    ]


def revision_recipes() -> list[str]:
    """The statements of the SQL recipes' "Revisions" section."""
    page = (Path(__file__).parents[2] / "docs" / "sql-recipes.md").read_text(encoding="utf-8")
    section = page.split("## Revisions", 1)[1]
    block = section.split("```sql", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";")]
    return [s for s in statements if s and not all(line.startswith("--") for line in s.splitlines())]


async def test_the_revision_recipes_run_on_both_backends_and_find_what_happened(writer: Writer) -> None:
    poll = await stations(writer)
    day = datetime(2026, 11, 27, 15, tzinfo=UTC)  # 2026-11-28 00:00 KST: the hours of the 28th end 01:00 … 24:00
    await upsert_air_readings(writer, [reading(measured_at=day + HOUR, **FLAGGED)], poll, day + HOUR)
    assert poll == 1
    series = await start_run(writer, "test", "manual")
    assert series == 2
    await upsert_air_readings(writer, [reading(measured_at=day + HOUR, **FILLED)], series, day + 4 * HOUR)
    await upsert_movies(writer, [movie()], poll, T0)
    await upsert_movies(writer, [movie(title="늦게 온 제목")], series, T0 + HOUR)
    await insert_snapshots(writer, [MovieSnapshot(7, "now_playing", 1, 1, 1.0, 7.0, 12, None, None)], poll, T0)
    results = []
    async with writer.engine.connect() as conn:
        for statement in revision_recipes():
            results.append((await conn.execute(text(statement))).all())
    assert len(results) == 9
    per_pollutant, filled_in, longest, first_vs_final, by_run, titles, lately, stays, returned = results
    assert ("서울", "pm25", 1, 1) in [tuple(r) for r in per_pollutant]
    assert [(r[0], r[1]) for r in filled_in] == [("서울", 1)] and abs(filled_in[0][2] - 3) < 1e-6
    assert len(longest) == 1 and longest[0][2] == 1
    assert [(r[1], r[2]) for r in first_vs_final] == [(None, 22)]  # first published flagged, then 22
    assert len(by_run) == 1 and " pm25 " in by_run[0][2]
    assert [(r[1], r[2]) for r in titles] == [("Late Title", "늦게 온 제목")]
    assert [r[2] for r in lately] == [" title "]
    assert [(r[0], r[1], r[4]) for r in stays] == [("늦게 온 제목", 1, None)] and returned == []


async def test_many_rows_a_statement_give_what_row_by_row_gives_a_key_twice_in_one_statement(writer: Writer) -> None:
    """SQLite sends a chunk as statements of many rows (``MultiRow``): the rows, a key given twice inside one
    statement, the write-nothing rule and the revisions are those of the row-by-row statement (PostgreSQL sends
    row by row: the same assertions hold)."""
    await upsert_air_stations(writer, [AirStation("종로구", "서울", "111123", "도시대기")], T0)
    run = await stations(writer)
    multirow = readings_upsert(writer).multirow
    assert (multirow is not None) == (writer.dialect == "sqlite")
    group = multirow.rows if multirow else 34
    plain = Writer(writer.engine, writer.chunk_size)
    prepared = readings_upsert(plain)
    plain._prepared[prepared.options] = dataclasses.replace(prepared, multirow=None)  # the row-by-row way

    def batch(station: str, shift: int) -> list[AirReading]:
        rows = [reading(station_name=station, measured_at=T0 + h * HOUR, pm10=h + shift, pm25=h % 7)
                for h in range(3 * group + 5)]  # fmt: skip
        rows[group // 2] = dataclasses.replace(rows[5], pm10=500)  # hour 5 again in the first statement …
        rows[group - 1] = dataclasses.replace(rows[5], pm10=501, pm10_flag="통신장애")  # … and again: this wins
        rows.append(dataclasses.replace(rows[2 * group + 1], pm25=None))  # in the left-over rows
        return rows

    for shift, at in ((0, T0), (0, T0 + HOUR), (1, T0 + 2 * HOUR)):
        sent = await upsert_air_readings(writer, batch("중구", shift), run, at)
        assert sent == await upsert_air_readings(plain, batch("종로구", shift), run, at)
    held = {}
    for station in ("중구", "종로구"):
        async with writer.engine.connect() as conn:
            found = await conn.execute(select(air_readings).where(air_readings.c.station_name == station)
                                       .order_by(air_readings.c.measured_at))  # fmt: skip
            rows = [{k: v for k, v in r.items() if k != "station_name"} for r in found.mappings()]
        changes = [{k: v for k, v in r.items() if k not in ("id", "station_name")}
                   for r in await revisions(writer) if r["station_name"] == station]  # fmt: skip
        held[station] = (rows, changes)
    assert held["중구"] == held["종로구"]
    rows, changes = held["중구"]
    by_hour = {(r["measured_at"] - T0) // HOUR: r for r in rows}
    assert len(rows) == 3 * group + 3  # hours group // 2 and group - 1 gave way to hour 5
    assert (by_hour[5]["pm10"], by_hour[5]["pm10_flag"]) == (501, "통신장애")
    assert by_hour[2 * group + 1]["pm25"] is None
    assert changes  # the shifted third run revised what the first wrote


async def test_a_key_in_two_chunks_of_a_batch_re_sent_unchanged_writes_nothing(writer: Writer) -> None:
    """The later row of a key wins across the chunks of one batch too: sent again, the earlier one (which the
    stored row no longer equals) is not written back and forth."""
    run = await stations(writer)
    rows = [reading(measured_at=T0 + h * HOUR, pm10=h) for h in range(2 * writer.chunk_size + 50)]
    rows.append(dataclasses.replace(rows[10], pm10=77, pm10_flag="점검및교정"))  # hour 10 again, in the last chunk
    assert await upsert_air_readings(writer, rows, run, T0) == len(rows)
    before = await revisions(writer)
    stored = await raw_rows(writer, "air_readings")
    assert await upsert_air_readings(writer, rows, run, T0 + HOUR) == 0
    assert await revisions(writer) == before and await raw_rows(writer, "air_readings") == stored
    changed = [*rows[:-1], dataclasses.replace(rows[-1], pm10=78)]  # only the key's later row changed
    assert await upsert_air_readings(writer, changed, run, T0 + 2 * HOUR) == 1
    found = await revisions(writer)
    assert len(found) == len(before) + 1 and found[-1]["old_pm10"] == 77 and found[-1]["new_pm10"] == 78
