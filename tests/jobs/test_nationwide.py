"""One call an hour for the whole country: ``sidos: [전국]`` by default, and the 17 provinces as the same run's
fallback when that answer fails, is empty or holds far fewer stations than are known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from pipeline.config import SIDOS, parse_settings
from pipeline.jobs.airkorea import NATIONWIDE_MIN_SHARE
from pipeline.keys import Secrets
from pipeline.load.upsert import upsert_air_stations
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.runner import run_jobs
from pipeline.simulator import SimulatorState
from pipeline.transform.airkorea import AirStation
from tests.backends import fetch_async

FIXED = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
SIDO = "getCtprvnRltmMesureDnsty"


def settings_for(url: str, **airkorea: Any) -> Any:
    air = {"rate_limit": 50, "attempts": 2, "max_retry_time": 5, **airkorea}
    return parse_settings({"database": {"url": url}, "sources": {"tmdb": {"enabled": False}, "airkorea": air}})


async def details(url: str, run_id: int) -> dict[str, Any]:
    (row,) = await fetch_async(url, "SELECT details FROM runs WHERE id = :id", {"id": run_id})
    return dict(json.loads(row[0])["airkorea_sido"])


def test_the_default_is_one_call_for_the_country() -> None:
    assert parse_settings({}).sources.airkorea.sidos == ("전국",)


async def test_one_call_brings_every_station(db_url: str, writer: Writer) -> None:
    async with simulated(settings_for(db_url), SimulatorState(clock=FIXED)) as (local, secrets, sim):
        report = await run_jobs(local, secrets, writer, ["airkorea_sido"])
        assert sim.state.counters[SIDO] == 1
    assert report.status == "success" and report.jobs[0].warnings == []
    stations = await fetch_async(db_url, "SELECT count(*), count(sido_name) FROM air_stations")
    assert stations[0][0] > 600 and stations[0][0] == stations[0][1]  # and every one with its province


async def test_a_failing_nationwide_answer_falls_back_to_the_provinces_in_the_same_run(
    db_url: str, writer: Writer
) -> None:
    state = SimulatorState(clock=FIXED)
    state.add_fault(SIDO, "gateway", times=1, code="10")  # the first call: 전국, refused
    async with simulated(settings_for(db_url), state) as (local, secrets, sim):
        report = await run_jobs(local, secrets, writer, ["airkorea_sido"])
        assert sim.state.counters[SIDO] == 1 + len(SIDOS)
    assert report.status == "success"
    found = await details(db_url, report.run_id)
    assert found["counts"] == {"nationwide_fallback": 1, "hours_published": 1}  # the first poll: its one hour
    assert found["warnings"][0].startswith("the 전국 answer failed (airkorea: request refused (data.go.kr code 10")
    assert found["warnings"][0].endswith(f": fell back to the {len(SIDOS)} provinces")
    assert (await fetch_async(db_url, "SELECT count(*) FROM air_stations"))[0][0] > 600


async def test_a_nationwide_answer_with_far_fewer_stations_than_known_is_not_trusted(
    db_url: str, writer: Writer
) -> None:
    async with simulated(settings_for(db_url), SimulatorState(clock=FIXED)) as (local, secrets, sim):
        await run_jobs(local, secrets, writer, ["airkorea_sido"])
        known = (await fetch_async(db_url, "SELECT count(*) FROM air_stations"))[0][0]
        extra = int(known / NATIONWIDE_MIN_SHARE)  # as many again as would make the answer too small
        closed = [AirStation(f"closed-{i}", None, None, None) for i in range(extra)]  # known, gone from the answer
        await upsert_air_stations(writer, closed, FIXED)
        report = await run_jobs(local, secrets, writer, ["airkorea_sido"])
        assert sim.state.counters[SIDO] == 1 + 1 + len(SIDOS)
    found = await details(db_url, report.run_id)
    fallback, partial = found["warnings"]
    assert fallback == (
        f"the 전국 answer held {known} stations of the {known + extra} known: fell back to the {len(SIDOS)} provinces"
    )
    # and the provinces too hold the hour for too few of the stations known: another poll is asked for
    assert f"came for {known} of {known + extra} stations: polling again at" in partial


async def test_an_empty_nationwide_answer_falls_back_and_items_without_a_province_take_the_one_asked(
    db_url: str, writer: Writer, aiohttp_server: Any
) -> None:
    asked: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        sido = request.query["sidoName"]
        asked.append(sido)
        # an older answer: no sidoName in the items
        items = (
            [] if sido == "전국" else [{"stationName": f"{sido}-1", "dataTime": "2026-11-28 09:00", "pm10Value": "9"}]
        )
        body = {"totalCount": len(items), "items": items, "pageNo": 1, "numOfRows": 1000}
        return web.json_response({"response": {"body": body, "header": {"resultCode": "00", "resultMsg": "OK"}}})

    app = web.Application()
    app.router.add_get(f"/B552584/ArpltnInforInqireSvc/{SIDO}", handle)
    server = await aiohttp_server(app)
    settings = settings_for(db_url, base_url=str(server.make_url("/B552584")))
    report = await run_jobs(settings, Secrets(data_go_api_key="k"), writer, ["airkorea_sido"], now=lambda: FIXED)
    assert asked[0] == "전국" and sorted(asked[1:]) == sorted(SIDOS)
    assert report.status == "success"
    assert (await details(db_url, report.run_id))["warnings"] == [
        f"the 전국 answer was empty: fell back to the {len(SIDOS)} provinces"
    ]
    rows = await fetch_async(db_url, "SELECT station_name, sido_name FROM air_stations ORDER BY station_name")
    assert sorted(rows) == sorted((f"{sido}-1", sido) for sido in SIDOS)


async def test_the_simulators_quirks_through_the_province_job(db_url: str, writer: Writer) -> None:
    """A short answer is fetched again and kept whole; an under-reported totalCount loses nothing; both at once
    cannot be seen in the answer, and the known stations catch it."""
    state = SimulatorState(clock=FIXED)
    async with simulated(settings_for(db_url), state) as (local, secrets, sim):

        async def run() -> tuple[Any, int]:  # an hour later each time: a new hour to write
            state.clock = state.now() + timedelta(hours=1)
            sim.state.counters.clear()
            report = await run_jobs(local, secrets, writer, ["airkorea_sido"])
            return report.jobs[0], sim.state.counters[SIDO]

        first, _ = await run()
        everyone = first.rows["air_readings"]
        state.quirks.short_answers = 1
        job, calls = await run()
        assert (calls, job.rows["air_readings"], job.warnings) == (2, everyone, [])  # short, then whole
        state.quirks.under_report_total = True
        job, calls = await run()
        assert (calls, job.rows["air_readings"], job.warnings) == (1, everyone, [])  # totalCount 0, all kept
        state.quirks.short_answers = 1
        job, calls = await run()  # totalCount 0 and a third missing: the answer looks complete
        assert calls == 1 + len(SIDOS) and job.counts["nationwide_fallback"] == 1
        assert job.rows["air_readings"] == everyone
