"""The columnar fast path (`to_air_columns` and the row codecs' column encoding) equals the item-by-item path
(`to_air_batch_by_item`) on regular pages, and declines (returns None) on every kind of irregular page, so that
the careful path sorts those out."""

from __future__ import annotations

import copy
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline.load.rows import RowCodec, encode_readings, values_digests
from pipeline.load.tables import air_readings
from pipeline.simulator import airkorea_data as sim
from pipeline.simulator.airkorea import ctprvn_body, msrstn_body
from pipeline.transform.airkorea import AirBatch, AirReading, to_air_batch, to_air_batch_by_item, to_air_columns

NOW = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
NEWEST = sim.newest_hour(NOW)


def items_of(body: bytes) -> list[dict[str, Any]]:
    return list(orjson.loads(body)["response"]["body"]["items"])


def readings_of(columns: AirBatch) -> list[AirReading]:
    return [
        AirReading(name, moment, *values)
        for name, moment, values in zip(
            columns.station_names, columns.measured_at, zip(*columns.values, strict=True), strict=True
        )
    ]


def assert_same_as_batch(items: list[dict[str, Any]], station: str | None = None) -> AirBatch:
    columns = to_air_columns(items, station)
    assert columns is not None
    batch = to_air_batch_by_item(items, station)
    assert batch.rejects == []
    assert readings_of(columns) == batch.readings
    assert columns.stations == batch.stations
    return columns


@pytest.mark.parametrize("station_index", [0, 7, 41, 333, 659])
@pytest.mark.parametrize("term", ["DAILY", "3MONTH"])
def test_station_series_equal_the_item_by_item_path(station_index: int, term: str) -> None:
    station = sim.stations()[station_index]
    body = msrstn_body("json", station, NEWEST, sim.DATA_TERM_HOURS[term], 5, 1, 10_000)
    columns = assert_same_as_batch(items_of(body), station.name)
    assert len(columns) == sim.DATA_TERM_HOURS[term]
    # every kind of value the simulator sends is in a 3-month series: outages, flags, "-" and "" and null
    if term == "3MONTH":
        assert any(flag == "통신장애" for flag in columns.values[-1])
        assert None in columns.values[4]  # pm10


@pytest.mark.parametrize("sido", ["서울", "세종", "전국"])
def test_province_pages_of_many_stations_equal_the_item_by_item_path(sido: str) -> None:
    body = ctprvn_body("json", sido, NEWEST, 5, 1, 1000)
    columns = assert_same_as_batch(items_of(body))
    assert len(set(columns.station_names)) == len(columns) > 1


def test_rows_equal_reading_rows_in_both_forms_and_keep_selects() -> None:
    station = sim.stations()[12]
    items = items_of(msrstn_body("json", station, NEWEST, 24 * 30, 5, 1, 10_000))
    columns = assert_same_as_batch(items, station.name)
    readings = to_air_batch_by_item(items, station.name).readings
    start, end = NOW - timedelta(days=10), NOW - timedelta(days=2)
    inside = [r for r in readings if start <= r.measured_at <= end]
    assert 0 < len(inside) < len(readings)
    for form in ("sqlite", "asyncpg"):
        codec = RowCodec.for_table(air_readings, form)

        def reading_rows(records: list[AirReading], codec: RowCodec = codec) -> list[tuple[Any, ...]]:
            # the digest from each record's own values: the same as the columns give
            digests = [values_digests([[value] for value in astuple(r)[2:]])[0] for r in records]
            return codec.encode([(*astuple(r), 7, NOW, d) for r, d in zip(records, digests, strict=True)]).rows

        assert encode_readings(codec, columns, 7, NOW).rows == reading_rows(readings)
        assert encode_readings(codec, columns.between(start, end), 7, NOW).rows == reading_rows(inside)


def _page() -> list[dict[str, Any]]:
    return items_of(msrstn_body("json", sim.stations()[3], NEWEST, 48, 5, 1, 100))


def _set(index: int, **change: Any) -> list[dict[str, Any]]:
    items = copy.deepcopy(_page())
    items[index].update(change)
    return items


def _drop(index: int, key: str) -> list[dict[str, Any]]:
    items = copy.deepcopy(_page())
    del items[index][key]
    return items


@pytest.mark.parametrize(
    "items",
    [
        pytest.param(_set(5, pm10Value="abc"), id="garbage value"),
        pytest.param(_set(5, pm10Value="-5"), id="negative concentration"),
        pytest.param(_set(5, pm25Grade="7"), id="grade outside 1-4"),
        pytest.param(_set(5, dataTime="2026-13-01 10:00"), id="bad time"),
        pytest.param(_set(5, dataTime=None), id="no time"),
        pytest.param(_set(5, stationName=""), id="empty station name"),
        pytest.param(_set(5, stationName=" 중구 "), id="padded station name"),
        pytest.param(_set(5, pm10Value=["1"]), id="unhashable value"),
        pytest.param(_drop(5, "coGrade"), id="a field missing in one item"),
        pytest.param(_drop(5, "stationName"), id="stationName in some items only"),
        pytest.param([*_page(), _page()[0]], id="a station-hour twice"),
        pytest.param([*_page(), "not an object"], id="an item that is not an object"),
        pytest.param([], id="no items"),
    ],
)
def test_irregular_pages_take_the_careful_path(items: list[dict[str, Any]]) -> None:
    assert to_air_columns(items, "중구") is None
    to_air_batch(items, "중구")  # which handles them (rejects, last duplicate wins): tests/transform/test_airkorea.py


def test_pages_without_station_names_take_the_requested_one() -> None:
    items = [{k: v for k, v in item.items() if k != "stationName"} for item in _page()]
    columns = assert_same_as_batch(items, "중구")
    assert set(columns.station_names) == {"중구"}
    assert to_air_columns(items, None) is None and to_air_columns(items, "  ") is None


def test_values_seen_for_the_first_time_are_parsed_carefully_and_numbers_are_accepted() -> None:
    items = _set(3, pm10Value="987", so2Value=0.0123, khaiValue=77)  # numbers, not text, as some gateways send
    columns = assert_same_as_batch(items)
    assert columns.values[4][3] == 987 and columns.values[0][3] == 0.0123 and columns.values[8][3] == 77
