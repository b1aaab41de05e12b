"""One full cycle against the simulator on 127.0.0.1, in-process and through the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config import Settings, parse_settings
from pipeline.extract.http import make_session
from pipeline.extract.tmdb import fetch_movie_details, make_client
from pipeline.offline import simulated
from pipeline.runner import run_once
from pipeline.simulator import SimulatorState

FIXED = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 09:30 KST: newest AirKorea hour is 09:00 KST


def settings_for(tmp_path: Path, **sources: object) -> Settings:
    return parse_settings(
        {"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"},
         "sources": {"tmdb": {"rate_limit": 40}, "airkorea": {"rate_limit": 50}, **sources}}
    )  # fmt: skip


def query(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "p.db") as conn:
        return conn.execute(sql).fetchall()


async def test_cycle_twice_with_a_fixed_clock_is_idempotent(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, simulator):
        first, counts1 = await run_once(local, secrets)
        second, counts2 = await run_once(local, secrets)
        requests = dict(simulator.state.counters)
    assert (first.status, second.status) == ("success", "success")
    # every station's current reading (no watch-list by default, and no hole to heal), 80-150 movies
    assert 640 <= counts1["air_stations"] <= 675
    assert counts1["air_readings"] == counts1["air_stations"]
    assert 80 <= counts1["movies"] <= 150
    assert counts1["movie_snapshots"] == counts1["movies"]
    # the second cycle changes no reading and no movie, adds one snapshot per movie, records a second run
    assert counts2["air_readings"] == counts1["air_readings"]
    assert counts2["movies"] == counts1["movies"] and counts2["air_stations"] == counts1["air_stations"]
    assert counts2["movie_snapshots"] == 2 * counts1["movie_snapshots"]
    assert query(tmp_path, "SELECT job, trigger, status FROM runs ORDER BY id") == [
        ("cycle", "manual", "success"), ("cycle", "manual", "success")
    ]  # fmt: skip
    assert query(tmp_path, "SELECT count(*) FROM movies WHERE details_fetched = 0") == [(0,)]
    # requests: one nationwide call per cycle and no series, every now-playing page; each movie's details once
    # (sources.tmdb.details_ttl: the second cycle, within a day, reads the list only)
    assert requests["getCtprvnRltmMesureDnsty"] == 2 * 1
    assert requests.get("getMsrstnAcctoRltmMesureDnsty", 0) == 0
    # the ledger expects the one published hour of every station, and holds it
    assert query(tmp_path, "SELECT count(*), sum(expected), sum(missing) FROM air_completeness") == [
        (counts1["air_stations"], counts1["air_stations"], 0)
    ]
    assert requests["movie"] == counts1["movies"]
    tmdb = [json.loads(d)["tmdb"]["counts"] for (d,) in query(tmp_path, "SELECT details FROM runs ORDER BY id")]
    assert tmdb == [{"details_fetched": counts1["movies"], "details_skipped": 0},
                    {"details_fetched": 0, "details_skipped": counts1["movies"]}]  # fmt: skip
    # the second cycle's snapshots keep the revenue the details told, though they were not fetched again
    assert query(tmp_path, "SELECT count(*) FROM movie_snapshots a JOIN movie_snapshots b USING (tmdb_id) "
                           "WHERE a.run_id = 1 AND b.run_id = 2 AND a.revenue IS NOT b.revenue") == [(0,)]  # fmt: skip


async def test_details_are_fetched_again_once_older_than_the_ttl(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, tmdb={"rate_limit": 40, "max_pages": 1, "details_ttl": "1h"})
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, simulator):
        await run_once(local, secrets, ["tmdb"])
        listed = simulator.state.counters["movie"]
        assert listed > 0
        await run_once(local, secrets, ["tmdb"])
        assert simulator.state.counters["movie"] == listed  # within the hour: no details request
        with sqlite3.connect(tmp_path / "p.db") as conn:  # the details were fetched two hours ago
            conn.execute("UPDATE movies SET details_fetched_at = datetime(details_fetched_at, '-2 hours')")
        await run_once(local, secrets, ["tmdb"])
        assert simulator.state.counters["movie"] == 2 * listed
    every_run = settings_for(tmp_path / "zero", tmdb={"rate_limit": 40, "max_pages": 1, "details_ttl": 0})
    (tmp_path / "zero").mkdir()
    async with simulated(every_run, SimulatorState(clock=FIXED)) as (local, secrets, simulator):
        await run_once(local, secrets, ["tmdb"])
        await run_once(local, secrets, ["tmdb"])
        assert simulator.state.counters["movie"] == 2 * listed  # details_ttl: 0 fetches every run


async def test_series_and_times_are_utc_hour_ends(tmp_path: Path) -> None:
    watch = settings_for(tmp_path, airkorea={"stations": ["종로구", "중구", "강남구"], "rate_limit": 50})
    async with simulated(watch, SimulatorState(clock=FIXED)) as (local, secrets, _sim):
        await run_once(local, secrets, ["airkorea_stations"])
    rows = query(tmp_path, "SELECT station_name, min(measured_at), max(measured_at), count(*) FROM air_readings "
                           "GROUP BY 1 ORDER BY 1")  # fmt: skip
    newest = (FIXED.replace(minute=0) + timedelta(hours=9)).astimezone(UTC)  # 09:00 KST label
    assert [r[0] for r in rows] == ["강남구", "종로구", "중구"]
    for _name, oldest, latest, count in rows:
        assert count == 24
        assert latest == f"{newest - timedelta(hours=9):%Y-%m-%d %H:%M:%S}"
        assert oldest == f"{newest - timedelta(hours=9 + 23):%Y-%m-%d %H:%M:%S}"


async def test_unknown_station_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, airkorea={"stations": ["종로구", "없는측정소"], "rate_limit": 50})
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, _sim):
        report, counts = await run_once(local, secrets, ["airkorea_stations"])
    assert report.status == "success" and counts["air_readings"] == 24
    assert any("없는측정소" in w for w in report.jobs[0].warnings)


async def test_details_404_is_recorded_and_the_movie_kept(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, simulator):
        async with make_session() as session:
            client = make_client(session, local.sources.tmdb, secrets)
            results = [r async for r in fetch_movie_details(client, [999_999_999], "ko-KR")]
        assert simulator.state.counters["movie"] == 1
    ((movie_id, error),) = results
    assert movie_id == 999_999_999 and getattr(error, "error_class", None) == "not_found"


def test_cli_run_once_simulate_from_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TMDB_API_KEY", "DATA_GO_API_KEY", "PIPELINE_CONFIG")}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--log-format", "json", "run", "--once", "--simulate"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "run 1 (cycle): success" in result.stdout and "Try some SQL" in result.stdout
    for line in result.stderr.splitlines():
        assert json.loads(line)["level"] in ("info", "warning")
    db = tmp_path / "data" / "pipeline.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stations = conn.execute("SELECT count(*) FROM air_stations WHERE sido_name IS NOT NULL").fetchone()[0]
        current = conn.execute(
            "SELECT count(DISTINCT station_name) FROM air_readings WHERE measured_at = "
            "(SELECT max(measured_at) FROM air_readings)"
        ).fetchone()[0]
        series = conn.execute("SELECT count(*) FROM air_readings WHERE station_name IN ('종로구','중구','강남구')")
        ledger = conn.execute("SELECT count(*), sum(missing) FROM air_completeness").fetchone()
        snapshots = conn.execute("SELECT count(*), count(DISTINCT tmdb_id) FROM movie_snapshots").fetchone()
        with_details = conn.execute("SELECT count(*) FROM movies WHERE details_fetched = 1").fetchone()[0]
    assert 640 <= stations <= 675 and current == stations
    assert series.fetchone()[0] == 3  # no watch-list by default: the one hour of the poll
    assert ledger == (stations, 0)
    assert 80 <= with_details <= 150 and snapshots == (with_details, with_details)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--bogus"], "No such option"),
        (["run", "--once", "--job", "weather"], "Invalid value for '--job'"),
        (["simulate", "--port", "70000"], "--port"),
        (["simulate", "--clock", "yesterday"], "not an ISO time"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_cli_arguments_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_missing_keys_say_how_to_fix(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TMDB_API_KEY", "DATA_GO_API_KEY", "PIPELINE_CONFIG")}
    result = subprocess.run([sys.executable, "-m", "pipeline", "run", "--once"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: TMDB_API_KEY is not set") and "--simulate" in result.stderr
