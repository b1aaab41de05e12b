"""The completeness ledger and self-healing, through cycles against the simulator, on both backends.

The simulator's clock is the jobs' clock inside ``simulated()`` (``pipeline.clock``), so moving it moves the
pipeline too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.config import parse_settings
from pipeline.load.coverage import expect_hours
from pipeline.load.upsert import upsert_air_stations
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.runner import run_jobs
from pipeline.simulator import SimulatorState
from pipeline.transform.airkorea import AirStation
from tests.backends import fetch_async

SIDO = "getCtprvnRltmMesureDnsty"
STATION = "getMsrstnAcctoRltmMesureDnsty"
T0 = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 09:30 KST: the newest hour is the one labelled 09:00
HOUR = timedelta(hours=1)
CYCLE = ["airkorea_sido", "airkorea_stations"]


def settings_for(url: str, **airkorea: Any) -> Any:
    air = {"rate_limit": 50, "attempts": 2, "max_retry_time": 5, **airkorea}
    return parse_settings({"database": {"url": url}, "sources": {"tmdb": {"enabled": False}, "airkorea": air}})


async def ledger(url: str, station: str) -> list[tuple[Any, ...]]:
    return await fetch_async(
        url,
        "SELECT kst_date, expected, received, flagged, unpublished, tried FROM air_coverage "
        "WHERE station_name = :s ORDER BY kst_date",
        {"s": station},
    )


async def heals(url: str) -> list[tuple[Any, ...]]:
    return await fetch_async(url, "SELECT station_name, data_term, calls, holes, filled FROM air_heals ORDER BY id")


def day_of(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


async def test_a_station_missing_from_the_poll_is_healed_in_the_same_cycle_by_one_call(
    db_url: str, writer: Writer
) -> None:
    state = SimulatorState(clock=T0)
    async with simulated(settings_for(db_url), state) as (local, secrets, sim):
        await run_jobs(local, secrets, writer, CYCLE)  # 09:00: every station, nothing to heal
        assert sim.state.counters[STATION] == 0
        state.clock = T0 + HOUR
        state.quirks.missing.add(("종로구", T0.replace(minute=0) + HOUR))  # absent from the 10:00 list only
        report = await run_jobs(local, secrets, writer, CYCLE)
        assert sim.state.counters[SIDO] == 2 and sim.state.counters[STATION] == 1
    stations = report.jobs[1]
    assert report.status == "success" and stations.counts["heal_calls"] == 1
    assert stations.counts["holes_filled"] == 1 and stations.counts["stations_healed"] == 1
    assert await heals(db_url) == [("종로구", "DAILY", 1, 1, 1)]
    # the ledger holds 09:00 and 10:00 for every station, 종로구's 10:00 from its series (which also brought the
    # 22 hours before: held, so expected too)
    *_before, (day, expected, received, flagged, unpublished, tried) = await ledger(db_url, "종로구")
    assert day_of(day) == date(2026, 11, 28) and expected == (1 << 10) - 1  # 01:00 … 10:00
    assert received | flagged == expected and unpublished == tried == 0
    (missing,) = await fetch_async(db_url, "SELECT sum(missing) FROM air_completeness")
    assert missing == (0,)
    # the same cycle again: nothing left to heal, no call
    async with simulated(settings_for(db_url), state) as (local, secrets, sim):
        await run_jobs(local, secrets, writer, CYCLE)
        assert sim.state.counters[STATION] == 1


async def test_the_ledgers_three_states_and_the_24_00_edge(db_url: str, writer: Writer) -> None:
    at_midnight = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)  # 00:30 KST on the 29th: the newest label is 28th 24:00
    state = SimulatorState(clock=at_midnight - HOUR)
    async with simulated(settings_for(db_url), state) as (local, secrets, _sim):
        await run_jobs(local, secrets, writer, ["airkorea_sido"])  # 23:00 of the 28th
        state.clock = at_midnight + HOUR  # 01:00 of the 29th: 24:00 of the 28th was never polled
        await run_jobs(local, secrets, writer, ["airkorea_sido"])
    rows = await fetch_async(
        db_url,
        "SELECT kst_date, count(*), sum(expected), sum(received), sum(flagged), sum(missing) "
        "FROM air_completeness GROUP BY kst_date ORDER BY kst_date",
    )
    (day28, n28, expected28, received28, flagged28, missing28), (day29, n29, expected29, *_rest) = rows
    assert (day_of(day28), day_of(day29)) == (date(2026, 11, 28), date(2026, 11, 29))
    assert n28 == n29 and expected28 == 2 * n28 and expected29 == n29  # 23:00 and 24:00 on the 28th, 01:00 on the 29th
    assert missing28 == n28  # 24:00 missing for every station (no healing in this run)
    assert received28 + flagged28 == n28 and flagged28 > 0  # the simulator has stations reporting 통신장애
    masks = await fetch_async(
        db_url, "SELECT DISTINCT missing_mask FROM air_completeness WHERE kst_date = :d", {"d": date(2026, 11, 28)}
    )
    assert masks == [(1 << 23,)]  # the hour labelled 24:00 is bit 23 of the day it ends
    # flagged: stored with every measured value missing
    (flagged_rows,) = await fetch_async(
        db_url,
        "SELECT count(*) FROM air_readings WHERE so2 IS NULL AND co IS NULL AND o3 IS NULL AND no2 IS NULL "
        "AND pm10 IS NULL AND pm25 IS NULL AND measured_at = :t",
        {"t": "2026-11-28 14:00:00" if db_url.startswith("sqlite") else datetime(2026, 11, 28, 14, tzinfo=UTC)},
    )
    assert flagged_rows == (flagged28,)


async def test_a_hole_the_api_never_fills_is_marked_not_published_once_past_the_window(
    db_url: str, writer: Writer
) -> None:
    state = SimulatorState(clock=T0)
    hole = T0.replace(minute=0) + HOUR
    async with simulated(settings_for(db_url), state) as (local, secrets, sim):
        await run_jobs(local, secrets, writer, CYCLE)
        state.clock = T0 + HOUR
        state.quirks.never_published.add(("종로구", hole))  # neither the 10:00 list nor its own series has it
        first = await run_jobs(local, secrets, writer, CYCLE)
        # the series' newest hour is 09:00: it proves nothing about 10:00 yet (the hour may just be late)
        assert sim.state.counters[STATION] == 1 and first.jobs[1].counts["holes_lacked"] == 0
        state.clock = T0 + 2 * HOUR
        report = await run_jobs(local, secrets, writer, CYCLE)
        assert sim.state.counters[STATION] == 2  # the series now holds 09:00 and 11:00, not 10:00
        assert report.jobs[1].counts["holes_lacked"] == 1 and report.jobs[1].counts["holes_given_up"] == 0
        *_before, (_day, expected, received, _f, unpublished, tried) = await ledger(db_url, "종로구")
        bit = 1 << 9  # the hour labelled 10:00
        assert tried == bit and unpublished == 0 and not received & bit  # still young: a late hour may come
        # a day later the hole has left the late-publication window: given up without a call, and never again
        state.clock = T0 + 26 * HOUR
        later = await run_jobs(local, secrets, writer, ["airkorea_stations"])
        assert later.jobs[0].counts["holes_given_up"] == 1
        await run_jobs(local, secrets, writer, ["airkorea_stations"])
        assert sim.state.counters[STATION] == 2
    *_before, (_day, expected, received, _f, unpublished, tried) = await ledger(db_url, "종로구")
    assert unpublished == tried == bit
    (row,) = await fetch_async(
        db_url,
        "SELECT missing, not_published FROM air_completeness WHERE station_name = '종로구' AND kst_date = :d",
        {"d": date(2026, 11, 28)},
    )
    assert row == (0, 1)


async def test_an_empty_series_gives_up_nothing_and_backs_off(db_url: str, writer: Writer) -> None:
    """An empty answer (a station the API does not know, 03 NODATA) proves nothing about the hours."""
    state = SimulatorState(clock=T0)
    async with simulated(settings_for(db_url), state) as (local, secrets, sim):
        await run_jobs(local, secrets, writer, CYCLE)
        now = datetime.now(UTC)
        await upsert_air_stations(writer, [AirStation("없는측정소", "서울", None, None)], now)
        await expect_hours(writer, T0.replace(minute=0), T0.replace(minute=0), now)
        await run_jobs(local, secrets, writer, CYCLE)
        assert sim.state.counters[STATION] == 1
        ((_day, expected, _r, _f, unpublished, tried),) = await ledger(db_url, "없는측정소")
        assert (tried, unpublished) == (0, 0)  # still missing, still repairable
        assert await heals(db_url) == [("없는측정소", "DAILY", 1, 1, 0)]  # charged, and fruitless
        state.clock = T0 + 2 * HOUR  # within the 6 h back-off: left alone
        await run_jobs(local, secrets, writer, ["airkorea_stations"])
        assert sim.state.counters[STATION] == 1
        state.clock = T0 + 7 * HOUR  # past it: tried again
        await run_jobs(local, secrets, writer, ["airkorea_stations"])
        assert sim.state.counters[STATION] == 2


async def test_a_failed_heal_is_charged_to_the_budget(db_url: str, writer: Writer) -> None:
    state = SimulatorState(clock=T0)
    async with simulated(settings_for(db_url, attempts=1), state) as (local, secrets, sim):
        await run_jobs(local, secrets, writer, CYCLE)
        state.clock = T0 + HOUR
        state.quirks.missing.add(("종로구", T0.replace(minute=0) + HOUR))
        state.add_fault(STATION, "500", times=1)
        report = await run_jobs(local, secrets, writer, CYCLE)
        assert sim.state.counters[STATION] == 1 and report.jobs[1].status == "partial"
    assert await heals(db_url) == [("종로구", "DAILY", 1, 1, 0)]


async def test_the_catch_up_after_downtime_heals_oldest_first_within_the_budget(db_url: str, writer: Writer) -> None:
    state = SimulatorState(clock=T0)
    async with simulated(settings_for(db_url), state) as (local, secrets, sim):
        await run_jobs(local, secrets, writer, CYCLE)
        state.clock = T0 + 72 * HOUR  # three days down: the first poll makes the 71 hours between expected
        report = await run_jobs(local, secrets, writer, CYCLE, trigger="catchup")
        stations = report.jobs[1]
        assert report.jobs[0].counts["hours_published"] == 72
        assert sim.state.counters[STATION] == 24 == stations.counts["heal_calls"]  # the default budget
        assert stations.counts["heal_deferred"] > 600
    done = await heals(db_url)
    assert len(done) == 24 and {term for _s, term, _c, _h, _f in done} == {"MONTH"}  # 71 h back: one MONTH call
    assert all(holes == filled == 71 for _s, _t, _c, holes, filled in done)
    (missing,) = await fetch_async(db_url, "SELECT sum(missing) FROM air_completeness")
    (stations_known,) = await fetch_async(db_url, "SELECT count(*) FROM air_stations")
    assert missing == ((stations_known[0] - 24) * 71,)  # the rest waits for the next days' budgets


async def test_the_heal_budget_is_respected_and_renews_with_the_kst_day(db_url: str, writer: Writer) -> None:
    state = SimulatorState(clock=T0)
    settings = settings_for(db_url, heal_budget=2)
    stations = ["종로구", "중구", "강남구", "송파구", "마포구"]
    async with simulated(settings, state) as (local, secrets, sim):
        await run_jobs(local, secrets, writer, CYCLE)
        state.clock = T0 + HOUR
        state.quirks.missing.update((name, T0.replace(minute=0) + HOUR) for name in stations)
        report = await run_jobs(local, secrets, writer, CYCLE)
        assert sim.state.counters[STATION] == 2  # the budget: two series, oldest hole first
        assert report.jobs[1].counts["heal_deferred"] == 3
        assert any("heal budget" in w for w in report.jobs[1].warnings)
        state.clock = T0 + 2 * HOUR  # the same KST day: the budget is spent, nothing more
        await run_jobs(local, secrets, writer, ["airkorea_stations"])
        assert sim.state.counters[STATION] == 2
        state.clock = datetime(2026, 11, 28, 15, 20, tzinfo=UTC)  # 00:20 KST on the 29th: a new budget
        await run_jobs(local, secrets, writer, ["airkorea_stations"])
        assert sim.state.counters[STATION] == 4
    spent = await fetch_async(db_url, "SELECT kst_date, sum(calls) FROM air_heals GROUP BY kst_date ORDER BY 1")
    assert [(day_of(d), n) for d, n in spent] == [(date(2026, 11, 28), 2), (date(2026, 11, 29), 2)]


async def test_a_late_hour_asks_for_another_poll_which_fills_it(db_url: str, writer: Writer) -> None:
    state = SimulatorState(clock=T0)
    newest = T0.replace(minute=0)
    async with simulated(settings_for(db_url), state) as (local, secrets, _sim):
        await run_jobs(local, secrets, writer, ["airkorea_sido"])
        state.clock = T0 + HOUR
        state.quirks.late_hours[newest + HOUR] = 45  # the hour labelled 10:00 comes at 10:45
        late = await run_jobs(local, secrets, writer, ["airkorea_sido"])
        poll = late.jobs[0]
        assert poll.counts["late"] == 1 and poll.retry_at == state.clock + timedelta(minutes=10)
        (missing,) = await fetch_async(db_url, "SELECT sum(expected), sum(missing) FROM air_completeness")
        assert missing[1] == 0  # a late API is freshness, not a hole in every station
        state.clock = T0 + HOUR + timedelta(minutes=20)  # 10:50 KST: published
        again = await run_jobs(local, secrets, writer, ["airkorea_sido"], trigger="late")
        assert again.jobs[0].retry_at is None and again.jobs[0].counts["hours_published"] == 1
    (row,) = await fetch_async(db_url, "SELECT count(*), sum(expected), sum(missing) FROM air_completeness")
    assert row[1] == 2 * row[0] and row[2] == 0


async def test_an_hour_published_for_too_few_stations_asks_for_another_poll(db_url: str, writer: Writer) -> None:
    from pipeline.simulator.airkorea_data import stations

    state = SimulatorState(clock=T0)
    async with simulated(settings_for(db_url), state) as (local, secrets, _sim):
        await run_jobs(local, secrets, writer, ["airkorea_sido"])
        state.clock = T0 + HOUR
        absent = [station.name for station in stations()][:200]  # a third of the country not in the 10:00 list
        state.quirks.missing.update((name, T0.replace(minute=0) + HOUR) for name in absent)
        report = await run_jobs(local, secrets, writer, ["airkorea_sido"])
    poll = report.jobs[0]
    assert poll.retry_at == state.clock + timedelta(minutes=10) and poll.counts["late"] == 1
    assert any("came for" in warning and "polling again" in warning for warning in poll.warnings)
