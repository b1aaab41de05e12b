"""pipeline/jobs/airkorea.py's one path of a page: ``page_rows`` on raw bytes or on items, keeping a range,
telling a page that is not the whole series, encoding with the codec it is given; ``PageRows`` crosses a process
boundary; ``InlineParser`` is ``page_rows`` in the event loop; ``reading_codec`` is the writer's own form."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pipeline.jobs.airkorea import INLINE, InlineParser, PageJob, PageRows, page_rows, reading_codec
from pipeline.load.db import create_engine
from pipeline.load.rows import Form, RowCodec, encode_readings
from pipeline.load.tables import air_readings
from pipeline.load.writer import Writer
from pipeline.simulator import airkorea_data as sim
from pipeline.simulator.airkorea import ctprvn_body, msrstn_body
from pipeline.transform.airkorea import to_air_batch

NOW = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
NEWEST = sim.newest_hour(NOW)
VER = 5  # 1.5, the default
SQLITE = RowCodec.for_table(air_readings, "sqlite")
ASYNCPG = RowCodec.for_table(air_readings, "asyncpg")
STATION = sim.stations()[12]


def items_of(body: bytes) -> list[dict[str, Any]]:
    return list(orjson.loads(body)["response"]["body"]["items"])


def series(hours: int = 48, per_page: int = 1000, fmt: Any = "json") -> bytes:
    return msrstn_body(fmt, STATION, NEWEST, hours, VER, 1, per_page)


def without_time(rows: PageRows) -> PageRows:
    """The rows without their CPU time (the one field two parses of a page do not share)."""
    return replace(rows, seconds=0.0)


@pytest.mark.parametrize("codec", [SQLITE, ASYNCPG], ids=["sqlite", "asyncpg"])
@pytest.mark.parametrize(
    ("body", "station"),
    [
        pytest.param(series(), STATION.name, id="a station series"),
        pytest.param(ctprvn_body("json", "서울", NEWEST, VER, 1, 1000), None, id="a province"),
    ],
)
def test_raw_bytes_and_their_items_give_the_same_rows(body: bytes, station: str | None, codec: RowCodec) -> None:
    job = PageJob(codec, 7, NOW, station)
    from_bytes, from_items = page_rows(body, job), page_rows(items_of(body), job)
    assert without_time(from_bytes) == without_time(from_items)
    assert from_bytes.fetched == len(items_of(body)) == len(from_bytes.rows) > 1
    assert from_bytes.complete and from_bytes.out_of_range == 0 and from_bytes.rejects == []
    assert from_bytes.seconds >= 0.0


def test_an_xml_body_gives_the_rows_of_the_json_one() -> None:
    job = PageJob(SQLITE, 7, NOW, STATION.name)
    assert without_time(page_rows(series(fmt="xml"), job)) == without_time(page_rows(series(fmt="json"), job))


def test_keep_drops_the_hours_outside_the_range_and_counts_them() -> None:
    items = items_of(series(48))
    times = sorted(to_air_batch(items, STATION.name).measured_at)
    assert len(times) == 48
    start, end = times[5], times[14]  # ten hours, both ends included
    everything = page_rows(items, PageJob(ASYNCPG, 7, NOW, STATION.name))
    kept = page_rows(items, PageJob(ASYNCPG, 7, NOW, STATION.name, keep=(start, end)))
    assert (kept.fetched, len(kept.rows), kept.out_of_range) == (48, 10, 38)
    assert sorted(row[1] for row in kept.rows.rows) == times[5:15]
    assert set(kept.rows.rows) < set(everything.rows.rows)
    # the stations the page names are kept whatever the range
    assert kept.stations == everything.stations and [s.station_name for s in kept.stations] == [STATION.name]
    nothing = page_rows(items, PageJob(ASYNCPG, 7, NOW, STATION.name, keep=(NOW, NOW)))
    assert (len(nothing.rows), nothing.out_of_range) == (0, 48)


@pytest.mark.parametrize(
    ("hours", "per_page", "complete"),
    [(48, 20, False), (48, 47, False), (48, 48, True), (48, 1000, True)],
)
def test_a_page_is_complete_only_when_it_holds_the_whole_series(hours: int, per_page: int, complete: bool) -> None:
    body = series(hours, per_page)
    rows = page_rows(body, PageJob(SQLITE, 7, NOW, STATION.name))
    assert (rows.complete, rows.fetched, len(rows.rows)) == (complete, min(hours, per_page), min(hours, per_page))
    # items alone carry no totalCount: the caller has the whole series
    assert page_rows(items_of(body), PageJob(SQLITE, 7, NOW, STATION.name)).complete


def test_the_rows_are_encoded_with_the_codec_passed_in() -> None:
    items = items_of(series(24))
    batch = to_air_batch(items, STATION.name)
    as_sqlite = page_rows(items, PageJob(SQLITE, 9, NOW, STATION.name))
    as_asyncpg = page_rows(items, PageJob(ASYNCPG, 9, NOW, STATION.name))
    assert as_sqlite.rows.codec == SQLITE and as_asyncpg.rows.codec == ASYNCPG
    assert as_sqlite.rows == encode_readings(SQLITE, batch, 9, NOW)
    assert as_asyncpg.rows == encode_readings(ASYNCPG, batch, 9, NOW)
    assert as_sqlite.rows.rows != as_asyncpg.rows.rows  # the two forms differ ...
    run_id, updated = air_readings.columns.keys().index("run_id"), air_readings.columns.keys().index("updated_at")
    first_sqlite, first_asyncpg = as_sqlite.rows.rows[0], as_asyncpg.rows.rows[0]
    assert isinstance(first_sqlite[1], str) and isinstance(first_asyncpg[1], datetime)  # ... in the times
    assert first_sqlite[updated] == "2026-11-28 00:30:00" and first_asyncpg[updated] == NOW
    assert first_sqlite[run_id] == first_asyncpg[run_id] == 9


def test_page_rows_and_its_job_pickle() -> None:
    """A backfill's worker process gets the job and sends the rows back."""
    items = [*items_of(series(24)), "not an object"]
    job = PageJob(SQLITE, 3, NOW, STATION.name, keep=(NOW.replace(hour=0, minute=0), NOW))
    rows = page_rows(items, job)
    assert len(rows.rejects) == 1 and rows.out_of_range > 0 and len(rows.rows) > 0
    assert pickle.loads(pickle.dumps(job)) == job
    assert pickle.loads(pickle.dumps(rows)) == rows
    body_rows = page_rows(series(24), job)
    assert pickle.loads(pickle.dumps(body_rows)) == body_rows


@pytest.mark.parametrize("shape", ["bytes", "items"])
async def test_the_inline_parser_returns_what_page_rows_returns(shape: str) -> None:
    body = series(30, per_page=20)
    page: bytes | list[dict[str, Any]] = body if shape == "bytes" else items_of(body)
    job = PageJob(ASYNCPG, 5, NOW, STATION.name)
    for parser in (INLINE, InlineParser()):
        assert without_time(await parser.parse(page, job)) == without_time(page_rows(page, job))
    assert INLINE.stage == "transform"


@pytest.mark.parametrize(
    ("backend", "form"),
    [pytest.param("sqlite", "sqlite", id="sqlite"),
     pytest.param("postgresql", "asyncpg", id="postgresql", marks=pytest.mark.postgres)],
    indirect=["backend"],
)  # fmt: skip
async def test_reading_codec_is_the_writers_own_form(db_url: str, form: Form) -> None:
    engine = create_engine(db_url)
    try:
        codec = reading_codec(Writer(engine))
    finally:
        await engine.dispose()
    assert codec == RowCodec.for_table(air_readings, form)
