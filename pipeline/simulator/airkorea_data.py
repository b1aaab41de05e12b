"""The simulated AirKorea world: measuring stations, their hourly readings, and the pages of both operations.

Everything here is pure (no aiohttp, no I/O) and a function of its arguments only, so a fixed simulator clock
gives byte-identical responses.

AirKorea time model (shared/reference/airkorea.md §6, §8): each hourly value is labelled with the END of its
hour in KST, midnight being ``YYYY-MM-DD 24:00`` of the previous day. An *hour index* counts those end
instants from 2000-01-01 00:00 KST. Readings are computed with a cheap integer hash of (station, hour) on top of
per-station parameters drawn once, so the 3MONTH backfill (~1.5 million rows) stays fast.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, NamedTuple

from pipeline.simulator import vocab
from pipeline.simulator.world import KST, mix32

# ================================================================================================ stations

MANG_URBAN: Final = "도시대기"
MANG_ROADSIDE: Final = "도로변대기"
MANG_BACKGROUND: Final = "국가배경농도"
MANG_SUBURBAN: Final = "교외대기"
MANG_PORT: Final = "항만"

SIDOS: Final = vocab.SIDOS
ALL_SIDOS: Final = "전국"


@dataclass(frozen=True, slots=True)
class Station:
    """One measuring station plus the parameters its readings are generated from.

    Gas bases are in 1e-4 ppm (so2/no2/o3) and 1e-2 ppm (co); ``outage_bp`` is the share of hours in full
    통신장애, in basis points.
    """

    index: int
    name: str
    sido: str
    sido_index: int
    code: str
    mang: str
    seed: int
    pm10_base: float
    pm25_ratio: float
    so2_base: float
    co_base: float
    o3_base: float
    no2_base: float
    outage_bp: int


def _seed_names(sido: str) -> list[tuple[str, str]]:
    names: list[tuple[str, str]] = []
    for token in vocab.SIDO_SEED_NAMES[sido].split():
        name, _, mark = token.partition(":")
        names.append((name, vocab.MANG_CODES[mark or "C"]))
    return names


def _generated_name(rng: random.Random, metro: bool) -> tuple[str, str]:
    first = rng.choice(vocab.NAME_SYLLABLES_1)
    second = rng.choice(vocab.NAME_SYLLABLES_2)
    if metro:
        return f"{first}{second}동", MANG_URBAN
    roll = rng.random()
    if roll < 0.6:
        return f"{first}{second}동", MANG_URBAN
    if roll < 0.85:
        return f"{first}{second}읍", MANG_URBAN
    return f"{first}{second}면", MANG_SUBURBAN if rng.random() < 0.5 else MANG_URBAN


_METROS: Final = frozenset({"부산", "대구", "인천", "광주", "대전", "울산", "세종"})
# Relative PM level per sido (inland west/central higher, Jeju and Gangwon lower).
_SIDO_PM_FACTOR: Final[dict[str, float]] = {
    "서울": 1.0,
    "부산": 0.95,
    "대구": 1.0,
    "인천": 1.05,
    "광주": 0.95,
    "대전": 0.95,
    "울산": 0.95,
    "경기": 1.1,
    "강원": 0.8,
    "충북": 1.1,
    "충남": 1.05,
    "전북": 1.1,
    "전남": 0.85,
    "경북": 0.95,
    "경남": 0.9,
    "제주": 0.7,
    "세종": 1.0,
}


@functools.cache
def stations() -> tuple[Station, ...]:
    """All stations, grouped by sido in ``SIDOS`` order. Names are unique nationally."""
    per_sido: list[tuple[str, list[tuple[str, str]]]] = []
    seoul_names = {name for name, _, _ in vocab.SEOUL_STATIONS}
    for sido in SIDOS:
        if sido == "서울":
            per_sido.append((sido, [(name, mang) for name, mang, _ in vocab.SEOUL_STATIONS]))
            continue
        count = vocab.SIDO_STATION_COUNTS[sido]
        chosen = _seed_names(sido)[:count]
        used = {name for name, _ in chosen}
        rng = random.Random(f"stations:{sido}")
        while len(chosen) < count:
            name, mang = _generated_name(rng, sido in _METROS)
            if name in used or name in seoul_names:
                continue
            used.add(name)
            chosen.append((name, mang))
        per_sido.append((sido, chosen))

    occurrences: dict[str, int] = {}
    for _, names in per_sido:
        for name, _ in names:
            occurrences[name] = occurrences.get(name, 0) + 1

    seoul_codes = {name: code for name, _, code in vocab.SEOUL_STATIONS}
    rng = random.Random(20240306)
    result: list[Station] = []
    for sido_index, (sido, names) in enumerate(per_sido):
        for position, (base, mang) in enumerate(names):
            if sido == "서울":
                name, code = base, seoul_codes[base]
            else:
                name = base if occurrences[base] == 1 and base not in seoul_names else f"{base}({sido})"
                code = vocab.SIDO_CODE_PREFIX[sido] * 1000 + 111 + position
            result.append(_station(len(result), name, sido, sido_index, str(code), mang, rng))
    return tuple(result)


def _station(index: int, name: str, sido: str, sido_index: int, code: str, mang: str, rng: random.Random) -> Station:
    pm10 = rng.uniform(22.0, 40.0) * _SIDO_PM_FACTOR[sido]
    so2 = rng.uniform(20.0, 40.0)
    co = rng.uniform(30.0, 48.0)
    o3 = rng.uniform(260.0, 360.0)
    no2 = rng.uniform(110.0, 230.0)
    if mang == MANG_ROADSIDE:
        pm10 += 6.0
        no2 *= 1.6
        co *= 1.3
        o3 *= 0.85
    elif mang == MANG_BACKGROUND:
        pm10 *= 0.7
        no2 *= 0.25
        co *= 0.6
        o3 *= 1.15
    elif mang == MANG_SUBURBAN:
        no2 *= 0.5
        o3 *= 1.1
    elif mang == MANG_PORT:
        so2 *= 2.0
        no2 *= 1.2
        pm10 += 4.0
    return Station(
        index=index,
        name=name,
        sido=sido,
        sido_index=sido_index,
        code=code,
        mang=mang,
        seed=mix32(index * 0x9E3779B1 + 0x5A17),
        pm10_base=pm10,
        pm25_ratio=rng.uniform(0.38, 0.62),
        so2_base=so2,
        co_base=co,
        o3_base=o3,
        no2_base=no2,
        outage_bp=int(rng.triangular(300.0, 2000.0, 500.0)),
    )


@functools.cache
def stations_by_sido() -> dict[str, tuple[Station, ...]]:
    grouped: dict[str, list[Station]] = {sido: [] for sido in SIDOS}
    for station in stations():
        grouped[station.sido].append(station)
    result = {sido: tuple(group) for sido, group in grouped.items()}
    result[ALL_SIDOS] = stations()
    return result


@functools.cache
def stations_by_name() -> dict[str, Station]:
    return {station.name: station for station in stations()}


# ================================================================================================ hours

_EPOCH_KST: Final = datetime(2000, 1, 1, tzinfo=KST)
_HOUR: Final = timedelta(hours=1)
PUBLISH_MINUTE: Final = 15  # hourly data appears about 15 minutes past the hour (airkorea.md §8)


def hour_index(moment: datetime) -> int:
    """Index of the hour that *ends* at ``moment`` floored to the hour."""
    return (moment - _EPOCH_KST) // _HOUR


def newest_hour(now: datetime) -> int:
    """Hour index of the newest published row at ``now`` (aware)."""
    kst = now.astimezone(KST)
    index = hour_index(kst)
    if kst.minute < PUBLISH_MINUTE:
        index -= 1
    return index


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


# ================================================================================================ readings


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

_WITH_KHAI: Final = (_NORMAL, _OTHER_FLAG, _GRADE1H_GAP)  # the states whose CAI is published

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


_PM10_SCALE: Final = (30.0, 80.0, 150.0, 600.0)
_PM25_SCALE: Final = (15.0, 35.0, 75.0, 500.0)
_O3_SCALE: Final = (300.0, 900.0, 1500.0, 6000.0)  # 1e-4 ppm
_NO2_SCALE: Final = (300.0, 600.0, 2000.0, 20000.0)
_SO2_SCALE: Final = (200.0, 500.0, 1500.0, 10000.0)
_CO_SCALE: Final = (200.0, 900.0, 1500.0, 5000.0)  # 1e-2 ppm


# ------------------------------------------------------------------------------------------------ rows
# The 3MONTH backfill pulls ~1.5 million rows, so rows are generated as lists of ready-to-write UTF-8 values
# (``reading_row``) that ``airkorea.py`` drops into cached per-key-order templates. Every float is computed by
# the same expression, in the same operand order, as the straightforward formula it replaced, and every text is
# byte-for-byte what formatting it would give: ``tests/simulator/reference_airkorea.py`` keeps that original code
# and ``tests/simulator/test_airkorea_bodies.py`` checks the bodies against it.

# Noise factors by hash byte, e.g. ``_NOISE_PM10[b] == 0.72 + 0.56 * (b / 255.0)``: the very floats the
# per-row expressions computed, looked up instead.
_NOISE_PM10: Final = tuple(0.72 + 0.56 * (b / 255.0) for b in range(256))
_NOISE_PM25: Final = tuple(0.85 + 0.3 * (b / 255.0) for b in range(256))
_NOISE_GAS: Final = tuple(0.7 + 0.6 * (b / 255.0) for b in range(256))  # SO2 and NO2
_NOISE_CO: Final = tuple(0.8 + 0.4 * (b / 255.0) for b in range(256))
_NOISE_O3: Final = tuple(0.75 + 0.5 * (b / 255.0) for b in range(256))

# Texts by value. Integers: ``_INT_TEXT[n] == str(n).encode()``. Decimals: ``_DECIMALS_4[k]`` is k / 10**4 with
# 4 decimals (b"0.0123"), and so on; ``_decimal_text`` explains when a lookup equals formatting the float.
_TABLE_SIZE: Final = 4096
_INT_TEXT: Final = tuple(b"%d" % n for n in range(_TABLE_SIZE))
_DECIMALS_4: Final = tuple(b"%.4f" % (k / 10000) for k in range(_TABLE_SIZE))
_DECIMALS_3: Final = tuple(b"%.3f" % (k / 1000) for k in range(_TABLE_SIZE))
_DECIMALS_2: Final = tuple(b"%.2f" % (k / 100) for k in range(_TABLE_SIZE))
_DECIMALS_1: Final = tuple(b"%.1f" % (k / 10) for k in range(_TABLE_SIZE))
_NOT_A_TIE: Final = 0.5 - 1e-6

# CAI sub-indices of the integer 24-hour PM values, by value (larger values fall back to _cai).
_PM10_24_CAI: Final = tuple(_cai(v, _PM10_SCALE) for v in range(_TABLE_SIZE))
_PM25_24_CAI: Final = tuple(_cai(v, _PM25_SCALE) for v in range(_TABLE_SIZE))

# Canonical field order of a generated row: a reading's 25 fields, then the station's 4. Each response's key
# order (``KEY_ORDERS``) is a projection of it.
FIELDS: Final = (
    *("dataTime", "so2Value", "coValue", "o3Value", "no2Value", "pm10Value", "pm25Value"),
    *("pm10Value24", "pm25Value24"),
    *("so2Grade", "coGrade", "o3Grade", "no2Grade", "pm10Grade", "pm25Grade", "pm10Grade1h", "pm25Grade1h"),
    *("so2Flag", "coFlag", "o3Flag", "no2Flag", "pm10Flag", "pm25Flag"),
    *("khaiValue", "khaiGrade"),
    *("sidoName", "stationName", "stationCode", "mangName"),
)
READING_FIELDS: Final = 25  # FIELDS[:25] are the reading's, the rest the station's
FIELD_POSITIONS: Final[dict[str, int]] = {name: position for position, name in enumerate(FIELDS)}
# After the fields, a row carries its *shape*: a short name of its missing-value pattern (which fields are
# None), the same for every row of that pattern, so that renderers can cache one template per shape.
SHAPE: Final = len(FIELDS)

Row = list[bytes | None]  # FIELDS' values as UTF-8 (None: JSON null / empty XML element), then the shape

_F: Final = FIELD_POSITIONS
_VALUES: Final = slice(_F["so2Value"], _F["pm25Value"] + 1)  # so2, co, o3, no2, pm10, pm25 (as the flags)
_GAS_VALUES: Final = slice(_F["so2Value"], _F["no2Value"] + 1)
_GAS_GRADES: Final = slice(_F["so2Grade"], _F["no2Grade"] + 1)
_FLAGS: Final = slice(_F["so2Flag"], _F["pm25Flag"] + 1)
_GAS_FLAGS: Final = slice(_F["so2Flag"], _F["no2Flag"] + 1)
_PM10_VALUE: Final = _F["pm10Value"]
_PM10_VALUE24: Final = _F["pm10Value24"]
_PM25_VALUE24: Final = _F["pm25Value24"]
_PM10_GRADE: Final = _F["pm10Grade"]
_PM25_GRADE: Final = _F["pm25Grade"]
_PM10_GRADE1H: Final = _F["pm10Grade1h"]
_PM25_GRADE1H: Final = _F["pm25Grade1h"]
_SO2_FLAG: Final = _F["so2Flag"]
_PM10_FLAG: Final = _F["pm10Flag"]
_KHAI_VALUE: Final = _F["khaiValue"]
_KHAI_GRADE: Final = _F["khaiGrade"]

_COMM_TEXT: Final = _COMM.encode()
_COMM_FLAGS: Final = (_COMM_TEXT,) * 6
_COMM_GAS_FLAGS: Final = (_COMM_TEXT,) * 4
_OTHER_FLAG_TEXTS: Final = tuple(flag.encode() for flag in _OTHER_FLAGS)

# Shapes, by state and the hash bits that pick its missing values (see the branches of ``reading_row``).
_SHAPE_NORMAL: Final = b"normal"
_SHAPE_GAS_OUTAGE: Final = b"gas-outage"
_SHAPE_PM10_OUTAGE: Final = b"pm10-outage"
_SHAPES_OUTAGE: Final = tuple(b"outage-%d" % bits for bits in range(16))  # by r2 & 0b1111
_SHAPES_NO_KHAI: Final = (b"no-khai", b"no-khai-no-pm10grade")  # by r2 & 3 == 0
_SHAPES_OTHER_FLAG: Final = tuple(b"flag-%d" % flag for flag in range(6))  # by r2 % 6
_SHAPES_GRADE1H_GAP: Final = (b"grade1h-dash", b"grade1h-null")  # by r2 & 1

# Station texts in a row: as they are ("raw", for dicts), escaped for JSON strings, or escaped for XML text.
TextFormat = Literal["raw", "json", "xml"]


def xml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _station_texts(station: Station, fmt: TextFormat) -> tuple[bytes, bytes, bytes, bytes]:
    def text(value: str) -> bytes:
        if fmt == "json":
            value = json.dumps(value, ensure_ascii=False)[1:-1]
        elif fmt == "xml":
            value = xml_escape(value)
        return value.encode()

    return text(station.sido), text(station.name), text(station.code), text(station.mang)


class StationParams(NamedTuple):
    """What a station's rows are computed from, precomputed once (``station_params``)."""

    seed: int
    outage_bp: int
    pm10_base: float
    pm25_ratio: float
    so2_base: float
    co_by_hod: tuple[float, ...]  # co_base * _CO_DIURNAL[hod], the product the row formula starts with
    o3_by_hod: tuple[float, ...]
    no2_by_hod: tuple[float, ...]
    sido_index: int
    texts: dict[TextFormat, tuple[bytes, bytes, bytes, bytes]]  # sidoName, stationName, stationCode, mangName


def _station_params(s: Station) -> StationParams:
    return StationParams(
        seed=s.seed,
        outage_bp=s.outage_bp,
        pm10_base=s.pm10_base,
        pm25_ratio=s.pm25_ratio,
        so2_base=s.so2_base,
        co_by_hod=tuple(s.co_base * d for d in _CO_DIURNAL),
        o3_by_hod=tuple(s.o3_base * d for d in _O3_DIURNAL),
        no2_by_hod=tuple(s.no2_base * d for d in _NO2_DIURNAL),
        sido_index=s.sido_index,
        texts={fmt: _station_texts(s, fmt) for fmt in ("raw", "json", "xml")},
    )


@functools.cache
def _all_station_params() -> tuple[StationParams, ...]:
    return tuple(_station_params(station) for station in stations())


def station_params(station: Station) -> StationParams:
    """Cached for the simulator's own stations, computed for any other ``Station`` (tests use variants)."""
    everything = stations()
    if station.index < len(everything) and everything[station.index] is station:
        return _all_station_params()[station.index]
    return _station_params(station)


class HourFactors(NamedTuple):
    """What a row needs that depends only on the sido and the hour (shared by all the sido's stations)."""

    hour: int  # the hour index
    hod: int
    label: bytes  # dataTime
    regional: float
    pm_season: float
    pm_diurnal: float
    o3_season: float
    scale: float  # 0.8 + 0.2 * regional: divides O3, multiplies NO2
    pm25_damp: float  # 0.5 on heavy-episode days (regional > 2.4): coarse dust, relatively less PM2.5


@functools.lru_cache(maxsize=1 << 16)
def hour_factors(sido_index: int, index: int) -> HourFactors:
    hod = index % 24
    regional_today, regional_tomorrow, pm_season, o3_season = _day_factors(sido_index, index // 24)
    regional = regional_today + (regional_tomorrow - regional_today) * hod / 24.0
    return HourFactors(
        hour=index,
        hod=hod,
        label=data_time(index).encode(),
        regional=regional,
        pm_season=pm_season,
        pm_diurnal=_PM_DIURNAL[hod],
        o3_season=o3_season,
        scale=0.8 + 0.2 * regional,
        pm25_damp=0.5 if regional > 2.4 else 1.0,
    )


def _decimal_text(value: float, divisor: int, digits: int) -> bytes:
    """``f"{value / divisor:.{digits}f}"`` as bytes (the fallback of the table lookups in ``reading_row``).

    The lookup ``table[k]``, k = int(y + 0.5) with y = value * 10**digits / divisor (y = value or value / 10
    here), is exact unless y is within 1e-6 of a rounding tie: formatting rounds the float ``value / divisor``,
    which times 10**digits is within 1e-12 of y for these magnitudes, to the nearest integer k.
    """
    return b"%.*f" % (digits, value / divisor)


def reading_row(p: StationParams, h: HourFactors, ver: int, fmt: TextFormat = "raw") -> Row:
    """One hourly reading of a station: all FIELDS (projected to a ``ver``'s keys on output), then the shape.

    ``ver`` is -1 when absent, else the minor version (0 for 1.0 ... 5 for 1.5); it only sets the decimals.
    ``fmt`` says how the station texts are escaped; no other value ever needs escaping.
    """
    index, hod, label, regional, pm_season, pm_diurnal, o3_season, scale, pm25_damp = h
    seed, outage_bp, pm10_base, pm25_ratio, so2_base, co_by_hod, o3_by_hod, no2_by_hod, _, texts = p

    # r1 = mix32(seed ^ (index * 0x2545F491)), r2 = mix32(r1 + 0x6A09E667), written out: a call costs as much.
    x = (seed ^ (index * 0x2545F491)) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    r1 = x ^ (x >> 16)
    x = (r1 + 0x6A09E667) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    r2 = x ^ (x >> 16)
    b2 = (r1 >> 8) & 0xFF

    # ``round(v) or 1`` is ``max(1, round(v))`` for v >= 0, at half the cost.
    pm_daily = pm10_base * regional * pm_season
    pm10 = round(pm_daily * pm_diurnal * _NOISE_PM10[r1 & 0xFF]) or 1
    ratio = pm25_ratio * pm25_damp
    pm25 = round(pm10 * ratio * _NOISE_PM25[b2]) or 1
    pm10_24 = round(pm_daily) or 1
    pm25_24 = round(pm_daily * ratio) or 1
    so2 = so2_base * _NOISE_GAS[(r1 >> 16) & 0xFF]
    co = co_by_hod[hod] * _NOISE_CO[r1 >> 24]
    o3 = o3_by_hod[hod] * o3_season * _NOISE_O3[r2 & 0xFF] / scale
    no2 = no2_by_hod[hod] * _NOISE_GAS[b2] * scale

    # Which values are missing: outages come in blocks of a few hours, the rest is per row.
    # The block test is mix32(seed + (index // 5) * 0x61C88647) % 10000 < outage_bp, written out.
    x = (seed + (index // 5) * 0x61C88647) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    if (x ^ (x >> 16)) % 10000 < outage_bp:
        state = _OUTAGE
    else:
        roll = (r2 >> 8) % 10000
        if roll >= 520:
            state = _NORMAL
        elif roll < 150:
            state = _GAS_OUTAGE
        elif roll < 220:
            state = _PM10_OUTAGE
        elif roll < 420:
            state = _NO_KHAI
        elif roll < 470:
            state = _OTHER_FLAG
        else:
            state = _GRADE1H_GAP
    missing = b"" if (r2 >> 24) % 10 == 0 else b"-"

    # Decimal texts: so2/o3/no2 (1e-4 ppm) and co (1e-2 ppm) in ppm, with 4 and 2 decimals from ver 1.5 on, else
    # 3 and 1. y is the value in units of the last decimal, looked up unless it is at a tie (``_decimal_text``).
    if ver >= 5:
        gas_digits, gas_table, co_digits, co_table = 4, _DECIMALS_4, 2, _DECIMALS_2
        so2_y, co_y, o3_y, no2_y = so2, co, o3, no2
    else:
        gas_digits, gas_table, co_digits, co_table = 3, _DECIMALS_3, 1, _DECIMALS_1
        so2_y, co_y, o3_y, no2_y = so2 / 10, co / 10, o3 / 10, no2 / 10
    k = int(so2_y + 0.5)
    if k < _TABLE_SIZE and -_NOT_A_TIE < so2_y - k < _NOT_A_TIE:
        so2_text = gas_table[k]
    else:
        so2_text = _decimal_text(so2, 10000, gas_digits)
    k = int(co_y + 0.5)
    if k < _TABLE_SIZE and -_NOT_A_TIE < co_y - k < _NOT_A_TIE:
        co_text = co_table[k]
    else:
        co_text = _decimal_text(co, 100, co_digits)
    k = int(o3_y + 0.5)
    if k < _TABLE_SIZE and -_NOT_A_TIE < o3_y - k < _NOT_A_TIE:
        o3_text = gas_table[k]
    else:
        o3_text = _decimal_text(o3, 10000, gas_digits)
    k = int(no2_y + 0.5)
    if k < _TABLE_SIZE and -_NOT_A_TIE < no2_y - k < _NOT_A_TIE:
        no2_text = gas_table[k]
    else:
        no2_text = _decimal_text(no2, 10000, gas_digits)

    row: Row = [
        label,
        so2_text,
        co_text,
        o3_text,
        no2_text,
        _INT_TEXT[pm10] if pm10 < _TABLE_SIZE else b"%d" % pm10,
        _INT_TEXT[pm25] if pm25 < _TABLE_SIZE else b"%d" % pm25,
        _INT_TEXT[pm10_24] if pm10_24 < _TABLE_SIZE else b"%d" % pm10_24,
        _INT_TEXT[pm25_24] if pm25_24 < _TABLE_SIZE else b"%d" % pm25_24,
        # Grades 1-4 (좋음/보통/나쁨/매우나쁨) from each pollutant's breakpoints.
        b"1" if so2 <= 200.0 else b"2" if so2 <= 500.0 else b"3" if so2 <= 1500.0 else b"4",
        b"1" if co <= 200.0 else b"2" if co <= 900.0 else b"3" if co <= 1500.0 else b"4",
        b"1" if o3 <= 300.0 else b"2" if o3 <= 900.0 else b"3" if o3 <= 1500.0 else b"4",
        b"1" if no2 <= 300.0 else b"2" if no2 <= 600.0 else b"3" if no2 <= 2000.0 else b"4",
        b"1" if pm10_24 <= 30 else b"2" if pm10_24 <= 80 else b"3" if pm10_24 <= 150 else b"4",
        b"1" if pm25_24 <= 15 else b"2" if pm25_24 <= 35 else b"3" if pm25_24 <= 75 else b"4",
        b"1" if pm10 <= 30 else b"2" if pm10 <= 80 else b"3" if pm10 <= 150 else b"4",
        b"1" if pm25 <= 15 else b"2" if pm25 <= 35 else b"3" if pm25 <= 75 else b"4",
        None,  # so2Flag ... pm25Flag
        None,
        None,
        None,
        None,
        None,
        missing,  # khaiValue, khaiGrade: set below when the CAI is published
        None,
        *texts[fmt],
        _SHAPE_NORMAL,
    ]

    if state in _WITH_KHAI:
        khai_float = max(
            _PM10_24_CAI[pm10_24] if pm10_24 < _TABLE_SIZE else _cai(pm10_24, _PM10_SCALE),
            _PM25_24_CAI[pm25_24] if pm25_24 < _TABLE_SIZE else _cai(pm25_24, _PM25_SCALE),
            _cai(o3, _O3_SCALE),
            _cai(no2, _NO2_SCALE),
        )
        if so2 > 150.0 or co > 150.0:  # SO2 / CO only matter for the CAI when unusually high
            khai_float = max(khai_float, _cai(so2, _SO2_SCALE), _cai(co, _CO_SCALE))
        khai = round(khai_float)  # at most 500
        row[_KHAI_VALUE] = _INT_TEXT[khai]
        row[_KHAI_GRADE] = b"1" if khai <= 50 else b"2" if khai <= 100 else b"3" if khai <= 250 else b"4"
        if state == _OTHER_FLAG:  # one value flagged (점검및교정 / 장비점검 / 자료이상)
            row[_SO2_FLAG + r2 % 6] = _OTHER_FLAG_TEXTS[(r2 >> 3) % 3]
            row[SHAPE] = _SHAPES_OTHER_FLAG[r2 % 6]
        elif state == _GRADE1H_GAP:
            gap = None if r2 & 1 else b"-"
            row[_PM10_GRADE1H] = row[_PM25_GRADE1H] = gap
            row[SHAPE] = _SHAPES_GRADE1H_GAP[r2 & 1]
    elif state == _OUTAGE:
        row[_VALUES] = (missing,) * 6
        row[_FLAGS] = _COMM_FLAGS
        row[_GAS_GRADES] = (None, None, None, None)
        row[_PM10_GRADE1H] = None
        row[_PM25_GRADE1H] = None if r2 & 1 else b"-"
        # The 24-hour PM grade can survive an outage (도봉구, 2024-03-06); PM2.5's usually does not.
        if r2 & 2:
            row[_PM10_GRADE] = None
            row[_PM10_VALUE24] = missing
        if r2 & 12:
            row[_PM25_GRADE] = None
            row[_PM25_VALUE24] = missing
        row[SHAPE] = _SHAPES_OUTAGE[r2 & 0b1111]
    elif state == _GAS_OUTAGE:
        row[_GAS_VALUES] = (missing,) * 4
        row[_GAS_FLAGS] = _COMM_GAS_FLAGS
        row[_GAS_GRADES] = (None, None, None, None)
        row[SHAPE] = _SHAPE_GAS_OUTAGE
    elif state == _PM10_OUTAGE:
        row[_PM10_VALUE] = missing
        row[_PM10_FLAG] = _COMM_TEXT
        row[_PM10_GRADE1H] = None
        row[SHAPE] = _SHAPE_PM10_OUTAGE
    else:  # _NO_KHAI
        if r2 & 3 == 0:
            row[_PM10_GRADE] = None
        row[SHAPE] = _SHAPES_NO_KHAI[r2 & 3 == 0]
    return row


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def reading(station: Station, index: int, ver: int) -> dict[str, str | None]:
    """All fields of one hourly reading, before projection to a ``ver``'s field set."""
    row = reading_row(station_params(station), hour_factors(station.sido_index, index), ver)
    return {name: _text(value) for name, value in zip(FIELDS[:READING_FIELDS], row, strict=False)}


# ------------------------------------------------------------------------------------------------ revisions
# Real-time values are preliminary (airkorea.md §8). A station-hour still provisional is generated as usual and
# then rewritten as it was first served (``revise_row``); every other row is left as generated, so the plain
# path stays the one pinned to the reference, and with no revisions asked for nothing runs but one ``is None``.

FILLED_LATER: Final = 1  # first served in full 통신장애: every value "-", every grade null, every flag 통신장애
CORRECTED: Final = 2  # first served with PM10 / PM2.5 a few µg/m³ high
CORRECTION_PM10: Final = 6  # µg/m³ added to pm10Value and pm10Value24 while provisional
CORRECTION_PM25: Final = 3  # µg/m³ added to pm25Value and pm25Value24

_MEASURED: Final = slice(_F["so2Value"], _F["pm25Value24"] + 1)  # the 8 values (khaiValue apart)
_GRADES: Final = slice(_F["so2Grade"], _F["pm25Grade1h"] + 1)  # the 8 grades (khaiGrade apart)
_PM25_VALUE: Final = _F["pm25Value"]
_DASHES: Final = (b"-",) * (_MEASURED.stop - _MEASURED.start)
_NO_GRADES: Final = (None,) * (_GRADES.stop - _GRADES.start)
_SHAPE_FILLED_LATER: Final = b"filled-later"  # a correction keeps its row's shape: it only changes numbers


def revision_hash(station_index: int, index: int) -> int:
    """A 32-bit hash of (station, hour) that picks the station-hours of ``Quirks.revision_share``."""
    return mix32(mix32(index * 0x85EBCA77 + 0x27D4EB2F) ^ (station_index * 0x9E3779B1))


@dataclass(frozen=True, slots=True)
class Revisions:
    """Which station-hours are still provisional at one clock, and how each is served until it is final."""

    first: int  # the oldest hour index still provisional (older hours are served final)
    filled_later: frozenset[tuple[str, int]]  # (station name, hour index)
    corrected: frozenset[tuple[str, int]]
    filled_below: int  # station-hours with revision_hash below this are filled later,
    shared_below: int  # and those from filled_below up to this are corrected (0: no share)

    def kind(self, station: Station, index: int) -> int:
        """0 (served final), FILLED_LATER or CORRECTED; the explicit sets win over the share, filled over
        corrected."""
        if index < self.first:
            return 0
        if self.filled_later or self.corrected:
            key = (station.name, index)
            if key in self.filled_later:
                return FILLED_LATER
            if key in self.corrected:
                return CORRECTED
        if self.shared_below:
            h = revision_hash(station.index, index)
            if h < self.filled_below:
                return FILLED_LATER
            if h < self.shared_below:
                return CORRECTED
        return 0


def _pm10_grade(value: int) -> bytes:
    return b"1" if value <= 30 else b"2" if value <= 80 else b"3" if value <= 150 else b"4"


def _pm25_grade(value: int) -> bytes:
    return b"1" if value <= 15 else b"2" if value <= 35 else b"3" if value <= 75 else b"4"


def _corrected(row: Row, value: int, grade: int, delta: int, grader: Callable[[int], bytes]) -> int | None:
    """Raise the value at ``value`` by ``delta`` if it is a number, and the grade at ``grade`` with it if it is
    published; the raised value, or None."""
    text = row[value]
    if text is None or not text.isdigit():
        return None
    raised = int(text) + delta
    row[value] = b"%d" % raised
    if row[grade] not in (None, b"-"):
        row[grade] = grader(raised)
    return raised


def revise_row(row: Row, kind: int) -> None:
    """Rewrite a generated row, in place, as a provisional station-hour of ``kind`` is first served.

    A correction leaves the row as ``reading_row`` would have made it from the higher PM values: the PM grades
    follow them, and so does the CAI, which is the rounded maximum of sub-indices that only grow with the 24-hour
    PM values: raising them gives ``max(khai, round(sub-index of each raised value))``.
    """
    if kind == FILLED_LATER:
        row[_MEASURED] = _DASHES
        row[_GRADES] = _NO_GRADES
        row[_FLAGS] = _COMM_FLAGS
        row[_KHAI_VALUE] = b"-"
        row[_KHAI_GRADE] = None
        row[SHAPE] = _SHAPE_FILLED_LATER
        return
    _corrected(row, _PM10_VALUE, _PM10_GRADE1H, CORRECTION_PM10, _pm10_grade)
    _corrected(row, _PM25_VALUE, _PM25_GRADE1H, CORRECTION_PM25, _pm25_grade)
    pm10_24 = _corrected(row, _PM10_VALUE24, _PM10_GRADE, CORRECTION_PM10, _pm10_grade)
    pm25_24 = _corrected(row, _PM25_VALUE24, _PM25_GRADE, CORRECTION_PM25, _pm25_grade)
    khai_text = row[_KHAI_VALUE]
    if khai_text is not None and khai_text.isdigit():
        khai = int(khai_text)
        if pm10_24 is not None:
            khai = max(khai, round(_cai(pm10_24, _PM10_SCALE)))
        if pm25_24 is not None:
            khai = max(khai, round(_cai(pm25_24, _PM25_SCALE)))
        row[_KHAI_VALUE] = b"%d" % khai
        if row[_KHAI_GRADE] is not None:
            row[_KHAI_GRADE] = b"1" if khai <= 50 else b"2" if khai <= 100 else b"3" if khai <= 250 else b"4"


# ------------------------------------------------------------------------------------------------ items and pages


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
# Positions in a Row of each key order's values.
KEY_POSITIONS: Final[dict[tuple[bool, int], tuple[int, ...]]] = {
    key: tuple(FIELD_POSITIONS[name] for name in order) for key, order in KEY_ORDERS.items()
}


def row_items(rows: list[Row], ctprvn: bool, ver: int) -> list[dict[str, str | None]]:
    """Rows (with ``"raw"`` station texts) as response items: dicts in the operation's and ``ver``'s key order."""
    order = zip(KEY_ORDERS[(ctprvn, ver)], KEY_POSITIONS[(ctprvn, ver)], strict=True)
    pairs = tuple(order)
    return [{name: _text(row[position]) for name, position in pairs} for row in rows]


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
    row = reading_row(station_params(station), hour_factors(station.sido_index, index), ver)
    return row_items([row], ctprvn, ver)[0]


def ctprvn_order(sido: str, index: int) -> list[Station]:
    """Stations of a sido (or 전국) in the hour's order: not alphabetical, reshuffled every hour."""
    return list(_ctprvn_order(sido, index))


@functools.lru_cache(maxsize=256)  # pages of the same hour share it
def _ctprvn_order(sido: str, index: int) -> tuple[Station, ...]:
    group = stations_by_sido().get(sido, ())
    salt = index * 0x2C1B3C6D
    if sido == ALL_SIDOS:
        ordered: list[Station] = []
        for name in SIDOS:
            ordered.extend(sorted(stations_by_sido()[name], key=lambda s: mix32(s.seed ^ salt)))
        return tuple(ordered)
    return tuple(sorted(group, key=lambda s: mix32(s.seed ^ salt)))


def clear_ctprvn_order_cache() -> None:
    """Forget the cached station orders (the benchmark times the first request of an hour)."""
    _ctprvn_order.cache_clear()


def page_bounds(total: int, page: int, rows: int) -> tuple[int, int]:
    start = min(total, (page - 1) * rows)
    return start, min(total, start + rows)


def ctprvn_rows(
    sido: str,
    index: int,
    ver: int,
    page: int,
    rows: int,
    fmt: TextFormat = "raw",
    skip: frozenset[str] = frozenset(),
    revisions: Revisions | None = None,
) -> tuple[int, list[Row]]:
    """``(totalCount, rows)`` of one ``getCtprvnRltmMesureDnsty`` page at hour ``index``, without the stations
    named in ``skip``, provisional station-hours of ``revisions`` served as first published."""
    ordered = _ctprvn_order(sido, index)
    if skip:
        ordered = tuple(s for s in ordered if s.name not in skip)
    start, stop = page_bounds(len(ordered), page, rows)
    params = _all_station_params()
    factors = [hour_factors(sido_index, index) for sido_index in range(len(SIDOS))]
    chosen = ordered[start:stop]
    found = [reading_row(params[s.index], factors[s.sido_index], ver, fmt) for s in chosen]
    if revisions is not None and index >= revisions.first:
        for station, row in zip(chosen, found, strict=True):
            kind = revisions.kind(station, index)
            if kind:
                revise_row(row, kind)
    return len(ordered), found


def ctprvn_page(sido: str, index: int, ver: int, page: int, rows: int) -> tuple[int, list[dict[str, str | None]]]:
    """``(totalCount, items)`` of one ``getCtprvnRltmMesureDnsty`` page at hour ``index``."""
    total, found = ctprvn_rows(sido, index, ver, page, rows)
    return total, row_items(found, True, ver)


DATA_TERM_HOURS: Final[dict[str, int]] = {"DAILY": 24, "MONTH": 30 * 24, "3MONTH": 92 * 24}


def msrstn_rows(
    station: Station,
    newest: int,
    hours: int,
    ver: int,
    page: int,
    rows: int,
    fmt: TextFormat = "raw",
    skip: frozenset[int] = frozenset(),
    revisions: Revisions | None = None,
) -> tuple[int, list[Row]]:
    """``(totalCount, rows)`` of one ``getMsrstnAcctoRltmMesureDnsty`` page, newest hour first, without the
    hour indexes in ``skip``, provisional station-hours of ``revisions`` served as first published."""
    indexes = [newest - offset for offset in range(hours) if newest - offset not in skip] if skip else None
    total = len(indexes) if indexes is not None else hours
    start, stop = page_bounds(total, page, rows)
    p = station_params(station)
    sido_index = p.sido_index
    chosen = indexes[start:stop] if indexes is not None else [newest - offset for offset in range(start, stop)]
    found = [reading_row(p, hour_factors(sido_index, index), ver, fmt) for index in chosen]
    if revisions is not None:
        for index, row in zip(chosen, found, strict=True):
            if index < revisions.first:
                break  # newest first: only the first few rows can still be provisional
            kind = revisions.kind(station, index)
            if kind:
                revise_row(row, kind)
    return total, found


def msrstn_page(
    station: Station, newest: int, hours: int, ver: int, page: int, rows: int
) -> tuple[int, list[dict[str, str | None]]]:
    """``(totalCount, items)`` of one ``getMsrstnAcctoRltmMesureDnsty`` page, newest hour first."""
    total, found = msrstn_rows(station, newest, hours, ver, page, rows)
    return total, row_items(found, False, ver)
