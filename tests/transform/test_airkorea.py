"""Every recorded AirKorea body goes through the transform; whole records are asserted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.errors import RecordError
from pipeline.extract.airkorea import classify
from pipeline.transform.airkorea import AirReading, AirStation, to_air_batch, to_air_reading
from pipeline.transform.common import kst_label_to_utc
from tests.conftest import fixture_json, fixture_text


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NULLS = dict.fromkeys(
    ["so2", "co", "o3", "no2", "pm10", "pm25", "pm10_24h", "pm25_24h", "khai",
     "so2_grade", "co_grade", "o3_grade", "no2_grade", "pm10_grade", "pm25_grade", "pm10_grade_1h",
     "pm25_grade_1h", "khai_grade", "so2_flag", "co_flag", "o3_flag", "no2_flag", "pm10_flag", "pm25_flag"]
)  # fmt: skip


def reading(station: str, at: datetime, **values: object) -> AirReading:
    return AirReading(station_name=station, measured_at=at, **{**NULLS, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("2026-11-27 24:00", utc(2026, 11, 27, 15)),  # midnight belongs to the next day, 00:00 KST
        ("2026-11-28 00:00", utc(2026, 11, 27, 15)),
        ("2026-11-27 14:00", utc(2026, 11, 27, 5)),
        ("2026-12-31 24:00", utc(2026, 12, 31, 15)),  # crosses the year
        ("2024-02-28 24:00", utc(2024, 2, 28, 15)),  # leap year: 02-29 00:00 KST
        ("2026-11-27 01:00", utc(2026, 11, 26, 16)),
    ],
)
def test_data_time_kst_to_utc(label: str, expected: datetime) -> None:
    assert kst_label_to_utc(label) == expected


@pytest.mark.parametrize("label", ["2026-11-27 25:00", "2026-11-27 14:30", "2026-02-30 10:00", "yesterday", "", None])
def test_unparsable_data_time_is_a_record_error(label: object) -> None:
    with pytest.raises(RecordError):
        kst_label_to_utc(label)


def test_ctprvn_no_ver_json_whole_records() -> None:
    page = classify(200, {}, fixture_text("airkorea/ctprvn_seoul_nover.json"), "GET test")
    assert (page.total_count, page.page_no, page.num_of_rows) == (40, 1, 10)
    batch = to_air_batch(page.items)
    assert batch.rejects == []
    at = utc(2023, 10, 12, 5)
    assert batch.readings == [
        # khaiValue "-" and khaiGrade null with no flag: the value is simply missing
        reading("한강대로", at, so2=0.003, co=0.6, o3=0.045, no2=0.031, pm10=33,
                so2_grade=1, co_grade=1, o3_grade=2, pm10_grade=2),
        reading("청계천로", at, so2=0.004, co=0.6, o3=0.044, no2=0.028, pm10=29, khai=62,
                so2_grade=1, co_grade=1, o3_grade=2, no2_grade=1, pm10_grade=2, khai_grade=2),
        # a station fully in 통신장애: every value NULL, every flag kept
        reading("종로", at, so2_flag="통신장애", co_flag="통신장애", o3_flag="통신장애", no2_flag="통신장애",
                pm10_flag="통신장애"),
    ]  # fmt: skip
    assert batch.stations == [
        AirStation("한강대로", "서울", None, None),
        AirStation("청계천로", "서울", None, None),
        AirStation("종로", "서울", None, None),
    ]


def test_ctprvn_v10_pm25_and_mixed_outages() -> None:
    page = classify(200, {}, fixture_text("airkorea/ctprvn_seoul_v1.0.json"), "GET test")
    batch = to_air_batch(page.items)
    at = utc(2024, 3, 6, 3)
    assert batch.rejects == []
    by_name = {r.station_name: r for r in batch.readings}
    assert by_name["정릉로"] == reading("정릉로", at, so2=0.003, co=0.4, o3=0.027, no2=0.026, pm10=22, pm25=8, khai=45,
                                       so2_grade=1, co_grade=1, o3_grade=1, no2_grade=1, pm10_grade=1, pm25_grade=1,
                                       khai_grade=1)  # fmt: skip
    # 통신장애 everywhere, but the 24-hour PM10 grade is still "1"
    assert by_name["도봉구"] == reading("도봉구", at, pm10_grade=1, **dict.fromkeys(
        ["so2_flag", "co_flag", "o3_flag", "no2_flag", "pm10_flag", "pm25_flag"], "통신장애"))  # fmt: skip
    # gases in 통신장애 while PM values are valid
    assert by_name["도산대로"] == reading("도산대로", at, pm10=20, pm25=6, pm10_grade=1, pm25_grade=1,
                                         **dict.fromkeys(["so2_flag", "co_flag", "o3_flag", "no2_flag"], "통신장애"))  # fmt: skip
    # PM10 in 통신장애 while PM2.5 is valid
    assert by_name["양천구"].pm10 is None and by_name["양천구"].pm10_flag == "통신장애"
    assert by_name["양천구"].pm25 == 3 and by_name["양천구"].pm25_flag is None
    # khaiValue "-" and pm10Grade null without any flag
    assert by_name["강동구"].khai is None and by_name["강동구"].pm10_grade is None and by_name["강동구"].pm10 == 7


def test_ctprvn_v15_all_fields() -> None:
    page = classify(200, {}, fixture_text("airkorea/ctprvn_seoul_v1.5_numOfRows1.json"), "GET test")
    batch = to_air_batch(page.items)
    assert batch.readings == [
        reading("정릉로", utc(2025, 11, 26, 5), so2=0.0027, co=0.43, o3=0.0212, no2=0.0292, pm10=27, pm25=13,
                pm10_24h=44, pm25_24h=27, khai=79, so2_grade=1, co_grade=1, o3_grade=1, no2_grade=1, pm10_grade=2,
                pm25_grade=2, pm10_grade_1h=1, pm25_grade_1h=1, khai_grade=2)
    ]  # fmt: skip
    assert batch.stations == [AirStation("정릉로", "서울", "111162", "도로변대기")]


def test_ctprvn_xml_body_equals_json_shape() -> None:
    page = classify(200, {}, fixture_text("airkorea/ctprvn_seoul_nover.xml"), "GET test")
    assert (page.total_count, page.num_of_rows) == (40, 100)
    batch = to_air_batch(page.items)
    assert [r.station_name for r in batch.readings] == ["중구", "한강대로", "종로구"]
    assert batch.readings[0] == reading("중구", utc(2023, 5, 31, 1), so2=0.003, co=0.4, o3=0.028, no2=0.026, pm10=21,
                                        khai=47, so2_grade=1, co_grade=1, o3_grade=1, no2_grade=1, pm10_grade=1,
                                        khai_grade=1)  # fmt: skip


def test_msrstn_daily_v10_has_no_station_name_so_the_request_names_it() -> None:
    page = classify(200, {}, fixture_text("airkorea/msrstn_daily_v1.0.json"), "GET test")
    assert page.total_count == 23
    with pytest.raises(RecordError, match="stationName"):
        to_air_reading(page.items[0])
    batch = to_air_batch(page.items, station_name="종로구")
    assert [r.measured_at for r in batch.readings] == [utc(2023, 5, 21, h) for h in (1, 0)] + [
        utc(2023, 5, 20, h) for h in (23, 22, 21)
    ]
    assert batch.readings[0] == reading("종로구", utc(2023, 5, 21, 1), so2=0.002, co=0.3, o3=0.048, no2=0.007, pm10=48,
                                        pm25=10, khai=66, so2_grade=1, co_grade=1, o3_grade=2, no2_grade=1,
                                        pm10_grade=1, pm25_grade=1, khai_grade=2)  # fmt: skip
    assert batch.stations == [AirStation("종로구", None, None, None)]


def test_msrstn_v14_xml_fragment() -> None:
    page = classify(200, {}, fixture_text("airkorea/msrstn_v1.4_item_fragment.xml"), "GET test")
    batch = to_air_batch(page.items)
    assert batch.readings == [
        reading("종로구", utc(2023, 5, 13, 6), so2=0.004, co=0.4, o3=0.085, no2=0.009, pm10=35, pm25=19, pm10_24h=44,
                pm25_24h=23, khai=96, so2_grade=1, co_grade=1, o3_grade=2, no2_grade=1, pm10_grade=2, pm25_grade=2,
                pm10_grade_1h=2, pm25_grade_1h=2, khai_grade=2)
    ]  # fmt: skip
    assert batch.stations == [AirStation("종로구", None, "111123", "도시대기")]


def test_unknown_station_is_an_empty_page_not_an_error() -> None:
    page = classify(200, {}, fixture_text("airkorea/msrstn_unknown_station_empty.json"), "GET test")
    assert page.items == [] and page.total_count == 0


def test_statistics_bodies_parse_decimals_without_leading_zero() -> None:
    body = fixture_json("airkorea/stats_getMsrstnAcctoRDyrg.json")
    items = body["response"]["body"]["items"]
    from pipeline.transform.common import to_float

    assert [to_float(i["coValue"], "coValue") for i in items] == [0.3, 0.3]
    assert to_float(items[0]["no2Value"], "no2Value") == 0.0082
    # statistics items (msrstnName, msurDt) are not real-time readings: refused with a reason, not dropped
    batch = to_air_batch(items)
    assert batch.readings == [] and len(batch.rejects) == 2
    assert batch.rejects[0].reason == "stationName missing"
    batch = to_air_batch(items, station_name="강남구")
    assert "dataTime" in batch.rejects[0].reason


def test_forecast_body_is_not_readings() -> None:
    page = classify(200, {}, fixture_text("airkorea/forecast_getMinuDustFrcstDspth.json"), "GET test")
    batch = to_air_batch(page.items)
    assert batch.readings == [] and {r.reason for r in batch.rejects} == {"stationName missing"}


def test_empty_string_and_dash_are_null_and_flags_are_kept() -> None:
    raw = {
        "stationName": "중구", "dataTime": "2026-11-27 24:00", "pm10Value": "", "pm10Flag": "점검및교정",
        "pm25Value": "-", "pm25Flag": "통신장애", "so2Value": "0.0031", "coGrade": None, "pm10Grade1h": "-",
        "khaiValue": " 57 ", "o3Value": "", "o3Flag": "",
    }  # fmt: skip
    assert to_air_reading(raw) == reading(
        "중구", utc(2026, 11, 27, 15), so2=0.0031, khai=57, pm10_flag="점검및교정", pm25_flag="통신장애"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"stationName": ""}, "stationName missing"),
        ({"dataTime": "2026-13-01 10:00"}, "not a real date"),
        ({"pm10Value": "abc"}, "pm10Value: not a number"),
        ({"pm10Value": "-5"}, "negative"),
        ({"pm10Grade": "7"}, "grade outside 1-4"),
        ({"so2Value": "NaN"}, "not a finite number"),
    ],
)
def test_bad_items_become_rejects_with_a_reason(change: dict[str, str], reason: str) -> None:
    good = {"stationName": "중구", "dataTime": "2026-11-27 10:00", "pm10Value": "20"}
    batch = to_air_batch([good, {**good, "dataTime": "2026-11-27 11:00", **change}])
    assert len(batch.readings) == 1 and len(batch.rejects) == 1
    assert reason in batch.rejects[0].reason
    assert batch.rejects[0].source == "airkorea" and '"stationName"' in batch.rejects[0].record
