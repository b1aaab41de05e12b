"""The run ledger and the status helpers on both backends: windows, abandoned runs, last runs, the timetable,
and `collect_status` with the daemon lock held."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from pipeline.config import parse_settings
from pipeline.load.runs import (
    HOST,
    RunTotals,
    finish_run,
    get_run,
    last_runs,
    load_timetable,
    mark_abandoned,
    record_window,
    save_timetable,
    start_run,
)
from pipeline.load.tables import runs
from pipeline.load.writer import Writer
from pipeline.lock import DaemonLock
from pipeline.status import collect_status

T0 = datetime(2026, 11, 28, 1, tzinfo=UTC)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_windows_and_abandoned_runs(writer: Writer) -> None:
    missed = await record_window(writer, "tmdb", "missed", T0, "window missed")
    assert (await get_run(writer, missed) or {})["status"] == "missed"
    ours = await start_run(writer, "airkorea_sido", "schedule", T0)
    dead = await start_run(writer, "airkorea_stations", "schedule", T0)
    elsewhere = await start_run(writer, "tmdb", "schedule", T0)
    async with writer.lock, writer.engine.begin() as conn:
        await conn.execute(update(runs).where(runs.c.id == dead).values(pid=dead_pid()))
        await conn.execute(update(runs).where(runs.c.id == elsewhere).values(host="other-machine", pid=1))
    assert await mark_abandoned(writer) == 1
    statuses = {r: (await get_run(writer, r) or {}) for r in (ours, dead, elsewhere)}
    assert statuses[dead]["status"] == "failed" and statuses[dead]["error"].startswith("abandoned")
    assert statuses[ours]["status"] == "running" and statuses[ours]["host"] == HOST
    assert statuses[ours]["pid"] == os.getpid() and statuses[elsewhere]["status"] == "running"


async def test_last_runs_per_job_and_from_cycles(writer: Writer) -> None:
    first = await start_run(writer, "airkorea_sido", "schedule", T0)
    await finish_run(writer, first, "success", RunTotals())
    second = await start_run(writer, "airkorea_sido", "schedule", T0 + timedelta(hours=1))
    await finish_run(writer, second, "failed", RunTotals(), error="boom")
    cycle = await start_run(writer, "cycle", "manual", T0 + timedelta(hours=2))
    details = {"tmdb": {"status": "success"}, "airkorea_stations": {"status": "failed"}}
    await finish_run(writer, cycle, "partial", RunTotals(), details=details)
    found = await last_runs(writer)
    assert (found["airkorea_sido"]["last"]["id"], found["airkorea_sido"]["success"]["id"]) == (second, first)
    assert found["airkorea_sido"]["success"]["started_at"] == T0  # aware UTC from both backends
    assert (found["tmdb"]["last"]["id"], found["tmdb"]["success"]["id"]) == (cycle, cycle)
    assert found["airkorea_stations"]["last"]["status"] == "failed" and "success" not in found["airkorea_stations"]


async def test_timetable_is_replaced_and_read_back(writer: Writer) -> None:
    await save_timetable(writer, {"tmdb": T0, "airkorea_sido": None}, 4711)
    assert await load_timetable(writer) == {"tmdb": T0, "airkorea_sido": None}
    await save_timetable(writer, {"airkorea_stations": T0 + timedelta(minutes=5)}, 4711)
    assert await load_timetable(writer) == {"airkorea_stations": T0 + timedelta(minutes=5)}
    await save_timetable(writer, {}, 4711)
    assert await load_timetable(writer) == {}


async def test_collect_status_and_the_daemon_lock(writer: Writer, db_url: str) -> None:
    settings = parse_settings({"database": {"url": db_url}})
    now = datetime.now(UTC).replace(microsecond=0)  # SQLite stores whole seconds
    run_id = await start_run(writer, "cycle", "manual", now - timedelta(minutes=5))
    details = {job: {"status": "success"} for job in ("tmdb", "airkorea_sido", "airkorea_stations")}
    await finish_run(writer, run_id, "success", RunTotals(requests=3), details=details)
    report = await collect_status(settings, now)
    assert report.healthy and report.daemon_pid is None
    assert report.totals == {"runs": 1, "movies": 0, "movie_snapshots": 0, "air_stations": 0, "air_readings": 0,
                             "rejects": 0}  # fmt: skip
    assert [(j.job, j.last_run_id, j.fresh, j.age_seconds) for j in report.jobs] == [
        ("tmdb", run_id, True, 300.0), ("airkorea_sido", run_id, True, 300.0), ("airkorea_stations", run_id, True, 300.0)
    ]  # fmt: skip
    assert [u.calls for u in report.quota] == [0, 0]
    async with DaemonLock(db_url):
        next_at = now + timedelta(hours=1)
        await save_timetable(writer, {"tmdb": next_at}, os.getpid())
        running = await collect_status(settings, now)
        assert running.daemon_pid == os.getpid()
        assert {j.job: j.next_run_at for j in running.jobs}["tmdb"] == next_at
    assert (await collect_status(settings, now)).daemon_pid is None
    stale = await collect_status(settings, now + timedelta(days=1))
    assert not stale.healthy and not any(j.fresh for j in stale.jobs)


async def test_a_run_id_comes_back_from_the_insert(writer: Writer) -> None:
    ids = [await start_run(writer, "tmdb", "manual", T0) for _ in range(3)]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    async with writer.engine.connect() as conn:
        assert (await conn.execute(select(runs.c.id).order_by(runs.c.id))).scalars().all() == ids
