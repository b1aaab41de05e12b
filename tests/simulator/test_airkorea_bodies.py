"""The optimised AirKorea payload path writes exactly the bytes the original code wrote.

Two proofs: bodies for a fixed set of cases hash to digests recorded with the original code before it was
optimised, and bodies (and dict items) equal those of ``reference_airkorea``, a frozen copy of that code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from pipeline.simulator import SIM_DATA_GO_KEY, Simulator, airkorea, airkorea_data, world
from tests.simulator import reference_airkorea as ref

CLOCKS = (
    datetime(2025, 1, 20, 3, 30, tzinfo=UTC),  # the suite's FIXED_NOW
    datetime(2024, 8, 1, 15, 5, tzinfo=UTC),  # 00:05 KST: the newest row is "2024-08-01 24:00"
    datetime(2023, 3, 15, 21, 45, tzinfo=UTC),  # spring (황사 season), 06:45 KST
)
STATION_PICKS = (0, 17, 45, 123, 300, 451, -1)  # Seoul, other mang kinds and sidos, the last station
# (dataTerm hours, pageNo, numOfRows): whole and partial pages, a page past the end
PAGINGS = ((24, 1, 10), (24, 2, 100), (720, 3, 250), (2208, 1, 2208), (2208, 2, 1000), (2208, 9, 300))
VERS = range(-1, 6)  # absent, 1.0 ... 1.5


@dataclasses.dataclass(frozen=True)
class Case:
    fmt: airkorea.Format
    ver: int
    newest: int
    station: airkorea_data.Station | None = None  # getMsrstnAcctoRltmMesureDnsty when set
    hours: int = 0
    sido: str = ""  # getCtprvnRltmMesureDnsty when set
    page: int = 1
    rows: int = 10

    @property
    def group(self) -> str:
        kind = "msrstn" if self.station is not None else "ctprvn"
        return f"{kind} ver={self.ver} {self.fmt}"

    def body(self) -> bytes:
        if self.station is not None:
            return airkorea.msrstn_body(self.fmt, self.station, self.newest, self.hours, self.ver, self.page, self.rows)
        return airkorea.ctprvn_body(self.fmt, self.sido, self.newest, self.ver, self.page, self.rows)

    def reference_body(self) -> bytes:
        json_wanted = self.fmt == "json"
        if self.station is not None:
            return ref.msrstn_body(json_wanted, self.station, self.newest, self.hours, self.ver, self.page, self.rows)
        return ref.ctprvn_body(json_wanted, self.sido, self.newest, self.ver, self.page, self.rows)


def cases() -> Iterator[Case]:
    """1,134 bodies, about 235,000 rows: every ver and format, both operations, all sidos, several clocks."""
    for fmt in ("json", "xml"):
        for ver in VERS:
            for c, clock in enumerate(CLOCKS):
                newest = airkorea_data.newest_hour(clock)
                for s, pick in enumerate(STATION_PICKS):
                    hours, page, rows = PAGINGS[(c + s + ver) % len(PAGINGS)]
                    yield Case(fmt, ver, newest, airkorea_data.stations()[pick], hours, page=page, rows=rows)
                for sido in (*airkorea_data.SIDOS, airkorea_data.ALL_SIDOS, "평양"):
                    yield Case(fmt, ver, newest, sido=sido, page=1, rows=1000)
                yield Case(fmt, ver, newest, sido=airkorea_data.ALL_SIDOS, page=2, rows=300)


# sha256 over (8-byte big-endian length + body) of each group's cases in order, recorded with the original
# (pre-optimisation) code: pipeline.simulator.data.msrstn_page / ctprvn_page + airkorea.render (data.py has since
# been split by API: those functions are now in airkorea_data).
GOLDEN = {
    "msrstn ver=-1 json": "380ef2fcb9c81c71b6d3ca6ac93db0abcc45eec3d8f4266b2267dc551657158e",
    "ctprvn ver=-1 json": "6f4f3ce1bd6e918a789649bfe99ed752f5f7867bf812d845f748db688e3f53fc",
    "msrstn ver=0 json": "b3a9b4db1a7871bb060f49834a1e9b21979ced7694207313a173e55abc2b2242",
    "ctprvn ver=0 json": "9358757c32e1d4c58ea2708f0b2acf42e3741256694242b1aa57127eac535541",
    "msrstn ver=1 json": "143fd8fcd638104f8efbfba4ee9f7eb6a1fa7d3093d653be1ee14ea4baae8728",
    "ctprvn ver=1 json": "61058634a70f16a978577c2f008db85af542c87fe41f99e0eb530870957e85a1",
    "msrstn ver=2 json": "2f5791868e6de1bf2e37acd2a670f3f76ce23fc72a4d6b00f60cfa6d65a03d18",
    "ctprvn ver=2 json": "f4078d5737ececf3d53117307862f4b33c22e3ff9b3a47f88beaafc944351cfa",
    "msrstn ver=3 json": "616ef817b584a37d825720b21d012f4a81f24837a4f38d4dc0eb007a19a3f5a5",
    "ctprvn ver=3 json": "c73c4fb0a2a87d6d5a8ceed38eed17247b6b915ef88a0976365af21d831af873",
    "msrstn ver=4 json": "e7ce523df76bb764a660e2447e3f5b8c30b18be09d6b7b86c65670c1f71efc45",
    "ctprvn ver=4 json": "737f75a7d2a21fdd723ec47c716aa2a652056bd022c3e3febf34eb91478a8c9a",
    "msrstn ver=5 json": "5fa5ff5b60ffa75a04875365676ab834608d0438c3c94f71b38dc871e87626db",
    "ctprvn ver=5 json": "bd0959b123e21d71959c5706964e63e3bb3051c86a595a5e2f53fb5df8518a7d",
    "msrstn ver=-1 xml": "40a9cb42e9b72283403f14a543a4d7cfb9df3eb67b0a7fef53d01be146660c38",
    "ctprvn ver=-1 xml": "34ec3ce1795acaf7c0d48a361c9b21e4389657f89dcd3120285ecbde208be05c",
    "msrstn ver=0 xml": "46306b15f7dfc41d323538f1878efb457ef2b456e26d3bb14176c07b25e90652",
    "ctprvn ver=0 xml": "3a80da7a74125c69d48af9a86447be96f9b5957d8a6ec66b87836a71fa4e225c",
    "msrstn ver=1 xml": "9931684762dd6f3a8ac85f0980b4237b62cd7a3d3b2aa0039304cf8a373bedf9",
    "ctprvn ver=1 xml": "5690c73393542b427fedc532b02e5ec0d7ff28b69f4c4508634288bab04b1172",
    "msrstn ver=2 xml": "b2886ac1f27f7bb0cc33a26929a6b97e65062274e6b2c7dadfaa1eff756aad1f",
    "ctprvn ver=2 xml": "9f6e233d42a82c7c8d057ee6f9c5c624f7d63ab10f0b3004bf419a9feb1fda7b",
    "msrstn ver=3 xml": "a5f11b31128e9a990c5578f60334682060f3512e62d71bd1704cf9010cdcab98",
    "ctprvn ver=3 xml": "14869dbe5567489dabde12cce20214b4c84715f071b3764d2215aa21b9c4fbba",
    "msrstn ver=4 xml": "7cbe185ac45ceef12e0fde8755e213d83d5c0ad74a8981c771ca2beafe595069",
    "ctprvn ver=4 xml": "a5da8d8524521bf1065e11b6a4bc422fadea342ac60ddc146365e490dbfcadb6",
    "msrstn ver=5 xml": "0d73a76784bfbac4f62c63d34cfe00a7cfeffac8133102d0e7b20d8cb40ba68a",
    "ctprvn ver=5 xml": "bc005a2b56e506024bd08815e27c345d6f128f32b4962150e16e885b8bbebefe",
}


def test_bodies_match_digests_recorded_before_the_optimisation() -> None:
    digests: dict[str, Any] = {}
    for case in cases():
        body = case.body()
        digest = digests.setdefault(case.group, hashlib.sha256())
        digest.update(len(body).to_bytes(8, "big"))
        digest.update(body)
    assert {group: digest.hexdigest() for group, digest in digests.items()} == GOLDEN


def _sampled_cases(seed: int, count: int) -> Iterator[Case]:
    rng = random.Random(seed)
    for _ in range(count):
        clock = (
            datetime(2021, 1, 1, tzinfo=UTC)
            + (datetime(2026, 1, 1, tzinfo=UTC) - datetime(2021, 1, 1, tzinfo=UTC)) * rng.random()
        )
        newest = airkorea_data.newest_hour(clock)
        fmt: airkorea.Format = rng.choice(("json", "xml"))
        ver = rng.choice(VERS)
        if rng.random() < 0.7:
            hours = rng.choice(tuple(airkorea_data.DATA_TERM_HOURS.values()))
            rows = rng.choice((1, 10, 100, 500, 1000, 2208))
            page = rng.randint(1, hours // rows + 2)
            yield Case(fmt, ver, newest, rng.choice(airkorea_data.stations()), hours, page=page, rows=rows)
        else:
            sido = rng.choice((*airkorea_data.SIDOS, airkorea_data.ALL_SIDOS))
            yield Case(fmt, ver, newest, sido=sido, page=rng.randint(1, 3), rows=rng.choice((1, 7, 40, 300, 1000)))


@pytest.mark.parametrize("seed", range(4))
def test_bodies_equal_the_reference_implementation(seed: int) -> None:
    for case in _sampled_cases(seed, 80):
        assert case.body() == case.reference_body(), case


def test_dict_items_equal_the_reference_implementation() -> None:
    newest = airkorea_data.newest_hour(CLOCKS[0])
    for ver in VERS:
        for station in airkorea_data.stations()[::110]:
            expected = ref.msrstn_page(station, newest, 720, ver, 2, 240)
            actual = airkorea_data.msrstn_page(station, newest, 720, ver, 2, 240)
            assert actual == expected
            assert [list(item.items()) for item in actual[1]] == [list(item.items()) for item in expected[1]]
            for offset in (0, 1, 100):
                reading = airkorea_data.reading(station, newest - offset, ver)
                assert list(reading.items()) == list(ref.reading(station, newest - offset, ver).items())
                for ctprvn in (True, False):
                    item = airkorea_data.station_item(station, newest - offset, ver, ctprvn=ctprvn)
                    expected_item = ref.station_item(station, newest - offset, ver, ctprvn=ctprvn)
                    assert list(item.items()) == list(expected_item.items())
        expected = ref.ctprvn_page(airkorea_data.ALL_SIDOS, newest, ver, 1, 1000)
        actual = airkorea_data.ctprvn_page(airkorea_data.ALL_SIDOS, newest, ver, 1, 1000)
        assert [list(item.items()) for item in actual[1]] == [list(item.items()) for item in expected[1]]


def test_decimal_ties_fall_back_to_formatting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value at a rounding tie is formatted, not looked up (a lookup could round the other way)."""
    fallbacks: list[float] = []

    def decimal_text(value: float, divisor: int, digits: int) -> bytes:
        fallbacks.append(value)
        return b"%.*f" % (digits, value / divisor)

    monkeypatch.setattr(airkorea_data, "_decimal_text", decimal_text)
    station = airkorea_data.stations()[7]
    index = airkorea_data.newest_hour(CLOCKS[0])
    r1 = world.mix32(station.seed ^ (index * 0x2545F491))
    noise = 0.7 + 0.6 * (((r1 >> 16) & 0xFF) / 255.0)
    checked = 0
    for tie in (12.5, 27.5, 30.5, 125.0, 275.0, 305.0, 1234.5):  # so2 ties for 4 decimals, and for 3 (x.5 / 10)
        variant = dataclasses.replace(station, so2_base=tie / noise)
        so2 = variant.so2_base * noise
        assert abs(so2 - tie) < 1e-9
        for ver in (3, 5):
            assert airkorea_data.reading(variant, index, ver) == ref.reading(variant, index, ver)
            checked += 1
    assert checked == 14
    assert len(fallbacks) >= 7  # each tie is one for ver 1.5 (4 decimals) or for ver 1.3 (3 decimals)


def test_a_row_shape_fixes_which_fields_are_null() -> None:
    """Renderers cache one template per shape: every row of a shape must have the same None fields."""
    nulls_by_shape: dict[bytes | None, tuple[bool, ...]] = {}
    newest = airkorea_data.newest_hour(CLOCKS[2])
    for station in airkorea_data.stations()[::15]:
        _, rows = airkorea_data.msrstn_rows(station, newest, 2208, 5, 1, 2208)
        for row in rows:
            nulls = tuple(value is None for value in row[: airkorea_data.SHAPE])
            assert nulls_by_shape.setdefault(row[airkorea_data.SHAPE], nulls) == nulls
    assert len(nulls_by_shape) == 29  # every shape occurs


async def test_http_bodies_equal_the_reference(sim: Simulator, session: aiohttp.ClientSession) -> None:
    newest = airkorea_data.newest_hour(sim.state.now())
    station = airkorea_data.stations_by_name()["종로구"]
    base = f"{sim.airkorea_base_url}/ArpltnInforInqireSvc"
    requests = [
        (
            "getMsrstnAcctoRltmMesureDnsty",
            {
                "stationName": "종로구",
                "dataTerm": "3MONTH",
                "ver": "1.5",
                "numOfRows": "1000",
                "pageNo": "2",
                "returnType": "json",
            },
            ref.msrstn_body(True, station, newest, 2208, 5, 2, 1000),
        ),
        (
            "getMsrstnAcctoRltmMesureDnsty",
            {"stationName": "종로구", "dataTerm": "MONTH", "ver": "1.3", "numOfRows": "100"},
            ref.msrstn_body(False, station, newest, 720, 3, 1, 100),
        ),
        (
            "getMsrstnAcctoRltmMesureDnsty",
            {"stationName": "구로동", "returnType": "json"},
            ref.render_body(True, 0, [], 1, 10),
        ),
        ("getMsrstnAcctoRltmMesureDnsty", {"stationName": "구로동"}, ref.render_body(False, 0, [], 1, 10)),
        (
            "getCtprvnRltmMesureDnsty",
            {"sidoName": "전국", "ver": "1.0", "numOfRows": "1000", "returnType": "json"},
            ref.ctprvn_body(True, "전국", newest, 0, 1, 1000),
        ),
        (
            "getCtprvnRltmMesureDnsty",
            {"sidoName": "경기", "numOfRows": "50", "pageNo": "2"},
            ref.ctprvn_body(False, "경기", newest, -1, 2, 50),
        ),
    ]
    for operation, params, expected in requests:
        async with session.get(f"{base}/{operation}", params={"serviceKey": SIM_DATA_GO_KEY, **params}) as response:
            assert response.status == 200
            assert await response.read() == expected, (operation, params)
