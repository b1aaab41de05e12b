"""AirKorea real-time items → typed rows. Pure: raw dicts in, records out.

Every value arrives as a string (or ``null``); ``"-"`` and ``""`` mean missing. Flags such as ``통신장애``
are kept as text beside the value, which is ``None`` when the station did not measure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from pipeline.errors import RecordError
from pipeline.transform.common import (
    Reject,
    kst_label_to_utc,
    make_reject,
    to_float,
    to_grade,
    to_int,
    to_text,
)

SOURCE = "airkorea"


class RawAirItem(TypedDict, total=False):
    """The fields we read from ``getCtprvnRltmMesureDnsty`` / ``getMsrstnAcctoRltmMesureDnsty`` items."""

    dataTime: str
    stationName: str
    stationCode: str
    sidoName: str
    mangName: str
    so2Value: str
    coValue: str
    o3Value: str
    no2Value: str
    pm10Value: str
    pm25Value: str
    pm10Value24: str
    pm25Value24: str
    khaiValue: str
    so2Grade: str | None
    coGrade: str | None
    o3Grade: str | None
    no2Grade: str | None
    pm10Grade: str | None
    pm25Grade: str | None
    pm10Grade1h: str | None
    pm25Grade1h: str | None
    khaiGrade: str | None
    so2Flag: str | None
    coFlag: str | None
    o3Flag: str | None
    no2Flag: str | None
    pm10Flag: str | None
    pm25Flag: str | None


@dataclass(frozen=True, slots=True)
class AirStation:
    station_name: str
    sido_name: str | None
    station_code: str | None
    mang_name: str | None


@dataclass(frozen=True, slots=True)
class AirReading:
    """One station-hour. ``measured_at`` is UTC and is the end of the hour AirKorea labels the value with."""

    station_name: str
    measured_at: datetime
    so2: float | None  # ppm
    co: float | None  # ppm
    o3: float | None  # ppm
    no2: float | None  # ppm
    pm10: int | None  # µg/m³
    pm25: int | None  # µg/m³
    pm10_24h: int | None  # µg/m³, 24-hour predicted moving concentration
    pm25_24h: int | None  # µg/m³
    khai: int | None  # comprehensive air-quality index (CAI)
    so2_grade: int | None
    co_grade: int | None
    o3_grade: int | None
    no2_grade: int | None
    pm10_grade: int | None  # 24-hour grade
    pm25_grade: int | None  # 24-hour grade
    pm10_grade_1h: int | None
    pm25_grade_1h: int | None
    khai_grade: int | None
    so2_flag: str | None
    co_flag: str | None
    o3_flag: str | None
    no2_flag: str | None
    pm10_flag: str | None
    pm25_flag: str | None


# column ← API field, by kind
_FLOATS = {"so2": "so2Value", "co": "coValue", "o3": "o3Value", "no2": "no2Value"}
_INTS = {
    "pm10": "pm10Value",
    "pm25": "pm25Value",
    "pm10_24h": "pm10Value24",
    "pm25_24h": "pm25Value24",
    "khai": "khaiValue",
}
_GRADES = {
    "so2_grade": "so2Grade",
    "co_grade": "coGrade",
    "o3_grade": "o3Grade",
    "no2_grade": "no2Grade",
    "pm10_grade": "pm10Grade",
    "pm25_grade": "pm25Grade",
    "pm10_grade_1h": "pm10Grade1h",
    "pm25_grade_1h": "pm25Grade1h",
    "khai_grade": "khaiGrade",
}
_FLAGS = {
    "so2_flag": "so2Flag",
    "co_flag": "coFlag",
    "o3_flag": "o3Flag",
    "no2_flag": "no2Flag",
    "pm10_flag": "pm10Flag",
    "pm25_flag": "pm25Flag",
}


def _station_name(raw: Mapping[str, Any], station_name: str | None) -> str:
    name = to_text(raw.get("stationName")) or (station_name.strip() if station_name else None)
    if not name:
        raise RecordError("stationName missing")
    return name


def to_air_reading(raw: Mapping[str, Any], station_name: str | None = None) -> AirReading:
    """Normalise one item. ``station_name`` names the station when the item does not (msrstn, ver < 1.4).

    Raises :class:`RecordError` when the item has no station, no parsable time, or a value that is neither a
    number nor a missing-value marker.
    """
    name = _station_name(raw, station_name)
    measured_at = kst_label_to_utc(raw.get("dataTime"))
    values: dict[str, Any] = {}
    for column, field in _FLOATS.items():
        values[column] = to_float(raw.get(field), field)
    for column, field in _INTS.items():
        values[column] = _to_concentration(raw.get(field), field)
    for column, field in _GRADES.items():
        values[column] = to_grade(raw.get(field), field)
    for column, field in _FLAGS.items():
        values[column] = to_text(raw.get(field))
    return AirReading(station_name=name, measured_at=measured_at, **values)


def _to_concentration(value: object, field: str) -> int | None:
    number = to_int(value, field)
    if number is not None and number < 0:
        raise RecordError(f"{field}: negative concentration: {value!r}")
    return number


def to_air_station(raw: Mapping[str, Any], station_name: str | None = None) -> AirStation:
    return AirStation(
        station_name=_station_name(raw, station_name),
        sido_name=to_text(raw.get("sidoName")),
        station_code=to_text(raw.get("stationCode")),
        mang_name=to_text(raw.get("mangName")),
    )


@dataclass(slots=True)
class AirBatch:
    """The result of normalising one page of items."""

    readings: list[AirReading]
    stations: list[AirStation]
    rejects: list[Reject]


def to_air_batch(items: Iterable[Mapping[str, Any]], station_name: str | None = None) -> AirBatch:
    """Normalise a page; bad items become rejects, duplicates (same station-hour) keep the last one."""
    readings: dict[tuple[str, datetime], AirReading] = {}
    stations: dict[str, AirStation] = {}
    rejects: list[Reject] = []
    for raw in items:
        if not isinstance(raw, Mapping):
            rejects.append(make_reject(SOURCE, f"item is not an object: {type(raw).__name__}", raw))
            continue
        try:
            reading = to_air_reading(raw, station_name)
            station = to_air_station(raw, station_name)
        except RecordError as exc:
            rejects.append(make_reject(SOURCE, exc.reason, raw))
            continue
        readings[(reading.station_name, reading.measured_at)] = reading
        known = stations.get(station.station_name)
        if known is None or (station.sido_name and not known.sido_name):
            stations[station.station_name] = station
    return AirBatch(readings=list(readings.values()), stations=list(stations.values()), rejects=rejects)
