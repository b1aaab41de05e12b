"""``/healthz``, the guard middleware, ``pipeline serve`` (SQLite and PostgreSQL) and the daemon's web surface."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import DBAPIError

from pipeline.bench.harness import free_port, simulator_process
from pipeline.config import Settings, parse_settings
from pipeline.load.db import migrate
from pipeline.offline import simulated
from pipeline.runner import run_once
from pipeline.simulator import SIM_DATA_GO_KEY, SIM_TMDB_API_KEY, SimulatorState
from pipeline.status import collect_status
from pipeline.web.app import SECURITY_HEADERS, create_app
from pipeline.web.database import read_only_engine
from tests.backends import fetch

PIPELINE = [sys.executable, "-m", "pipeline"]


def settings_for(url: str) -> Settings:
    return parse_settings(
        {"database": {"url": url},
         "sources": {"tmdb": {"rate_limit": 40, "max_pages": 1}, "airkorea": {"rate_limit": 50}}}
    )  # fmt: skip


async def one_cycle(url: str) -> Settings:
    """A database holding one simulated cycle, run now (the simulator's clock follows the real one)."""
    settings = settings_for(url)
    await migrate(url)
    async with simulated(settings, SimulatorState()) as (local, secrets, _sim):
        report, _counts = await run_once(local, secrets)
    assert report.status == "success"
    return settings


def age_runs(url: str, hours: int) -> None:
    """Make every run ``hours`` older, with a writable connection of its own."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            conn.execute(f"UPDATE runs SET started_at = datetime(started_at, '-{hours} hours')")
        return
    import asyncpg

    async def update() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await conn.execute("UPDATE runs SET started_at = started_at - make_interval(hours => $1)", hours)
        finally:
            await conn.close()

    asyncio.run(update())


# --- /healthz and the guard, in process ---------------------------------------------------------------------


async def test_healthz_is_200_while_fresh_and_503_once_a_job_is_stale(db_url: str, aiohttp_client: Any) -> None:
    settings = await one_cycle(db_url)
    engine = read_only_engine(db_url)
    try:
        client = await aiohttp_client(create_app(settings, engine))
        fresh = await client.get("/healthz")
        body = await fresh.json()
        assert fresh.status == 200, body
        assert body["healthy"] is True and body["status"] == "ok"
        assert {job: state["state"] for job, state in body["jobs"].items()} == {
            "tmdb": "fresh", "airkorea_sido": "fresh", "airkorea_stations": "fresh"
        }  # fmt: skip
        for name, value in SECURITY_HEADERS.items():
            assert fresh.headers[name] == value

        # three hours later: past the AirKorea jobs' limit (2 h), within TMDB's (12 h)
        await asyncio.to_thread(age_runs, db_url, 3)
        stale = await client.get("/healthz")
        body = await stale.json()
        assert stale.status == 503
        assert body["healthy"] is False and body["status"] == "stale"
        assert body["jobs"]["airkorea_sido"]["state"] == "STALE" and body["jobs"]["tmdb"]["state"] == "fresh"
        sido = body["jobs"]["airkorea_sido"]
        assert sido["age_seconds"] > sido["freshness_seconds"] == 7200
        # the same rule and words as `pipeline status`: one implementation
        report = await collect_status(settings)
        assert {j.job: j.state for j in report.jobs} == {job: s["state"] for job, s in body["jobs"].items()}
        assert report.healthy is False
    finally:
        await engine.dispose()


@pytest.mark.backends("sqlite")
async def test_the_guard_answers_one_line_and_writes_nothing(db_url: str, aiohttp_client: Any) -> None:
    settings = await one_cycle(db_url)
    engine = read_only_engine(db_url)
    try:
        client = await aiohttp_client(create_app(settings, engine))
        for method, target, status in (("POST", "/healthz", 405), ("DELETE", "/", 405), ("GET", "/nosuch", 404)):
            response = await client.request(method, target)
            text = await response.text()
            assert response.status == status, text
            assert text.count("\n") == 1 and "Traceback" not in text
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        # the read-only engine cannot write, even when asked to
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError, match=r"readonly database"):
                await conn.exec_driver_sql("DELETE FROM runs")
    finally:
        await engine.dispose()
    assert fetch(db_url, "SELECT count(*) FROM runs") == [(1,)]


# --- pipeline serve, as a process --------------------------------------------------------------------------


@contextmanager
def serving(config: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``pipeline serve --port 0`` in its own process; yields its URL (read from its first line)."""
    process = subprocess.Popen(
        [*PIPELINE, "serve", "--config", str(config), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=config.parent,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + (process.stderr.read() if process.poll() else "")
        yield line.split()[1].rstrip(":"), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def write_config(tmp_path: Path, url: str, web: str = "") -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f'database: {{url: "{url}"}}\nsources: {{tmdb: {{max_pages: 1}}}}\n{web}', encoding="utf-8")
    return config


async def test_pipeline_serve_reads_either_backend_and_stops_on_sigterm(db_url: str, tmp_path: Path) -> None:
    await one_cycle(db_url)
    config = write_config(tmp_path, db_url)
    counts = fetch(db_url, "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM air_readings)")
    with serving(config) as (base, process):
        status, body, headers = get(base + "healthz")
        assert status == 200, body
        assert json.loads(body)["jobs"]["tmdb"]["state"] == "fresh"
        status, text, headers = get(base + "metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        families = {f.name for f in text_string_to_metric_families(text)}
        assert "pipeline_runs" in families or "pipeline_runs_total" in families, sorted(families)
        for page in ("", "air", "movies"):
            status, html, headers = get(base + page)
            assert status == 200, html[:300]
            assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert fetch(db_url, "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM air_readings)") == counts


@pytest.mark.backends("sqlite")
def test_pipeline_serve_bad_input_is_one_line_exit_2(db_url: str, tmp_path: Path) -> None:
    missing = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'nothing.db'}")
    cases = [
        ([*PIPELINE, "serve", "--config", str(missing), "--port", "0"], "does not exist yet"),
        ([*PIPELINE, "serve", "--config", str(missing), "--port", "99999"], "--port"),
    ]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "p.db").touch()
        present = tmp_path / "present"
        present.mkdir()
        config = write_config(present, f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
        cases.append(([*PIPELINE, "serve", "--config", str(config), "--port", str(port)], f"127.0.0.1:{port}"))
        for args, message in cases:
            result = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path)
            assert result.returncode == 2, result.stderr
            assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
            assert "Traceback" not in result.stderr


# --- the daemon's web surface ------------------------------------------------------------------------------


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def healthz_answers(url: str) -> bool:
    try:
        return get(url)[0] in (200, 503)
    except OSError:
        return False


def test_the_daemon_serves_the_surface_and_a_second_daemon_on_its_port_exits_2(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_CONFIG"}
    env |= {"TMDB_API_KEY": SIM_TMDB_API_KEY, "DATA_GO_API_KEY": quote(SIM_DATA_GO_KEY, safe="")}
    web = f"web: {{enabled: true, port: {port}}}\n"
    with simulator_process(0) as base:
        dirs = []
        for name in ("first", "second"):
            folder = tmp_path / name
            folder.mkdir()
            (folder / "config.yaml").write_text(
                f'database: {{url: "sqlite+aiosqlite:///{folder / "p.db"}"}}\n'
                f'sources: {{tmdb: {{base_url: "{base}/3", max_pages: 1, rate_limit: 40}}, '
                f'airkorea: {{base_url: "{base}/B552584", rate_limit: 50}}}}\n{web}',
                encoding="utf-8",
            )
            dirs.append(folder)
        daemon = subprocess.Popen([*PIPELINE, "run", "--config", "config.yaml"], cwd=dirs[0], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_for(lambda: healthz_answers(url + "healthz"), 60, "the daemon's /healthz")
            wait_for(lambda: get(url + "healthz")[0] == 200, 120, "fresh jobs")
            status, text, _headers = get(url + "metrics")
            assert status == 200 and "pipeline_" in text
            twin = subprocess.run([*PIPELINE, "run", "--config", "config.yaml"], cwd=dirs[1], env=env,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            assert twin.returncode == 2, twin.stderr
            assert twin.stderr.count("\n") == 1 and f"web: cannot listen on 127.0.0.1:{port}" in twin.stderr
            assert get(url + "healthz")[0] == 200  # the first one still serves
            daemon.send_signal(signal.SIGTERM)
            _out, err = daemon.communicate(timeout=90)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert daemon.returncode == 0, err
    assert "daemon stopped" in err and "Traceback" not in err
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/healthz")  # the surface stopped with the daemon
