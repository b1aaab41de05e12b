"""The timetable and the daemon's job handling, without sleeping for a schedule."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.config import Settings, parse_settings
from pipeline.offline import simulated
from pipeline.scheduler import Daemon, build_scheduler
from pipeline.simulator import SimulatorState
from pipeline.timetable import freshness_limit, period

SEOUL = ZoneInfo("Asia/Seoul")


async def noop(job: str, trigger: str) -> None:  # pragma: no cover - never called
    return None


def test_default_timetable_from_config() -> None:
    settings = Settings()
    scheduler = build_scheduler(settings, noop)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"tmdb", "airkorea_sido", "airkorea_stations"}
    sido = jobs["airkorea_sido"].trigger
    assert isinstance(sido, CronTrigger)
    assert sido.timezone == SEOUL and sido.jitter == 60
    fields = {f.name: str(f) for f in sido.fields}
    assert (fields["minute"], fields["hour"], fields["day"]) == ("20", "*", "*")
    tmdb = {f.name: str(f) for f in jobs["tmdb"].trigger.fields}
    assert (tmdb["minute"], tmdb["hour"]) == ("10", "0,6,12,18")
    # fire times are computed in KST: the 20-past poll after data lands at ~15 past
    after = datetime(2026, 11, 28, 14, 21, tzinfo=SEOUL)
    fire = CronTrigger(minute="20", timezone=SEOUL).get_next_fire_time(None, after)
    assert fire == datetime(2026, 11, 28, 15, 20, tzinfo=SEOUL)
    # job options: never overlap, coalesce a backlog, generous misfire grace
    for job in jobs.values():
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 900)
        assert job.args[1] == "schedule"


def test_config_overrides_zone_interval_jitter_and_disables() -> None:
    settings = parse_settings(
        {
            "schedule": {
                "timezone": "UTC",
                "misfire_grace_time": "5m",
                "jobs": {"tmdb": {"interval": "2h", "jitter": 30}, "airkorea_stations": {"enabled": False},
                         "airkorea_sido": {"cron": "0 9 * * 0"}},
            }
        }
    )  # fmt: skip
    jobs = {job.id: job for job in build_scheduler(settings, noop).get_jobs()}
    assert set(jobs) == {"tmdb", "airkorea_sido"}
    tmdb = jobs["tmdb"].trigger
    assert isinstance(tmdb, IntervalTrigger) and tmdb.interval == timedelta(hours=2) and tmdb.jitter == 30
    assert jobs["tmdb"].misfire_grace_time == 300
    # cron's 0 is Sunday (APScheduler 3 alone would read Monday)
    sido = jobs["airkorea_sido"].trigger
    monday = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday
    assert sido.get_next_fire_time(None, monday) == datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def test_disabled_source_has_no_jobs() -> None:
    settings = parse_settings({"sources": {"airkorea": {"enabled": False}}})
    assert [job.id for job in build_scheduler(settings, noop).get_jobs()] == ["tmdb"]


def test_periods_and_freshness_defaults() -> None:
    jobs = Settings().schedule.jobs
    assert period(jobs["airkorea_sido"], SEOUL) == timedelta(hours=1)
    assert period(jobs["tmdb"], SEOUL) == timedelta(hours=6)
    assert freshness_limit(jobs["airkorea_sido"], SEOUL) == timedelta(hours=2)
    custom = parse_settings({"schedule": {"jobs": {"tmdb": {"freshness": "1d"}}}}).schedule.jobs["tmdb"]
    assert freshness_limit(custom, SEOUL) == timedelta(days=1)


def daemon_settings(tmp_path: Path, **schedule: Any) -> Settings:
    return parse_settings(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"},
            "sources": {"tmdb": {"max_pages": 1, "rate_limit": 40},
                        "airkorea": {"sidos": ["세종"], "stations": ["종로구"], "rate_limit": 50,
                                     "attempts": 1}},
            "schedule": {"shutdown_grace": 5, **schedule},
        }
    )  # fmt: skip


def runs(tmp_path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "d.db") as conn:
        return conn.execute("SELECT job, trigger, status, error FROM runs ORDER BY id").fetchall()


async def wait_for(predicate: Any, limit: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def running_daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, SimulatorState]]:
    settings = daemon_settings(tmp_path, jobs={name: {"cron": "0 3 1 1 *"} for name in
                                               ("tmdb", "airkorea_sido", "airkorea_stations")})  # fmt: skip
    state = SimulatorState()
    async with simulated(settings, state) as (local, secrets, _sim):
        daemon = Daemon(local, secrets)
        task = asyncio.create_task(daemon.run())
        await wait_for(lambda: daemon.scheduler is not None and daemon.scheduler.running)
        # start-up catch-up: nothing ever succeeded, so every job runs at once
        await wait_for(lambda: len([r for r in runs(tmp_path) if r[2] != "running"]) >= 3)
        try:
            yield daemon, state
        finally:
            daemon.stop_event.set()
            await asyncio.wait_for(task, 30)


async def test_catch_up_then_forced_job_records_a_run(
    running_daemon: tuple[Daemon, SimulatorState], tmp_path: Path
) -> None:
    daemon, _state = running_daemon
    assert sorted(r[:3] for r in runs(tmp_path)) == sorted(
        [("tmdb", "catchup", "success"), ("airkorea_sido", "catchup", "success"),
         ("airkorea_stations", "catchup", "success")]
    )  # fmt: skip
    assert daemon.scheduler is not None
    daemon.scheduler.get_job("airkorea_sido").modify(next_run_time=datetime.now(UTC))
    daemon.scheduler.wakeup()
    await wait_for(lambda: len(runs(tmp_path)) == 4 and runs(tmp_path)[-1][2] != "running")
    assert runs(tmp_path)[-1][:3] == ("airkorea_sido", "schedule", "success")


async def test_errors_and_misses_land_in_runs(running_daemon: tuple[Daemon, SimulatorState], tmp_path: Path) -> None:
    daemon, state = running_daemon
    assert daemon.scheduler is not None
    state.add_fault("getCtprvnRltmMesureDnsty", "gateway", code="30")
    daemon.scheduler.get_job("airkorea_sido").modify(next_run_time=datetime.now(UTC))
    daemon.scheduler.wakeup()
    await wait_for(lambda: len(runs(tmp_path)) == 4 and runs(tmp_path)[-1][2] != "running")
    job, trigger, status, error = runs(tmp_path)[-1]
    assert (job, trigger, status) == ("airkorea_sido", "schedule", "failed")
    assert "SERVICE_KEY_IS_NOT_REGISTERED_ERROR" in error
    # a window far older than the misfire grace time is recorded as missed, not run
    daemon.scheduler.get_job("tmdb").modify(next_run_time=datetime.now(UTC) - timedelta(hours=2))
    daemon.scheduler.wakeup()
    await wait_for(lambda: len(runs(tmp_path)) == 5)
    job, trigger, status, error = runs(tmp_path)[-1]
    assert (job, trigger, status) == ("tmdb", "schedule", "missed") and "missed" in error


async def test_a_late_hour_gets_extra_polls_at_most_three_between_scheduled_ones(tmp_path: Path) -> None:
    from pipeline.extract.airkorea import newest_published_hour

    settings = parse_settings(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"},
            "sources": {"tmdb": {"enabled": False},
                        "airkorea": {"sidos": ["세종"], "rate_limit": 50, "attempts": 1, "late_poll": 1}},
            "schedule": {"shutdown_grace": 5,
                         "jobs": {name: {"cron": "0 3 1 1 *"} for name in ("airkorea_sido", "airkorea_stations")}},
        }
    )  # fmt: skip
    state = SimulatorState()
    due = newest_published_hour(datetime.now(UTC))
    state.quirks.late_hours[due] = int((datetime.now(UTC) - due).total_seconds() // 60) + 30  # half an hour late
    async with simulated(settings, state) as (local, secrets, _sim):
        daemon = Daemon(local, secrets)
        task = asyncio.create_task(daemon.run())
        try:
            await wait_for(lambda: daemon.scheduler is not None and daemon.scheduler.running)
            late = lambda: [r for r in runs(tmp_path) if r[:2] == ("airkorea_sido", "late") and r[2] != "running"]  # noqa: E731
            await wait_for(lambda: len(late()) == 3)
            await asyncio.sleep(2.5)  # late_poll is 1 s: a fourth would have come by now
            assert len(late()) == 3 and all(r[2] == "success" for r in late())
            assert daemon.scheduler is not None and daemon.scheduler.get_job("airkorea_sido:late") is None
            # published at last: the next scheduled poll brings it, and asks for nothing more
            state.quirks.late_hours.clear()
            daemon.scheduler.get_job("airkorea_sido").modify(next_run_time=datetime.now(UTC))
            daemon.scheduler.wakeup()
            await wait_for(lambda: runs(tmp_path)[-1][:3] == ("airkorea_sido", "schedule", "success"))
            await asyncio.sleep(1.5)
            assert len(late()) == 3
        finally:
            daemon.stop_event.set()
            await asyncio.wait_for(task, 30)
    with sqlite3.connect(tmp_path / "d.db") as conn:
        newest = conn.execute("SELECT max(measured_at) FROM air_published_hours").fetchone()[0]
        timetable = [job for (job,) in conn.execute("SELECT job FROM daemon_jobs")]
    assert newest == f"{due:%Y-%m-%d %H:%M:%S}"
    assert ":late" not in " ".join(timetable)
