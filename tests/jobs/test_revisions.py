"""Revisions through the real paths, against the simulator's revisions, on both backends: the daemon's cycles,
the backfill and the replay record them the same way, and an identical re-run records nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline import backfill as bf
from pipeline.config import parse_settings
from pipeline.keys import Secrets
from pipeline.lifecycle import Opened
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.replay import ReplaySelection, replay
from pipeline.runner import run_jobs
from pipeline.simulator import SimulatorState
from pipeline.simulator.tmdb_data import catalogue
from tests.backends import fetch_async, plain_rows
from tests.test_replay import empty, tables

T0 = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 09:30 KST: the newest hour is the one ending 00:00 UTC
HOUR = timedelta(hours=1)
FLAGGED_HOUR = T0.replace(minute=0)
AIR = ["airkorea_sido", "airkorea_stations"]
#: what a revision row says, without the times of the writes (a replay writes at the bodies' fetch times)
REVISION = "SELECT station_name, measured_at, run_id, previous_run_id, changed, old_pm10, new_pm10, old_pm10_flag, " \
           "new_pm10_flag FROM air_reading_revisions ORDER BY id"  # fmt: skip


def settings_for(url: str, **tmdb: Any) -> Any:
    return parse_settings(
        {
            "database": {"url": url},
            "sources": {
                "tmdb": {"enabled": bool(tmdb), "rate_limit": 40, **tmdb},
                "airkorea": {"rate_limit": 50, "attempts": 2, "max_retry_time": 5, "stations": ["종로구"]},
            },
        }
    )


def revised_state() -> SimulatorState:
    state = SimulatorState(clock=T0)
    state.quirks.filled_later = {("종로구", FLAGGED_HOUR)}
    state.quirks.revision_delay = 2 * HOUR
    return state


async def reading_revisions(url: str) -> list[tuple[Any, ...]]:
    return plain_rows(await fetch_async(url, REVISION))


async def test_a_flagged_hour_filled_in_by_the_watch_lists_series_is_one_revision_and_replay_rebuilds_it(
    db_url: str, writer: Writer
) -> None:
    settings = settings_for(db_url)
    state = revised_state()
    async with simulated(settings, state) as (local, secrets, _sim):
        first = await run_jobs(local, secrets, writer, AIR)  # the poll and the series: the hour flagged
        assert await reading_revisions(db_url) == []
        state.clock = T0 + 3 * HOUR  # past the delay: the series now holds the value
        second = await run_jobs(local, secrets, writer, AIR)
        revisions = await reading_revisions(db_url)
        [(station, measured_at, run_id, previous_run_id, changed, old_pm10, new_pm10, old_flag, new_flag)] = revisions
        assert (station, run_id, previous_run_id) == ("종로구", second.run_id, first.run_id)
        assert plain_rows([(FLAGGED_HOUR,)]) == [(measured_at,)]
        assert " pm10 " in changed and " pm10_flag " in changed and " pm25 " in changed
        assert (old_pm10, old_flag, new_flag) == (None, "통신장애", None) and isinstance(new_pm10, int)
        # the same cycle again: the same answers, nothing written, no revision
        before = await tables(writer)
        again = await run_jobs(local, secrets, writer, AIR)
        assert again.status == "success"
        assert await reading_revisions(db_url) == revisions
        assert await tables(writer) == before
        (stored,) = await fetch_async(db_url, "SELECT run_id FROM air_readings WHERE station_name = '종로구' AND "
                                               "measured_at = (SELECT max(measured_at) FROM air_readings)")  # fmt: skip
        assert stored[0] != again.run_id  # the newest hour was written by the second cycle, not rewritten
    live = await tables(writer)
    await empty(writer)
    report = await replay(Opened(settings, Secrets(), writer.engine, writer), ReplaySelection())
    assert report.status == "success"
    assert await reading_revisions(db_url) == revisions  # the same revision, by the same runs
    assert await tables(writer) == live
    # replaying into tables that hold everything: older bodies are refused, the newest change nothing
    await replay(Opened(settings, Secrets(), writer.engine, writer), ReplaySelection())
    assert await reading_revisions(db_url) == revisions


async def test_a_backfill_records_revisions_as_the_daemon_does(db_url: str, writer: Writer) -> None:
    settings = settings_for(db_url)
    state = revised_state()
    day = date(2026, 11, 28)
    async with simulated(settings, state) as (local, secrets, _sim):
        poll = await run_jobs(local, secrets, writer, ["airkorea_sido"])  # the stations are known, the hour flagged
        plan = await bf.plan_airkorea(local, writer, bf.DayRange(day, day), stations=["종로구"], now=T0)
        first = await bf.backfill_airkorea(local, secrets, writer, plan, now=lambda: T0)
        assert first.status == "done" and await reading_revisions(db_url) == []
        state.clock = T0 + 3 * HOUR
        later = T0 + 3 * HOUR
        plan = await bf.plan_airkorea(local, writer, bf.DayRange(day - timedelta(days=1), day), stations=["종로구"],
                                      now=later)  # fmt: skip
        second = await bf.backfill_airkorea(local, secrets, writer, plan, now=lambda: later)
    assert second.status == "done"
    backfill_runs = [row[0] for row in await fetch_async(db_url, "SELECT id FROM runs WHERE job LIKE 'backfill%' "
                                                                 "ORDER BY id")]  # fmt: skip
    [(station, _at, run_id, previous_run_id, changed, old_pm10, new_pm10, _old, _new)] = await reading_revisions(db_url)
    # the first backfill found the hour as the poll stored it (flagged): it wrote nothing, so the revision
    # replaces the poll's write
    assert len(backfill_runs) == 2 and (station, previous_run_id, run_id) == ("종로구", poll.run_id, backfill_runs[1])
    assert " pm10 " in changed and old_pm10 is None and new_pm10 is not None


async def test_a_korean_title_arriving_late_is_a_movie_revision_and_votes_are_not(db_url: str, writer: Writer) -> None:
    settings = settings_for(db_url, max_pages=1, details_ttl="0s")
    state = SimulatorState(clock=T0)
    state.tmdb_quirks.late_titles = {movie.id: T0 + 2 * HOUR for movie in catalogue().movies}
    async with simulated(settings, state) as (local, secrets, _sim):
        await run_jobs(local, secrets, writer, ["tmdb"])
        state.clock = T0 + 3 * HOUR
        second = await run_jobs(local, secrets, writer, ["tmdb"])
        third = await run_jobs(local, secrets, writer, ["tmdb"])  # the same answers again: no revision
    found = await fetch_async(
        db_url,
        "SELECT r.tmdb_id, r.run_id, r.changed, r.old_title, r.new_title, m.original_title, m.title "
        "FROM movie_revisions r JOIN movies m ON m.tmdb_id = r.tmdb_id ORDER BY r.id",
    )
    assert found, "some listed movie has a Korean title distinct from its original title"
    for _tmdb_id, run_id, changed, old_title, new_title, original, title in found:
        assert run_id == second.run_id and changed == " title "  # popularity, votes: no revision
        assert (old_title, new_title) == (original, title) and new_title != original
    assert third.status == "success"
    (snapshots,) = await fetch_async(db_url, "SELECT count(DISTINCT run_id) FROM movie_snapshots")
    assert snapshots == (3,)
