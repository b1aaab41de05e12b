"""The ledger's writes on both backends: bits of one batch merged per key (PostgreSQL's COPY path keeps one row
a key), and hole marks that never erase an hour written meanwhile."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pipeline.load.coverage import HoleMark, mark_holes, upsert_coverage
from pipeline.load.upsert import upsert_air_stations
from pipeline.load.writer import Writer
from pipeline.transform.airkorea import AirStation
from pipeline.transform.coverage import CoverageRow
from tests.backends import fetch_async

NOW = datetime(2026, 11, 28, tzinfo=UTC)
DAY = date(2026, 11, 27)


async def test_a_large_batch_with_repeated_keys_keeps_every_bit(db_url: str, writer: Writer) -> None:
    names = [f"S{i:04d}" for i in range(600)]
    await upsert_air_stations(writer, [AirStation(n, "서울", None, None) for n in names], NOW)
    rows = [CoverageRow(DAY, n, 1 << 0, 0) for n in names] + [CoverageRow(DAY, n, 0, 1 << 5) for n in names]
    rows += [CoverageRow(DAY - timedelta(days=1), n, 1 << 23, 0) for n in names]  # 1,800 rows, 1,200 keys
    assert await upsert_coverage(writer, rows, NOW) == 1200
    found = await fetch_async(
        db_url, "SELECT count(*), min(expected), max(expected), min(received), min(flagged) FROM air_coverage "
        "WHERE kst_date = :d", {"d": DAY},
    )  # fmt: skip
    assert found == [(600, 0b100001, 0b100001, 1, 1 << 5)]
    # the same hour twice in one batch: the later row wins, as it would row by row
    await upsert_coverage(writer, [CoverageRow(DAY, "S0000", 0, 1), CoverageRow(DAY, "S0000", 1, 0)], NOW)
    assert await fetch_async(
        db_url, "SELECT received, flagged FROM air_coverage WHERE station_name = 'S0000' AND kst_date = :d", {"d": DAY}
    ) == [(1, 1 << 5)]


async def test_a_hole_mark_never_erases_an_hour_held(db_url: str, writer: Writer) -> None:
    await upsert_air_stations(writer, [AirStation("A", "서울", None, None)], NOW)
    await upsert_coverage(writer, [CoverageRow(DAY, "A", 0b01, 0)], NOW)  # 01:00 held (a backfill, meanwhile)
    await mark_holes(writer, [HoleMark(DAY, "A", 0b11, 0b11)], NOW)  # a heal planned with 01:00 and 02:00 as holes
    assert await fetch_async(db_url, "SELECT received, unpublished, tried FROM air_coverage") == [(0b01, 0b10, 0b11)]
