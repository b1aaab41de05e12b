"""A frozen copy of the simulator's original (slow, obviously-correct) AirKorea payload code, as reference.

``pipeline/simulator/airkorea_data.py`` (then part of ``data.py``) and ``airkorea.py`` were optimised for the
nationwide 3MONTH backfill benchmark; ``tests/simulator/test_airkorea_bodies.py`` asserts that they still
produce byte-identical bodies to this module (copied verbatim from the pre-optimisation code, with only the
imports and the body assembly adapted). Do not "optimise" this file: it is the specification.
"""

from __future__ import annotations

import functools
import json
import math
import operator
from datetime import datetime, timedelta
from typing import Final

from pipeline.simulator.airkorea_data import ALL_SIDOS, SIDOS, Station, stations_by_sido
from pipeline.simulator.world import KST


def mix32(x: int) -> int:
    """Murmur3's 32-bit finaliser: a fast, well-spread integer hash."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x


_EPOCH_KST: Final = datetime(2000, 1, 1, tzinfo=KST)
_HOUR: Final = timedelta(hours=1)


def hour_end(index: int) -> datetime:
    """The KST instant at which hour ``index`` ends."""
    return _EPOCH_KST + index * _HOUR


@functools.lru_cache(maxsize=65536)
def data_time(index: int) -> str:
    """AirKorea's ``dataTime`` label: the hour's end in KST, midnight written as ``24:00`` of the day before."""
    end = hour_end(index)
    if end.hour == 0:
        return f"{end - _HOUR:%Y-%m-%d} 24:00"
    return f"{end:%Y-%m-%d %H}:00"


def _diurnal(points: dict[int, float]) -> tuple[float, ...]:
    """A 24-entry table (by the KST clock hour of the label), linear between circular anchor points."""
    anchors = sorted(points.items())
    table: list[float] = []
    for hour in range(24):
        for i, (h0, v0) in enumerate(anchors):
            h1, v1 = anchors[(i + 1) % len(anchors)]
            span = (h1 - h0) % 24 or 24
            offset = (hour - h0) % 24
            if offset < span:
                table.append(v0 + (v1 - v0) * offset / span)
                break
    return tuple(table)


_PM_DIURNAL: Final = _diurnal({0: 1.0, 5: 0.88, 9: 1.12, 14: 0.94, 20: 1.08})
_NO2_DIURNAL: Final = _diurnal({0: 0.95, 4: 0.8, 8: 1.4, 11: 1.0, 15: 0.68, 20: 1.32})
_O3_DIURNAL: Final = _diurnal({0: 0.55, 6: 0.42, 10: 0.9, 15: 1.7, 18: 1.25, 21: 0.75})
_CO_DIURNAL: Final = _diurnal({0: 1.0, 5: 0.9, 9: 1.2, 15: 0.85, 20: 1.15})
_TWO_PI: Final = 2.0 * math.pi

# Reading states (which values are missing or flagged).
_NORMAL: Final = 0
_OUTAGE: Final = 1  # everything in 통신장애
_GAS_OUTAGE: Final = 2  # only the gas analysers in 통신장애
_PM10_OUTAGE: Final = 3  # only PM10 in 통신장애
_NO_KHAI: Final = 4  # khaiValue "-" / khaiGrade null with no flag
_OTHER_FLAG: Final = 5  # a value present and flagged (점검및교정 / 장비점검 / 자료이상)
_GRADE1H_GAP: Final = 6  # pm10Grade1h / pm25Grade1h "-" or null

_OTHER_FLAGS: Final = ("점검및교정", "장비점검", "자료이상")
_COMM: Final = "통신장애"


def _regional(sido_index: int, day: int) -> float:
    """Synoptic PM factor of a sido for a day (shared by all its stations), in about 0.5-2.2."""
    h = mix32(sido_index * 0x27D4EB2F + day * 0x165667B1 + 0x3C6EF372)
    factor = 0.5 + 1.3 * math.pow((h & 0xFFFF) / 65535.0, 1.6)
    if (h >> 16) % 1000 < 6:  # 황사 (yellow dust) episode: PM10 spikes well above 130
        factor *= 3.2
    return factor


@functools.lru_cache(maxsize=8192)
def _day_factors(sido_index: int, day: int) -> tuple[float, float, float, float]:
    """(regional today, regional tomorrow, PM season, O3 season) for a sido and day; cached per day."""
    pm_season = 1.0 + 0.28 * math.cos(_TWO_PI * ((day - 60) % 365.2425) / 365.2425)
    o3_season = 1.0 + 0.35 * math.cos(_TWO_PI * ((day - 160) % 365.2425) / 365.2425)
    return _regional(sido_index, day), _regional(sido_index, day + 1), pm_season, o3_season


def _cai(value: float, scale: tuple[float, float, float, float]) -> float:
    """Sub-index on the 0-500 CAI scale from the 좋음/보통/나쁨/매우나쁨 breakpoints."""
    c1, c2, c3, c4 = scale
    if value <= c1:
        return 50.0 * value / c1
    if value <= c2:
        return 51.0 + 49.0 * (value - c1) / (c2 - c1)
    if value <= c3:
        return 101.0 + 149.0 * (value - c2) / (c3 - c2)
    return min(500.0, 251.0 + 249.0 * (value - c3) / (c4 - c3))


def _grade(value: float, c1: float, c2: float, c3: float) -> str:
    if value <= c1:
        return "1"
    if value <= c2:
        return "2"
    if value <= c3:
        return "3"
    return "4"


_PM10_SCALE: Final = (30.0, 80.0, 150.0, 600.0)
_PM25_SCALE: Final = (15.0, 35.0, 75.0, 500.0)
_O3_SCALE: Final = (300.0, 900.0, 1500.0, 6000.0)  # 1e-4 ppm
_NO2_SCALE: Final = (300.0, 600.0, 2000.0, 20000.0)
_SO2_SCALE: Final = (200.0, 500.0, 1500.0, 10000.0)
_CO_SCALE: Final = (200.0, 900.0, 1500.0, 5000.0)  # 1e-2 ppm


def reading(station: Station, index: int, ver: int) -> dict[str, str | None]:
    """All fields of one hourly reading, before projection to a ``ver``'s field set.

    ``ver`` is -1 when absent, else the minor version (0 for 1.0 ... 5 for 1.5); it only sets the decimals.
    """
    hod = index % 24
    day = index // 24
    r1 = mix32(station.seed ^ (index * 0x2545F491))
    r2 = mix32(r1 + 0x6A09E667)

    regional_today, regional_tomorrow, pm_season, o3_season = _day_factors(station.sido_index, day)
    regional = regional_today + (regional_tomorrow - regional_today) * hod / 24.0
    pm_daily = station.pm10_base * regional * pm_season

    n1 = (r1 & 0xFF) / 255.0
    n2 = ((r1 >> 8) & 0xFF) / 255.0
    n3 = ((r1 >> 16) & 0xFF) / 255.0
    n4 = (r1 >> 24) / 255.0
    n5 = (r2 & 0xFF) / 255.0

    pm10 = max(1, round(pm_daily * _PM_DIURNAL[hod] * (0.72 + 0.56 * n1)))
    ratio = station.pm25_ratio * (0.5 if regional > 2.4 else 1.0)
    pm25 = max(1, round(pm10 * ratio * (0.85 + 0.3 * n2)))
    pm10_24 = max(1, round(pm_daily))
    pm25_24 = max(1, round(pm_daily * ratio))
    so2 = station.so2_base * (0.7 + 0.6 * n3)
    co = station.co_base * _CO_DIURNAL[hod] * (0.8 + 0.4 * n4)
    o3 = station.o3_base * _O3_DIURNAL[hod] * o3_season * (0.75 + 0.5 * n5) / (0.8 + 0.2 * regional)
    no2 = station.no2_base * _NO2_DIURNAL[hod] * (0.7 + 0.6 * n2) * (0.8 + 0.2 * regional)

    # Which values are missing: outages come in blocks of a few hours, the rest is per row.
    if mix32(station.seed + (index // 5) * 0x61C88647) % 10000 < station.outage_bp:
        state = _OUTAGE
    else:
        roll = (r2 >> 8) % 10000
        if roll < 150:
            state = _GAS_OUTAGE
        elif roll < 220:
            state = _PM10_OUTAGE
        elif roll < 420:
            state = _NO_KHAI
        elif roll < 470:
            state = _OTHER_FLAG
        elif roll < 520:
            state = _GRADE1H_GAP
        else:
            state = _NORMAL
    missing = "" if (r2 >> 24) % 10 == 0 else "-"

    if ver >= 5:
        so2_s = f"{so2 / 10000:.4f}"
        co_s = f"{co / 100:.2f}"
        o3_s = f"{o3 / 10000:.4f}"
        no2_s = f"{no2 / 10000:.4f}"
    else:
        so2_s = f"{so2 / 10000:.3f}"
        co_s = f"{co / 100:.1f}"
        o3_s = f"{o3 / 10000:.3f}"
        no2_s = f"{no2 / 10000:.3f}"

    item: dict[str, str | None] = {
        "dataTime": data_time(index),
        "so2Value": so2_s,
        "coValue": co_s,
        "o3Value": o3_s,
        "no2Value": no2_s,
        "pm10Value": str(pm10),
        "pm25Value": str(pm25),
        "pm10Value24": str(pm10_24),
        "pm25Value24": str(pm25_24),
        "so2Grade": _grade(so2, 200.0, 500.0, 1500.0),
        "coGrade": _grade(co, 200.0, 900.0, 1500.0),
        "o3Grade": _grade(o3, 300.0, 900.0, 1500.0),
        "no2Grade": _grade(no2, 300.0, 600.0, 2000.0),
        "pm10Grade": _grade(pm10_24, 30.0, 80.0, 150.0),
        "pm25Grade": _grade(pm25_24, 15.0, 35.0, 75.0),
        "pm10Grade1h": _grade(pm10, 30.0, 80.0, 150.0),
        "pm25Grade1h": _grade(pm25, 15.0, 35.0, 75.0),
        "so2Flag": None,
        "coFlag": None,
        "o3Flag": None,
        "no2Flag": None,
        "pm10Flag": None,
        "pm25Flag": None,
    }
    khai_parts = [
        _cai(pm10_24, _PM10_SCALE),
        _cai(pm25_24, _PM25_SCALE),
        _cai(o3, _O3_SCALE),
        _cai(no2, _NO2_SCALE),
    ]
    if so2 > 150.0 or co > 150.0:  # SO2 / CO only matter for the CAI when unusually high
        khai_parts += (_cai(so2, _SO2_SCALE), _cai(co, _CO_SCALE))

    if state == _NORMAL:
        pass
    elif state == _OUTAGE:
        for key in ("so2", "co", "o3", "no2", "pm10", "pm25"):
            item[f"{key}Value"] = missing
            item[f"{key}Flag"] = _COMM
        for key in ("so2Grade", "coGrade", "o3Grade", "no2Grade", "pm10Grade1h"):
            item[key] = None
        item["pm25Grade1h"] = None if r2 & 1 else "-"
        # The 24-hour PM grade can survive an outage (도봉구, 2024-03-06); PM2.5's usually does not.
        if r2 & 2:
            item["pm10Grade"] = None
            item["pm10Value24"] = missing
        if r2 & 12:
            item["pm25Grade"] = None
            item["pm25Value24"] = missing
        khai_parts.clear()
    elif state == _GAS_OUTAGE:
        for key in ("so2", "co", "o3", "no2"):
            item[f"{key}Value"] = missing
            item[f"{key}Flag"] = _COMM
            item[f"{key}Grade"] = None
        khai_parts.clear()
    elif state == _PM10_OUTAGE:
        item["pm10Value"] = missing
        item["pm10Flag"] = _COMM
        item["pm10Grade1h"] = None
        khai_parts.clear()
    elif state == _NO_KHAI:
        khai_parts.clear()
        if r2 & 3 == 0:
            item["pm10Grade"] = None
    elif state == _OTHER_FLAG:
        pollutant = ("so2", "co", "o3", "no2", "pm10", "pm25")[r2 % 6]
        item[f"{pollutant}Flag"] = _OTHER_FLAGS[(r2 >> 3) % 3]
    elif state == _GRADE1H_GAP:
        gap = None if r2 & 1 else "-"
        item["pm10Grade1h"] = gap
        item["pm25Grade1h"] = gap

    if khai_parts:
        khai = round(max(khai_parts))
        item["khaiValue"] = str(khai)
        item["khaiGrade"] = _grade(khai, 50.0, 100.0, 250.0)
    else:
        item["khaiValue"] = missing
        item["khaiGrade"] = None
    return item


def _keys(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Item key orders, as emitted by the real service (see tests/fixtures/airkorea); space-separated for reading.
_CTPRVN_NOVER: Final = _keys(
    "so2Grade coFlag khaiValue so2Value coValue pm10Flag o3Grade pm10Value khaiGrade sidoName no2Flag "
    "no2Grade o3Flag so2Flag dataTime coGrade no2Value stationName pm10Grade o3Value"
)
_CTPRVN_V10: Final = _keys(
    "so2Grade coFlag khaiValue so2Value coValue pm25Flag pm10Flag o3Grade pm10Value khaiGrade pm25Value "
    "sidoName no2Flag no2Grade o3Flag pm25Grade so2Flag dataTime coGrade no2Value stationName pm10Grade "
    "o3Value"
)
_CTPRVN_V15: Final = _keys(
    "pm25Grade1h pm10Value24 so2Value pm10Grade1h pm10Value o3Grade pm25Flag khaiGrade pm25Value no2Flag "
    "mangName stationName no2Value so2Grade stationCode coFlag khaiValue coValue pm10Flag sidoName "
    "pm25Value24 no2Grade o3Flag pm25Grade so2Flag coGrade dataTime pm10Grade o3Value"
)
_MSRSTN_V10: Final = _keys(
    "so2Grade coFlag khaiValue so2Value coValue pm25Flag pm10Flag pm10Value o3Grade khaiGrade pm25Value "
    "no2Flag no2Grade o3Flag pm25Grade so2Flag dataTime coGrade no2Value pm10Grade o3Value"
)
_MSRSTN_V14: Final = _keys(
    "pm25Grade1h pm10Value24 so2Value pm10Grade1h o3Grade pm10Value pm25Flag khaiGrade pm25Value no2Flag "
    "mangName stationName no2Value so2Grade stationCode coFlag khaiValue coValue pm10Flag no2Grade "
    "pm25Value24 o3Flag pm25Grade so2Flag coGrade dataTime pm10Grade o3Value"
)

_PM25_FIELDS: Final = frozenset({"pm25Value", "pm25Grade", "pm25Flag"})
_VER_FIELDS: Final[tuple[frozenset[str], ...]] = (
    frozenset(),  # 1.0 adds PM2.5 (handled separately)
    frozenset({"pm10Value24", "pm25Value24"}),  # 1.1
    frozenset({"mangName"}),  # 1.2
    frozenset({"pm10Grade1h", "pm25Grade1h"}),  # 1.3
    frozenset({"stationCode"}),  # 1.4 (and stationName for msrstn)
    frozenset(),  # 1.5: more decimals only
)


def _key_order(ctprvn: bool, ver: int) -> tuple[str, ...]:
    """Field order for a ``ver``: the recorded order where a body was seen, else 1.5's order filtered."""
    if ver < 0:
        return _CTPRVN_NOVER if ctprvn else tuple(key for key in _MSRSTN_V10 if key not in _PM25_FIELDS)
    if ver == 0:
        return _CTPRVN_V10 if ctprvn else _MSRSTN_V10
    allowed = set(_CTPRVN_V10 if ctprvn else _MSRSTN_V10)
    for level in range(1, min(ver, 5) + 1):
        allowed |= _VER_FIELDS[level]
    if not ctprvn and ver >= 4:
        allowed.add("stationName")
    return tuple(key for key in (_CTPRVN_V15 if ctprvn else _MSRSTN_V14) if key in allowed)


KEY_ORDERS: Final[dict[tuple[bool, int], tuple[str, ...]]] = {
    (ctprvn, ver): _key_order(ctprvn, ver) for ctprvn in (True, False) for ver in range(-1, 6)
}
# C-level projection of a reading onto each key order (much cheaper than a dict comprehension per row).
_PROJECTIONS: Final = {key: operator.itemgetter(*order) for key, order in KEY_ORDERS.items()}


def _project(values: dict[str, str | None], ctprvn: bool, ver: int) -> dict[str, str | None]:
    order = KEY_ORDERS[(ctprvn, ver)]
    return dict(zip(order, _PROJECTIONS[(ctprvn, ver)](values), strict=True))


def parse_ver(raw: str | None) -> int:
    """``ver`` query value -> -1 (absent or unparsable) or the minor version 0..5 (higher values cap at 1.5)."""
    if raw is None or not raw.strip():
        return -1
    try:
        value = float(raw)
    except ValueError:
        return -1
    if not math.isfinite(value) or value < 1.0:
        return -1
    return min(5, int(round((value - 1.0) * 10, 6)))


def station_item(station: Station, index: int, ver: int, *, ctprvn: bool) -> dict[str, str | None]:
    """One item as ``getCtprvnRltmMesureDnsty`` (``ctprvn``) or ``getMsrstnAcctoRltmMesureDnsty`` emits it."""
    values = reading(station, index, ver)
    values["sidoName"] = station.sido
    values["stationName"] = station.name
    values["stationCode"] = station.code
    values["mangName"] = station.mang
    return _project(values, ctprvn, ver)


def ctprvn_order(sido: str, index: int) -> list[Station]:
    """Stations of a sido (or 전국) in the hour's order: not alphabetical, reshuffled every hour."""
    group = stations_by_sido().get(sido, ())
    salt = index * 0x2C1B3C6D
    if sido == ALL_SIDOS:
        ordered: list[Station] = []
        for name in SIDOS:
            ordered.extend(sorted(stations_by_sido()[name], key=lambda s: mix32(s.seed ^ salt)))
        return ordered
    return sorted(group, key=lambda s: mix32(s.seed ^ salt))


def page_bounds(total: int, page: int, rows: int) -> tuple[int, int]:
    start = min(total, (page - 1) * rows)
    return start, min(total, start + rows)


def ctprvn_page(sido: str, index: int, ver: int, page: int, rows: int) -> tuple[int, list[dict[str, str | None]]]:
    """``(totalCount, items)`` of one ``getCtprvnRltmMesureDnsty`` page at hour ``index``."""
    ordered = ctprvn_order(sido, index)
    start, stop = page_bounds(len(ordered), page, rows)
    return len(ordered), [station_item(s, index, ver, ctprvn=True) for s in ordered[start:stop]]


DATA_TERM_HOURS: Final[dict[str, int]] = {"DAILY": 24, "MONTH": 30 * 24, "3MONTH": 92 * 24}


def msrstn_page(
    station: Station, newest: int, hours: int, ver: int, page: int, rows: int
) -> tuple[int, list[dict[str, str | None]]]:
    """``(totalCount, items)`` of one ``getMsrstnAcctoRltmMesureDnsty`` page, newest hour first."""
    start, stop = page_bounds(hours, page, rows)
    order = KEY_ORDERS[(False, ver)]
    project = _PROJECTIONS[(False, ver)]
    extra = {"stationName": station.name, "stationCode": station.code, "mangName": station.mang}
    items: list[dict[str, str | None]] = []
    for offset in range(start, stop):
        values = reading(station, newest - offset, ver)
        values.update(extra)
        items.append(dict(zip(order, project(values), strict=True)))
    return hours, items


# ------------------------------------------------------------------------------------------------ bodies
# From pipeline/simulator/airkorea.py (``render`` / ``render_xml``), returning the HTTP body bytes.

Item = dict[str, str | None]


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_xml(total: int, items: list[Item], page: int, rows: int) -> str:
    """The default XML body (``ctprvn_seoul_nover.xml``): null -> ``<coFlag/>``, paging after the items."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <header>\n    <resultCode>00</resultCode>\n'
        "    <resultMsg>NORMAL_CODE</resultMsg>\n  </header>\n  <body>\n"
    ]
    if items:
        parts.append("    <items>\n")
        for item in items:
            parts.append("      <item>\n")
            for key, value in item.items():
                if value is None:
                    parts.append(f"        <{key}/>\n")
                else:
                    parts.append(f"        <{key}>{_escape(value)}</{key}>\n")
            parts.append("      </item>\n")
        parts.append("    </items>\n")
    else:
        parts.append("    <items/>\n")
    parts.append(
        f"    <numOfRows>{rows}</numOfRows>\n    <pageNo>{page}</pageNo>\n"
        f"    <totalCount>{total}</totalCount>\n  </body>\n</response>\n"
    )
    return "".join(parts)


def render_body(json_wanted: bool, total: int, items: list[Item], page: int, rows: int) -> bytes:
    if json_wanted:
        envelope = {
            "response": {
                "body": {"totalCount": total, "items": items, "pageNo": page, "numOfRows": rows},
                "header": {"resultMsg": "NORMAL_CODE", "resultCode": "00"},
            }
        }
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
        return text.encode()
    return render_xml(total, items, page, rows).encode()


def ctprvn_body(json_wanted: bool, sido: str, index: int, ver: int, page: int, rows: int) -> bytes:
    total, items = ctprvn_page(sido, index, ver, page, rows)
    return render_body(json_wanted, total, items, page, rows)


def msrstn_body(json_wanted: bool, station: Station, newest: int, hours: int, ver: int, page: int, rows: int) -> bytes:
    total, items = msrstn_page(station, newest, hours, ver, page, rows)
    return render_body(json_wanted, total, items, page, rows)
