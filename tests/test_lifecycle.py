"""pipeline/lifecycle.py: ``writing()`` migrates, marks the runs a dead process left ``running`` as failed (and
only those), disposes the engine, and with ``simulate`` points every source at a simulator it stops after; and
through the CLI, a backfill killed by SIGKILL is cleaned up by the next command."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import Pool

from pipeline.config import Settings, parse_settings
from pipeline.keys import Secrets
from pipeline.lifecycle import Opened, writing
from pipeline.load.db import create_engine, migrate
from pipeline.load.runs import HOST, get_run, start_run
from pipeline.load.tables import runs
from pipeline.load.writer import Writer
from pipeline.simulator import SIM_DATA_GO_KEY, SIM_TMDB_READ_TOKEN
from pipeline.transform.common import KST
from tests.backends import fetch_async, names_async
from tests.load.test_runs import dead_pid

T0 = datetime(2026, 11, 28, 1, tzinfo=UTC)


def settings_for(url: str) -> Settings:
    return parse_settings({"database": {"url": url, "chunk_size": 700}})


async def test_writing_migrates_a_new_database(db_url: str) -> None:
    assert await names_async(db_url) == (set(), set())
    settings, secrets = settings_for(db_url), Secrets(tmdb_api_key="t0ken", data_go_api_key="k3y+")
    async with writing(settings, secrets) as opened:
        tables, views = await names_async(db_url)
        assert {"runs", "movies", "movie_snapshots", "air_stations", "air_readings", "api_calls"} <= tables
        assert {"air_latest", "movie_trend"} <= views
        # without simulate the settings and secrets are handed through as they are
        assert opened.settings is settings and opened.secrets is secrets
        assert opened.writer.engine is opened.engine and opened.writer.chunk_size == 700
        run_id = await start_run(opened.writer, "cycle", "manual", T0)  # the writer writes
    assert await fetch_async(db_url, "SELECT id, status FROM runs") == [(run_id, "running")]


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The id of a process of this machine that is alive for the test (ended after it)."""
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield alive.pid
        assert alive.poll() is None  # it really was alive throughout
    finally:
        alive.kill()
        alive.wait(10)


@pytest.fixture
def dead_pids() -> list[int]:
    return [dead_pid() for _ in range(3)]


async def test_writing_fails_the_runs_of_dead_processes_only(
    db_url: str, live_pid: int, dead_pids: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        writer = Writer(engine)
        ids = {name: await start_run(writer, name, "schedule", T0) for name in
               ("dead", "no pid", "live process", "this process", "other machine", "finished")}  # fmt: skip
        values: dict[str, dict[str, Any]] = {
            "dead": {"pid": dead_pids[0]},
            "no pid": {"pid": None},
            "live process": {"pid": live_pid},
            "other machine": {"host": "elsewhere", "pid": dead_pids[1]},
            "finished": {"pid": dead_pids[2], "status": "success"},
        }
        async with writer.lock, engine.begin() as conn:
            for name, change in values.items():
                await conn.execute(update(runs).where(runs.c.id == ids[name]).values(**change))
        with caplog.at_level(logging.WARNING, logger="pipeline.lifecycle"):
            async with writing(settings_for(db_url), Secrets()):
                pass
        found = {name: await get_run(writer, run_id) or {} for name, run_id in ids.items()}
    finally:
        await engine.dispose()
    for name in ("dead", "no pid"):
        assert found[name]["status"] == "failed" and found[name]["finished_at"] is not None
        assert found[name]["error"] == "abandoned: the process ended mid-run"
    for name in ("live process", "this process", "other machine"):
        assert (found[name]["status"], found[name]["error"], found[name]["finished_at"]) == ("running", None, None)
    assert found["this process"]["host"] == HOST and found["this process"]["pid"] == os.getpid()
    assert (found["finished"]["status"], found["finished"]["error"]) == ("success", None)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["marked 2 run(s) left running by a process that ended as failed"]


async def test_writing_disposes_the_engine_even_when_the_command_fails(db_url: str, backend: str) -> None:
    seen: list[tuple[Opened, Pool]] = []

    async def command() -> None:
        async with writing(settings_for(db_url), Secrets()) as opened:
            seen.append((opened, opened.engine.sync_engine.pool))
            assert opened.engine.sync_engine.pool.checkedin() >= 1  # marking abandoned runs pooled a connection
            raise RuntimeError("the command failed")

    with pytest.raises(RuntimeError, match="the command failed"):
        await command()
    ((opened, pool),) = seen
    # disposed: the pool's connections closed, the engine left with a fresh, empty pool
    assert (pool.checkedin(), pool.checkedout()) == (0, 0)
    assert opened.engine.sync_engine.pool is not pool
    if backend == "postgresql":  # and the server agrees: no connection of ours is left
        database = make_url(db_url).database
        left = await fetch_async(
            db_url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND application_name = 'pipeline'",
            {"db": database},
        )
        assert left == [(0,)]


@pytest.mark.backends("sqlite")
async def test_simulate_points_every_source_at_a_local_simulator_and_stops_it(db_url: str) -> None:
    settings = settings_for(db_url)
    async with writing(settings, Secrets(), simulate=True) as opened:
        tmdb, air = urlsplit(opened.settings.sources.tmdb.base_url), urlsplit(opened.settings.sources.airkorea.base_url)
        assert (tmdb.hostname, air.hostname) == ("127.0.0.1", "127.0.0.1") and tmdb.port == air.port
        assert (tmdb.path, air.path) == ("/3", "/B552584")
        assert opened.settings.database == settings.database  # only the sources change
        assert opened.secrets.tmdb_api_key == SIM_TMDB_READ_TOKEN
        assert opened.secrets.data_go_api_key == SIM_DATA_GO_KEY
        stats = f"http://127.0.0.1:{tmdb.port}/_sim/stats"
        async with aiohttp.ClientSession() as session, session.get(stats) as response:
            assert response.status == 200 and "counters" in await response.json()
    # the caller's settings are untouched, and the simulator is gone
    assert settings.sources.tmdb.base_url == "https://api.themoviedb.org/3"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(stats, timeout=aiohttp.ClientTimeout(total=10)):
                pass


# --- through the CLI: SIGKILL mid-backfill, then the next command --------------------------------------------

PIPELINE = [sys.executable, "-m", "pipeline"]


def cli_env() -> dict[str, str]:
    drop = ("TMDB_API_KEY", "DATA_GO_API_KEY", "PIPELINE_CONFIG")
    return {k: v for k, v in os.environ.items() if k not in drop}


def backfill_runs(db: Path) -> list[tuple[Any, ...]]:
    """``(id, status, pid)`` of the backfill runs, read-only (never creates the file); [] before the migration."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT id, status, pid FROM runs WHERE job = 'backfill_airkorea'").fetchall()
    except sqlite3.OperationalError:  # no runs table yet, or the file is being created
        return []


@pytest.mark.slow
@pytest.mark.parametrize(
    "next_command",
    [
        pytest.param(["backfill", "airkorea", "--dry-run"], id="backfill dry run"),
        pytest.param(["run", "--once", "--simulate", "--job", "airkorea_sido"], id="run once"),
    ],
)
def test_a_backfill_killed_mid_run_is_marked_abandoned_by_the_next_command(
    tmp_path: Path, next_command: list[str]
) -> None:
    db = tmp_path / "p.db"
    (tmp_path / "config.yaml").write_text(
        f'database: {{url: "sqlite+aiosqlite:///{db}"}}\n'
        "sources: {airkorea: {rate_limit: 2, sidos: [서울]}}\n",  # slow: the backfill is still running when killed
        encoding="utf-8",
    )
    today = datetime.now(KST).date()
    days = ["--from", (today - timedelta(days=1)).isoformat(), "--to", today.isoformat()]
    selection = ["--sido", "서울"]
    log = (tmp_path / "backfill.log").open("wb")
    proc = subprocess.Popen(
        [*PIPELINE, "backfill", "airkorea", "--simulate", *days, *selection],
        cwd=tmp_path, env=cli_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not any(status == "running" for _id, status, _pid in backfill_runs(db)):
            assert proc.poll() is None, (tmp_path / "backfill.log").read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, "the backfill's run never showed as running"
            time.sleep(0.05)
    finally:
        # SIGKILL the backfill and what it spawned (its parse worker): all of its own session, by its id
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        log.close()
    assert proc.returncode == -signal.SIGKILL
    ((run_id, status, pid),) = backfill_runs(db)
    assert (status, pid) == ("running", proc.pid)  # nothing could record the end of the killed process

    args = [*next_command, *days, *selection] if next_command[0] == "backfill" else next_command
    result = subprocess.run([*PIPELINE, *args], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                            timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "marked 1 run(s) left running by a process that ended as failed" in result.stderr
    with sqlite3.connect(db, timeout=30) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        killed = conn.execute("SELECT status, error, finished_at FROM runs WHERE id = ?", (run_id,)).fetchone()
        others = conn.execute("SELECT job, status FROM runs WHERE id <> ? ORDER BY id", (run_id,)).fetchall()
    assert killed[0] == "failed" and killed[1].startswith("abandoned") and killed[2] is not None
    assert others == ([] if next_command[0] == "backfill" else [("cycle", "success")])  # `run --once`: one cycle
