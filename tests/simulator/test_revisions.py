"""The simulator's revisions (all off by default): AirKorea station-hours first served in 통신장애 and filled in
later, or first served with PM a few units high and corrected later, by name or as a share; TMDB Korean titles
(and runtimes) that arrive late."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pipeline.cli import main
from pipeline.simulator import (
    SIM_DATA_GO_KEY,
    SIM_TMDB_API_KEY,
    Quirks,
    Simulator,
    SimulatorState,
    TmdbQuirks,
    airkorea,
    airkorea_data,
    tmdb_data,
)
from tests.simulator import reference_airkorea as ref
from tests.simulator.conftest import FIXED_NOW

NEWEST = datetime(2025, 1, 20, 3, tzinfo=UTC)  # the hour ending 12:00 KST, newest at FIXED_NOW (12:30 KST)
CTPRVN = "getCtprvnRltmMesureDnsty"
MSRSTN = "getMsrstnAcctoRltmMesureDnsty"
MEASURED = (
    *("so2Value", "coValue", "o3Value", "no2Value", "pm10Value", "pm25Value", "pm10Value24", "pm25Value24"),
    "khaiValue",
)
GRADES = (
    *("so2Grade", "coGrade", "o3Grade", "no2Grade", "pm10Grade", "pm25Grade", "pm10Grade1h", "pm25Grade1h"),
    "khaiGrade",
)
FLAGS = ("so2Flag", "coFlag", "o3Flag", "no2Flag", "pm10Flag", "pm25Flag")
PM_CHANGES = {"pm10Value": 6, "pm25Value": 3, "pm10Value24": 6, "pm25Value24": 3}  # the documented correction


# ------------------------------------------------------------------------------------------------ helpers


async def raw(session: aiohttp.ClientSession, sim: Simulator, operation: str, **query: str) -> bytes:
    params = {"serviceKey": SIM_DATA_GO_KEY, "returnType": "json", "ver": "1.5", "numOfRows": "1000", **query}
    async with session.get(f"{sim.airkorea_base_url}/ArpltnInforInqireSvc/{operation}", params=params) as response:
        assert response.status == 200
        return await response.read()


async def items(session: aiohttp.ClientSession, sim: Simulator, operation: str, **query: str) -> list[dict[str, Any]]:
    async with session.get(
        f"{sim.airkorea_base_url}/ArpltnInforInqireSvc/{operation}",
        params={"serviceKey": SIM_DATA_GO_KEY, "returnType": "json", "ver": "1.5", "numOfRows": "1000", **query},
    ) as response:
        found: list[dict[str, Any]] = (await response.json(content_type=None))["response"]["body"]["items"]
        return found


async def province(session: aiohttp.ClientSession, sim: Simulator, sido: str = "서울") -> dict[str, dict[str, Any]]:
    return {item["stationName"]: item for item in await items(session, sim, CTPRVN, sidoName=sido)}


async def series(session: aiohttp.ClientSession, sim: Simulator, name: str) -> dict[str, dict[str, Any]]:
    return {item["dataTime"]: item for item in await items(session, sim, MSRSTN, stationName=name, dataTerm="DAILY")}


async def unquirked(state: SimulatorState, fetch: Any) -> Any:
    """What ``fetch()`` returns from the same simulator at the same clock with every quirk off."""
    kept, state.quirks = state.quirks, Quirks()
    try:
        return await fetch()
    finally:
        state.quirks = kept


def looks_filled_later(item: dict[str, Any]) -> bool:
    return (
        all(item[key] == "-" for key in MEASURED)
        and all(item[key] is None for key in GRADES)
        and all(item[key] == "통신장애" for key in FLAGS)
    )


def assert_filled_later(item: dict[str, Any]) -> None:
    assert all(item[key] == "-" for key in MEASURED), item
    assert all(item[key] is None for key in GRADES), item
    assert all(item[key] == "통신장애" for key in FLAGS), item


def pm10_grade(value: int) -> str:
    return "1" if value <= 30 else "2" if value <= 80 else "3" if value <= 150 else "4"


def pm25_grade(value: int) -> str:
    return "1" if value <= 15 else "2" if value <= 35 else "3" if value <= 75 else "4"


# ================================================================================================ AirKorea


async def test_a_filled_later_hour_is_flagged_then_filled_in_both_answers(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    state.quirks.filled_later.add(("종로구", NEWEST))
    state.quirks.revision_delay = timedelta(minutes=40)  # final at 12:40 KST, while 12:00 is still the newest hour

    listed, own = await province(session, sim), await series(session, sim, "종로구")
    assert_filled_later(listed["종로구"])
    assert_filled_later(own["2025-01-20 12:00"])
    final_listed = await unquirked(state, lambda: province(session, sim))
    final_own = await unquirked(state, lambda: series(session, sim, "종로구"))
    assert final_listed["종로구"]["pm10Value"].isdigit()  # it really is revised, not an outage anyway
    assert {k: v for k, v in listed.items() if k != "종로구"} == {
        k: v for k, v in final_listed.items() if k != "종로구"
    }
    assert own["2025-01-20 11:00"] == final_own["2025-01-20 11:00"]  # only that hour
    identity = ("dataTime", "stationName", "stationCode", "mangName")
    assert all(listed["종로구"][key] == final_listed["종로구"][key] for key in identity)

    state.clock = FIXED_NOW + timedelta(minutes=10)  # 12:40 KST: the end of hour 12:00 + the delay
    assert await raw(session, sim, CTPRVN, sidoName="서울") == await unquirked(
        state, lambda: raw(session, sim, CTPRVN, sidoName="서울")
    )
    assert (await series(session, sim, "종로구"))["2025-01-20 12:00"] == final_own["2025-01-20 12:00"]


async def test_the_default_delay_holds_an_hour_back_for_three_hours_of_its_series(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    assert Quirks().revision_delay == timedelta(hours=3)
    state.quirks.filled_later.add(("종로구", NEWEST))
    state.clock = NEWEST + timedelta(hours=3) - timedelta(seconds=1)
    assert_filled_later((await series(session, sim, "종로구"))["2025-01-20 12:00"])
    state.clock = NEWEST + timedelta(hours=3)
    query = {"stationName": "종로구", "dataTerm": "DAILY"}
    assert await raw(session, sim, MSRSTN, **query) == await unquirked(
        state, lambda: raw(session, sim, MSRSTN, **query)
    )


async def test_a_filled_later_hour_in_xml_and_without_ver(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    state.quirks.filled_later.add(("종로구", NEWEST))
    body = (await raw(session, sim, MSRSTN, stationName="종로구", returnType="xml", numOfRows="1")).decode()
    assert "<pm10Value>-</pm10Value>" in body and "<pm25Value24>-</pm25Value24>" in body
    assert "<pm25Flag>통신장애</pm25Flag>" in body and "<khaiGrade/>" in body and "<pm10Grade1h/>" in body
    unversioned = await items(session, sim, CTPRVN, sidoName="서울", ver="")
    item = next(item for item in unversioned if item["stationName"] == "종로구")
    assert "pm25Flag" not in item and item["pm10Flag"] == "통신장애" and item["pm10Value"] == "-"  # no PM2.5 fields


async def test_a_corrected_hour_is_a_few_units_high_then_exact(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    state.quirks.corrected.add(("용산구", NEWEST))
    listed, own = await province(session, sim), await series(session, sim, "용산구")
    final = (await unquirked(state, lambda: province(session, sim)))["용산구"]
    served = listed["용산구"]
    assert served == own["2025-01-20 12:00"] | {"sidoName": "서울"}  # the same in its series
    for key, delta in PM_CHANGES.items():
        assert int(served[key]) == int(final[key]) + delta
    assert served["pm10Grade1h"] == pm10_grade(int(served["pm10Value"]))
    assert served["pm25Grade1h"] == pm25_grade(int(served["pm25Value"]))
    assert served["pm10Grade"] == pm10_grade(int(served["pm10Value24"]))
    assert (final["pm25Grade"], served["pm25Grade"]) == ("1", "2")  # 15 -> 18 µg/m³: the 24-hour grade follows
    assert int(served["khaiValue"]) >= int(final["khaiValue"])
    changed = {"khaiValue", "khaiGrade", *PM_CHANGES, "pm10Grade", "pm25Grade", "pm10Grade1h", "pm25Grade1h"}
    assert {k: v for k, v in served.items() if k not in changed} == {k: v for k, v in final.items() if k not in changed}

    state.clock = NEWEST + timedelta(hours=3)
    assert (await series(session, sim, "용산구"))["2025-01-20 12:00"] == (
        await unquirked(state, lambda: series(session, sim, "용산구"))
    )["2025-01-20 12:00"]


def sample_rows(count: int) -> Iterator[tuple[airkorea_data.Station, int]]:
    rng = random.Random(7)
    everything = airkorea_data.stations()
    newest = airkorea_data.newest_hour(FIXED_NOW)
    for _ in range(count):
        yield everything[rng.randrange(len(everything))], newest - rng.randrange(24 * 400)


def test_a_correction_is_the_reading_with_higher_pm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The corrected row is what the reference formula gives with the 24-hour PM values raised (for the CAI), and
    its PM grades follow the served values; everything else is the row as generated."""
    original = ref._cai

    def raised(value: float, scale: tuple[float, float, float, float]) -> float:
        if scale == ref._PM10_SCALE:
            return original(value + airkorea_data.CORRECTION_PM10, scale)
        if scale == ref._PM25_SCALE:
            return original(value + airkorea_data.CORRECTION_PM25, scale)
        return original(value, scale)

    checked = 0
    for station, index in sample_rows(3000):
        final = airkorea_data.reading(station, index, 5)
        row = airkorea_data.reading_row(airkorea_data.station_params(station), airkorea_data.hour_factors(
            station.sido_index, index), 5)  # fmt: skip
        airkorea_data.revise_row(row, airkorea_data.CORRECTED)
        served = {name: None if v is None else v.decode() for name, v in zip(airkorea_data.FIELDS, row, strict=False)}
        for key, delta in PM_CHANGES.items():
            value = final[key]
            assert served[key] == (str(int(value) + delta) if value and value.isdigit() else value)
        for grade, value, grader in (
            ("pm10Grade1h", "pm10Value", pm10_grade),
            ("pm25Grade1h", "pm25Value", pm25_grade),
            ("pm10Grade", "pm10Value24", pm10_grade),
            ("pm25Grade", "pm25Value24", pm25_grade),
        ):
            expected = final[grade] if final[grade] in (None, "-") else grader(int(str(served[value])))
            assert served[grade] == expected
        with monkeypatch.context() as patch:
            patch.setattr(ref, "_cai", raised)
            oracle = ref.reading(station, index, 5)
        assert (served["khaiValue"], served["khaiGrade"]) == (oracle["khaiValue"], oracle["khaiGrade"])
        checked += final["khaiValue"] != oracle["khaiValue"]
        others = set(final) - {*PM_CHANGES, "khaiValue", "khaiGrade", "pm10Grade", "pm25Grade"}
        others -= {"pm10Grade1h", "pm25Grade1h"}
        assert {k: served[k] for k in others} == {k: final[k] for k in others}
    assert checked > 100  # the CAI did move in many of them


async def test_a_revision_share_is_roughly_that_share_and_deterministic(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    state.quirks.revision_share = 0.2
    body = await raw(session, sim, CTPRVN, sidoName="전국")
    assert body == await raw(session, sim, CTPRVN, sidoName="전국")
    async with Simulator(SimulatorState(clock=FIXED_NOW, quirks=Quirks(revision_share=0.2))) as other:
        assert body == await raw(session, other, CTPRVN, sidoName="전국")

    served = await items(session, sim, CTPRVN, sidoName="전국")
    final = {
        item["stationName"]: item
        for item in await unquirked(state, lambda: items(session, sim, CTPRVN, sidoName="전국"))
    }
    changed = [item for item in served if item != final[item["stationName"]]]
    filled = [item for item in changed if looks_filled_later(item)]
    corrected = [item for item in changed if not looks_filled_later(item)]
    for item in corrected:
        before = final[item["stationName"]]
        assert any(item[key] != before[key] for key in PM_CHANGES)
        assert all(item[key] == before[key] for key in ("so2Value", "coValue", "o3Value", "no2Value", *FLAGS))
    expected = 0.2 * len(served)  # about 132 of the 660 stations
    assert abs(len(filled) + len(corrected) - expected) < 4 * math.sqrt(expected)
    assert len(filled) > 0.3 * expected and len(corrected) > 0.3 * expected


def test_a_share_picks_that_share_of_station_hours_half_each_way() -> None:
    share = 0.1
    revisions = airkorea_data.Revisions(0, frozenset(), frozenset(), int(share * 2**31), int(share * 2**32))
    kinds = [revisions.kind(s, index) for s in airkorea_data.stations() for index in range(220_000, 220_048)]
    n = len(kinds)
    filled, corrected = kinds.count(airkorea_data.FILLED_LATER), kinds.count(airkorea_data.CORRECTED)
    assert abs(filled - n * share / 2) < 4 * math.sqrt(n * share / 2)
    assert abs(corrected - n * share / 2) < 4 * math.sqrt(n * share / 2)
    again = [revisions.kind(s, index) for s in airkorea_data.stations() for index in range(220_000, 220_048)]
    assert kinds == again


async def test_a_station_hour_looks_the_same_in_both_answers(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    state.quirks.revision_share = 0.5
    listed = await province(session, sim)
    final = await unquirked(state, lambda: province(session, sim))
    for name, item in listed.items():
        own = (await series(session, sim, name))[item["dataTime"]]
        assert {k: v for k, v in item.items() if k != "sidoName"} == own
    assert sum(item != final[name] for name, item in listed.items()) > 5


async def test_the_revision_knobs_off_or_spent_leave_bodies_byte_identical(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = [
        (CTPRVN, {"sidoName": "전국"}),
        (CTPRVN, {"sidoName": "서울", "returnType": "xml", "ver": ""}),
        (MSRSTN, {"stationName": "종로구", "dataTerm": "MONTH"}),
        (MSRSTN, {"stationName": "용산구", "dataTerm": "DAILY", "returnType": "xml", "ver": "1.0"}),
    ]

    async def bodies() -> list[bytes]:
        return [await raw(session, sim, operation, **query) for operation, query in queries]

    async def fresh() -> list[bytes]:
        async with Simulator(SimulatorState(clock=state.clock)) as other:
            return [await raw(session, other, operation, **query) for operation, query in queries]

    reference = await fresh()
    assert state.quirks == Quirks() == airkorea._NO_QUIRKS  # the new fields do not leave the plain path
    with monkeypatch.context() as patch:
        patch.setattr(airkorea, "_quirky_ctprvn_body", None)  # the default never takes the quirky path
        assert await bodies() == reference
    # Set but with nothing provisional at this clock: a spent hour, a zero delay, a zero share.
    state.quirks.filled_later.add(("종로구", NEWEST - timedelta(hours=5)))
    state.quirks.corrected.add(("용산구", NEWEST - timedelta(hours=4)))
    assert await bodies() == reference
    state.quirks = Quirks(filled_later={("종로구", NEWEST)}, revision_delay=timedelta(0), revision_share=0.0)
    assert await bodies() == reference
    # Both sets on, and their hours final by now (a share, by contrast, always has provisional newest hours).
    state.quirks = Quirks(filled_later={("종로구", NEWEST)}, corrected={("용산구", NEWEST)})
    state.clock = FIXED_NOW + timedelta(hours=4)
    assert await bodies() == await fresh()


def test_bad_revision_knobs_raise() -> None:
    with pytest.raises(ValueError, match=r"Quirks.revision_share must be a number in \[0, 1\]"):
        Quirks(revision_share=1.5)
    with pytest.raises(ValueError, match=r"Quirks.revision_delay must be a timedelta >= 0"):
        Quirks(revision_delay=timedelta(hours=-1))
    quirks = Quirks()
    for bad in (-0.1, float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match=r"Quirks.revision_share"):
            quirks.revision_share = bad  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"Quirks.revision_delay"):
        quirks.revision_delay = 3  # type: ignore[assignment]
    assert quirks == Quirks()  # nothing was assigned
    quirks.filled_later.add(("종로구", datetime(2025, 1, 20, 12)))  # naive: refused where it is used
    with pytest.raises(ValueError, match=r"Quirks.filled_later must hold timezone-aware datetimes"):
        airkorea._revisions(SimulatorState(clock=FIXED_NOW, quirks=quirks))
    with pytest.raises(ValueError, match=r"TmdbQuirks.late_title_share"):
        TmdbQuirks(late_title_share=2.0)
    with pytest.raises(ValueError, match=r"TmdbQuirks.late_title_delay must be a timedelta >= 0"):
        TmdbQuirks().late_title_delay = timedelta(days=-1)


# ================================================================================================ TMDB


async def tmdb(session: aiohttp.ClientSession, sim: Simulator, path: str, **query: str) -> Any:
    params = {"api_key": SIM_TMDB_API_KEY, "language": "ko-KR", **query}
    async with session.get(f"{sim.tmdb_base_url}{path}", params=params) as response:
        assert response.status == 200
        return await response.json()


async def now_playing(session: aiohttp.ClientSession, sim: Simulator) -> list[dict[str, Any]]:
    first = await tmdb(session, sim, "/movie/now_playing", region="KR")
    results: list[dict[str, Any]] = first["results"]
    for page in range(2, first["total_pages"] + 1):
        results += (await tmdb(session, sim, "/movie/now_playing", region="KR", page=str(page)))["results"]
    return results


def translated(item: dict[str, Any]) -> bool:
    return bool(item["title"] != item["original_title"])


async def test_a_late_korean_title_is_the_original_title_until_it_arrives(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    final = await now_playing(session, sim)
    movie = next(item for item in final if translated(item))
    details = await tmdb(session, sim, f"/movie/{movie['id']}")
    arrives = FIXED_NOW + timedelta(hours=1)
    state.tmdb_quirks.late_titles[movie["id"]] = arrives

    served = await now_playing(session, sim)
    late = next(item for item in served if item["id"] == movie["id"])
    assert late == movie | {"title": movie["original_title"]}
    assert [item for item in served if item["id"] != movie["id"]] == [
        item for item in final if item["id"] != movie["id"]
    ]
    assert await tmdb(session, sim, f"/movie/{movie['id']}") == details | {"title": movie["original_title"]}
    english = await tmdb(session, sim, f"/movie/{movie['id']}", language="en-US")
    state.tmdb_quirks.late_titles.clear()
    assert english == await tmdb(session, sim, f"/movie/{movie['id']}", language="en-US")  # only ko-KR changes

    state.tmdb_quirks.late_titles[movie["id"]] = arrives
    state.clock = arrives
    moved = await tmdb(session, sim, f"/movie/{movie['id']}")
    state.tmdb_quirks.late_titles.clear()
    assert moved == await tmdb(session, sim, f"/movie/{movie['id']}")
    assert moved["title"] == details["title"] != movie["original_title"]


async def test_a_late_title_share_holds_back_recent_releases(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    final = {item["id"]: item for item in await now_playing(session, sim)}
    state.tmdb_quirks.late_title_share = 0.5
    served = await now_playing(session, sim)
    assert served == await now_playing(session, sim)
    late = set()
    for item in served:
        movie = tmdb_data.movie_by_id(item["id"])
        assert movie is not None
        start = tmdb_data.release_start(movie)
        expected_late = (
            tmdb_data.in_share(movie.id, 0.5) and start is not None and start + timedelta(days=3) > FIXED_NOW
        )
        assert item == (final[item["id"]] | {"title": movie.original_title} if expected_late else final[item["id"]])
        if expected_late and translated(final[item["id"]]):
            late.add(item["id"])
    assert late  # some movie in the window really did change
    some = min(late)
    assert (await tmdb(session, sim, f"/movie/{some}"))["title"] == final[some]["original_title"]
    state.clock = FIXED_NOW + timedelta(days=10)  # every release of the 20th is 3 days old by then
    assert (await tmdb(session, sim, f"/movie/{some}"))["title"] == final[some]["title"]
    shares = [tmdb_data.in_share(movie.id, 0.3) for movie in tmdb_data.catalogue().movies[:20_000]]
    assert abs(sum(shares) / len(shares) - 0.3) < 0.02


async def test_a_late_runtime_is_zero_until_it_arrives(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    movie = next(m for m in tmdb_data.catalogue().movies if m.runtime and m.kr_release)
    final = await tmdb(session, sim, f"/movie/{movie.id}")
    state.tmdb_quirks.late_runtimes[movie.id] = FIXED_NOW + timedelta(days=1)
    assert await tmdb(session, sim, f"/movie/{movie.id}") == final | {"runtime": 0}
    state.clock = FIXED_NOW + timedelta(days=1)
    assert (await tmdb(session, sim, f"/movie/{movie.id}"))["runtime"] == movie.runtime


# ================================================================================================ CLI


def test_simulate_revisions_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.simulator

    seen: list[SimulatorState] = []

    async def fake_serve(host: str, port: int, state: SimulatorState) -> None:
        seen.append(state)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline.simulator, "serve", fake_serve)
    assert main(["simulate", "--revisions", "0.25"]) == 0
    assert seen[0].quirks.revision_share == seen[0].tmdb_quirks.late_title_share == 0.25
    assert main(["simulate"]) == 0
    assert seen[1].quirks == Quirks() and seen[1].tmdb_quirks == TmdbQuirks()
    assert main(["simulate", "--revisions", "1.5"]) == 2
