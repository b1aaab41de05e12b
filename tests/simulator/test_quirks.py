"""The simulator's AirKorea quirks (all off by default): under-reported totalCount, short answers, ``items: ""``,
a late-published hour, a station missing from one hour's province list while present in its own series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from pipeline.simulator import SIM_DATA_GO_KEY, Simulator, SimulatorState
from tests.simulator.conftest import FIXED_NOW

NEWEST = datetime(2025, 1, 20, 3, tzinfo=UTC)  # the hour ending 12:00 KST, newest at FIXED_NOW (12:30 KST)


async def get(session: aiohttp.ClientSession, sim: Simulator, operation: str, **query: str) -> dict[str, Any]:
    params = {"serviceKey": SIM_DATA_GO_KEY, "returnType": "json", "ver": "1.5", "numOfRows": "1000", **query}
    async with session.get(f"{sim.airkorea_base_url}/ArpltnInforInqireSvc/{operation}", params=params) as response:
        body: dict[str, Any] = (await response.json(content_type=None))["response"]["body"]
        return body


async def sido(session: aiohttp.ClientSession, sim: Simulator, name: str = "서울") -> dict[str, Any]:
    return await get(session, sim, "getCtprvnRltmMesureDnsty", sidoName=name)


async def station(session: aiohttp.ClientSession, sim: Simulator, name: str) -> dict[str, Any]:
    return await get(session, sim, "getMsrstnAcctoRltmMesureDnsty", stationName=name, dataTerm="DAILY")


async def test_quirks_are_off_by_default(state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession) -> None:
    body = await sido(session, sim)
    assert body["totalCount"] == len(body["items"]) > 0
    assert (await station(session, sim, "없는측정소"))["items"] == []


async def test_an_under_reported_total_and_short_answers(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    full = await sido(session, sim)
    state.quirks.short_answers = 1
    short = await sido(session, sim)
    assert short["totalCount"] == full["totalCount"] and 0 < len(short["items"]) < len(full["items"])
    again = await sido(session, sim)
    assert again["items"] == full["items"]  # short once only
    state.quirks.under_report_total = True
    under = await sido(session, sim)
    assert under["totalCount"] == 0 and under["items"] == full["items"]


async def test_empty_items_as_a_string(state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession) -> None:
    state.quirks.items_as_string = True
    assert (await station(session, sim, "없는측정소"))["items"] == ""


async def test_a_late_hour_is_served_only_once_published(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    state.quirks.late_hours[NEWEST] = 45  # published at 12:45 KST instead of 12:15
    held = await sido(session, sim)
    assert {item["dataTime"] for item in held["items"]} == {"2025-01-20 11:00"}
    assert (await station(session, sim, "종로구"))["items"][0]["dataTime"] == "2025-01-20 11:00"
    state.clock = FIXED_NOW + timedelta(minutes=20)  # 12:50 KST
    assert {item["dataTime"] for item in (await sido(session, sim))["items"]} == {"2025-01-20 12:00"}


async def test_a_station_missing_from_one_hours_list_is_in_its_series(
    state: SimulatorState, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    state.quirks.missing.add(("종로구", NEWEST))
    listed = await sido(session, sim)
    assert "종로구" not in {item["stationName"] for item in listed["items"]}
    assert listed["totalCount"] == len(listed["items"])
    series = await station(session, sim, "종로구")
    assert series["items"][0]["dataTime"] == "2025-01-20 12:00"  # its own series has the hour
    state.clock = FIXED_NOW + timedelta(hours=1)  # the next hour: listed again
    assert "종로구" in {item["stationName"] for item in (await sido(session, sim))["items"]}
