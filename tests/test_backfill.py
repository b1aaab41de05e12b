"""Backfill: window choice, range edges, refusal, dry run, resume after a kill, idempotence, TMDB paging, quota."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from pipeline import backfill as bf
from pipeline.config import Settings, parse_settings
from pipeline.errors import ConfigError
from pipeline.load.db import create_engine, migrate
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.simulator import SimulatorState
from pipeline.simulator import airkorea_data as sim_data
from tests.backends import fetch, plain_rows

NOW = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 09:30 KST: the newest published hour is 09:00 KST
STATION_OP = "getMsrstnAcctoRltmMesureDnsty"


def test_day_range_is_01_00_to_24_00_kst() -> None:
    days = bf.DayRange(date(2026, 11, 20), date(2026, 11, 27))
    assert days.start == datetime(2026, 11, 19, 16, tzinfo=UTC)  # 2026-11-20 01:00 KST
    assert days.end == datetime(2026, 11, 27, 15, tzinfo=UTC)  # labelled 2026-11-27 24:00 KST


@pytest.mark.parametrize(
    ("first", "window"),
    [
        (date(2026, 11, 28), "DAILY"),  # today: the last 24 hours reach back to 01:00
        (date(2026, 11, 27), "MONTH"),  # needs yesterday 01:00: 32 hours back
        (date(2026, 10, 30), "MONTH"),  # 29 days back still fits 30 days
        (date(2026, 10, 28), "3MONTH"),
        (date(2026, 8, 29), "3MONTH"),
    ],
)
def test_smallest_covering_window(first: date, window: str) -> None:
    assert bf.choose_window(bf.DayRange(first, date(2026, 11, 28)), NOW) == window


def test_a_range_older_than_the_api_holds_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"only serves the last ~3 months .* can start is 2026-08-2\d"):
        bf.choose_window(bf.DayRange(date(2026, 8, 1), date(2026, 8, 31)), NOW)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-11-27", "2026-11-20", "is after --to"),
        ("2026-11-20", "2026-12-30", "is in the future"),
        ("2026/11/20", "2026-11-21", "dates are YYYY-MM-DD"),
    ],
)
def test_bad_ranges(first: str, last: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bf.parse_range(first, last, date(2026, 11, 28))


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[dict[str, Any]]:
    """A migrated database of each backend (SQLite, PostgreSQL) and a simulator at ``NOW``."""
    url = db_url
    settings = parse_settings({"database": {"url": url}, "sources": {"airkorea": {"rate_limit": 50, "concurrency": 2},
                                                                       "tmdb": {"rate_limit": 40}}})  # fmt: skip
    state = SimulatorState(clock=NOW)
    await migrate(url)
    engine = create_engine(url)
    try:
        async with simulated(settings, state) as (local, secrets, _sim):
            yield {"settings": local, "secrets": secrets, "writer": Writer(engine), "state": state, "db": url}
    finally:
        await engine.dispose()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows in one spelling for both backends (times as UTC text, dates as ISO text)."""
    return plain_rows(fetch(url, sql))


async def run_air(env: dict[str, Any], first: date, last: date, **selection: Any) -> bf.BackfillReport:
    plan = await bf.plan_airkorea(env["settings"], env["writer"], bf.DayRange(first, last), now=NOW, **selection)
    return await bf.backfill_airkorea(env["settings"], env["secrets"], env["writer"], plan, now=lambda: NOW)


async def test_rows_are_kept_inside_the_range_including_24_00(env: dict[str, Any]) -> None:
    report = await run_air(env, date(2026, 11, 25), date(2026, 11, 26), stations=["종로구"])
    assert report.status == "done" and report.window == "MONTH"
    rows = query(env["db"], "SELECT min(measured_at), max(measured_at), count(*) FROM air_readings")
    # 2026-11-25 01:00 KST … the value labelled 2026-11-26 24:00 KST (= 2026-11-26 15:00 UTC)
    assert rows == [("2026-11-24 16:00:00", "2026-11-26 15:00:00", 48)]
    assert report.rows_upserted == 48 and report.rows_out_of_range == 720 - 48
    days = query(env["db"], "SELECT kst_date, hours FROM air_daily ORDER BY 1")
    assert days == [("2026-11-25", 24), ("2026-11-26", 24)]
    # the completeness ledger is written on the same path: the two days, whole, 24:00 included
    ledger = query(env["db"], "SELECT kst_date, expected, received + flagged, missing FROM air_completeness ORDER BY 1")
    assert ledger == [("2026-11-25", 24, 24, 0), ("2026-11-26", 24, 24, 0)]


async def test_dry_run_counts_and_makes_no_request(env: dict[str, Any]) -> None:
    settings, writer = env["settings"], env["writer"]
    plan = await bf.plan_airkorea(settings, writer, bf.DayRange(date(2026, 9, 1), date(2026, 11, 27)),
                                  stations=[f"s{i}" for i in range(600)], now=NOW)  # fmt: skip
    result = await bf.dry_run_airkorea(settings, writer, plan, now=NOW)
    text = "\n".join(result.lines)
    assert "window dataTerm=3MONTH" in text
    assert f"{STATION_OP}: 600 requests; 500 of 500 left today (KST); needs 2 day(s)" in text
    assert "resumes after 2026-11-29 00:00 KST" in text
    assert sum(env["state"].counters.values()) == 0


async def test_unknown_stations_are_fetched_from_the_province_lists_first(env: dict[str, Any]) -> None:
    report = await run_air(env, date(2026, 11, 27), date(2026, 11, 27), sidos=["세종"])
    stations = query(env["db"], "SELECT count(*) FROM air_stations WHERE sido_name = '세종'")[0][0]
    assert env["state"].counters["getCtprvnRltmMesureDnsty"] == 1
    assert report.chunks_done == stations == env["state"].counters[STATION_OP]
    assert query(env["db"], "SELECT count(*) FROM air_readings")[0][0] == 24 * stations


async def test_resume_after_a_kill_fetches_only_what_is_not_done(env: dict[str, Any]) -> None:
    settings, writer, state = env["settings"], env["writer"], env["state"]
    stations = [station.name for station in sim_data.stations_by_sido()["경기"][:12]]
    state.latency = 0.05
    plan = await bf.plan_airkorea(settings, writer, bf.DayRange(date(2026, 11, 1), date(2026, 11, 27)),
                                  stations=stations, now=NOW)  # fmt: skip
    progress = Counting()
    task = asyncio.create_task(bf.backfill_airkorea(settings, env["secrets"], writer, plan, progress=progress,
                                                    now=lambda: NOW))  # fmt: skip
    await asyncio.wait_for(progress.reached.wait(), 30)
    task.cancel()  # the process dies here: no cleanup, no final bookkeeping
    with pytest.raises(asyncio.CancelledError):
        await task
    done = {r[0] for r in query(env["db"], f"SELECT chunk FROM backfill_chunks WHERE backfill_id = '{plan.backfill_id}' "
                                           "AND status = 'done'")}  # fmt: skip
    assert 4 <= len(done) < 12
    sent_before = state.counters[STATION_OP]
    state.latency = 0
    report = await bf.backfill_airkorea(settings, env["secrets"], writer, plan, now=lambda: NOW)
    assert report.status == "done"
    assert report.chunks_skipped == len(done) and report.chunks_done == 12 - len(done)
    assert state.counters[STATION_OP] - sent_before == 12 - len(done)  # done chunks were not requested again
    readings = query(env["db"], "SELECT count(*) FROM air_readings WHERE station_name IN "
                                f"({','.join(repr(s) for s in stations)})")  # fmt: skip
    assert readings == [(12 * 27 * 24,)]
    # the same backfill again: nothing to do, nothing requested, nothing changed
    again = await bf.backfill_airkorea(settings, env["secrets"], writer, plan, now=lambda: NOW)
    assert (again.chunks_done, again.chunks_skipped, again.stats.total_requests) == (0, 12, 0)
    # an overlapping backfill re-fetches but changes nothing: the same values are not written again
    other = await run_air(env, date(2026, 11, 20), date(2026, 11, 27), stations=stations[:3])
    assert other.stats.total_requests == 3 and other.rows_upserted == 0
    assert query(env["db"], "SELECT count(*) FROM air_readings WHERE station_name IN "
                            f"({','.join(repr(s) for s in stations)})") == readings  # fmt: skip


async def test_more_stations_in_flight_never_means_more_requests_at_once(env: dict[str, Any]) -> None:
    """Stations wait for the worker and the writer in between: twice as many are in flight as the API
    is sent requests at once (sources.airkorea.concurrency: 2 here), and the API never sees more than 2."""
    state = env["state"]
    state.latency = 0.05
    stations = [station.name for station in sim_data.stations_by_sido()["부산"][:12]]
    report = await run_air(env, date(2026, 11, 27), date(2026, 11, 27), stations=stations)
    assert report.status == "done" and report.chunks_done == 12
    assert state.counters[STATION_OP] == 12
    assert state.peak_in_flight[STATION_OP] == env["settings"].sources.airkorea.concurrency == 2


class Counting:
    """Progress that signals after four chunks."""

    def __init__(self) -> None:
        self.chunks = 0
        self.reached = asyncio.Event()

    def start(self, total: int, done: int, unit: str) -> None:
        pass

    def advance(self, chunks: int, rows: int) -> None:
        self.chunks += chunks
        if self.chunks >= 4:
            self.reached.set()

    def stop(self) -> None:
        pass


async def test_quota_stop_leaves_chunks_pending_and_says_when(env: dict[str, Any]) -> None:
    # One request at a time, so that "no request after the first code 22" is exact: with more in flight, the
    # ones already sent when the 22 arrives are answered 22 too (stations still waiting are never sent).
    settings: Settings = env["settings"]
    airkorea = settings.sources.airkorea.model_copy(update={"concurrency": 1})
    one = {**env, "settings": settings.model_copy(update={"sources": settings.sources.model_copy(
        update={"airkorea": airkorea})})}  # fmt: skip
    state = env["state"]
    state.daily_quota[STATION_OP] = 3
    report = await run_air(one, date(2026, 11, 27), date(2026, 11, 27),
                           stations=["종로구", "중구", "강남구", "도봉구", "서초구"])  # fmt: skip
    assert report.status == "paused" and report.chunks_done == 3
    assert "run the same command after 2026-11-29 00:00 KST to resume" in (report.message or "")
    statuses = query(env["db"], "SELECT status, count(*) FROM backfill_chunks GROUP BY 1 ORDER BY 1")
    assert statuses == [("done", 3), ("pending", 2)]
    assert state.counters[STATION_OP] == 4  # the 4th answered code 22; the 5th was never sent
    assert query(env["db"], "SELECT status FROM backfills") == [("paused",)]


async def test_tmdb_backfill_pages_details_and_snapshots(env: dict[str, Any]) -> None:
    settings: Settings = env["settings"]
    days = bf.DayRange(date(2026, 7, 1), date(2026, 9, 30))
    report = await bf.backfill_tmdb(settings, env["secrets"], env["writer"], days, region="KR")
    state = env["state"]
    movies = query(env["db"], "SELECT count(*) FROM movies")[0][0]
    pages = state.counters["discover"] - 1  # page 1 is asked once to size the chunks, then again in its chunk
    assert report.status == "done" and movies > 100
    assert pages == -(-movies // 20)  # every page of 20, and no more
    assert report.chunks_total == -(-pages // 10)
    assert state.counters["movie"] == movies
    snaps = query(env["db"], "SELECT list_name, count(*), min(position), max(position) FROM movie_snapshots GROUP BY 1")
    assert snaps == [("discover", movies, 1, movies)]
    assert query(env["db"], "SELECT job, trigger, status FROM runs") == [("backfill_tmdb", "backfill", "success")]
    # the region's release dates are in the range, but for the odd re-release listed with its first KR date
    outside = query(env["db"], "SELECT count(*) FROM movie_snapshots "
                               "WHERE release_date NOT BETWEEN '2026-07-01' AND '2026-09-30'")[0][0]  # fmt: skip
    assert outside <= movies * 0.05
    # again: every page range is done
    again = await bf.backfill_tmdb(settings, env["secrets"], env["writer"], days, region="KR")
    assert again.chunks_done == 0 and again.chunks_skipped == report.chunks_total


def test_peak_memory_is_the_process_own_not_its_parents() -> None:
    """ru_maxrss of a process started by fork+exec keeps its parent's peak: the bench's backfill, started by a
    bench process holding 200,000 readings, once reported 385 MB for itself."""
    import subprocess
    import sys

    ballast = bytearray(300 * 1024 * 1024)  # this process: 300 MB resident, touched
    for index in range(0, len(ballast), 4096):
        ballast[index] = 1
    code = "from pipeline.backfill import peak_rss_mb; print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 10 < child < 200
    assert bf.peak_rss_mb() >= 300
    del ballast
