"""The real daemon as a subprocess against a simulator subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from pipeline.bench import simulator_process
from pipeline.simulator import SIM_DATA_GO_KEY, SIM_TMDB_API_KEY

PIPELINE = [sys.executable, "-m", "pipeline"]


def wait(predicate: object, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def simulator() -> Iterator[str]:
    with simulator_process(250) as base:
        yield base


@pytest.fixture
def workdir(tmp_path: Path, simulator: str) -> tuple[Path, dict[str, str]]:
    base = simulator
    (tmp_path / "config.yaml").write_text(
        f"""
database: {{url: "sqlite+aiosqlite:///{tmp_path / "p.db"}"}}
sources:
  tmdb: {{base_url: "{base}/3", max_pages: 1, rate_limit: 40}}
  airkorea: {{base_url: "{base}/B552584", sidos: [세종], stations: [종로구], rate_limit: 50}}
schedule:
  shutdown_grace: 30
  jobs:
    tmdb: {{interval: 2, freshness: 1h}}
    airkorea_sido: {{interval: 2, freshness: 1h}}
    airkorea_stations: {{interval: 3, freshness: 1h}}
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_CONFIG"}
    # the portal's "Encoding" form of the key: the daemon must send it encoded exactly once
    env |= {"TMDB_API_KEY": SIM_TMDB_API_KEY, "DATA_GO_API_KEY": quote(SIM_DATA_GO_KEY, safe="")}
    return tmp_path, env


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path / "p.db", timeout=30) as conn:
        return conn.execute(sql).fetchall()


def finished_runs(path: Path) -> int:
    if not (path / "p.db").exists():
        return 0
    try:
        return int(query(path, "SELECT count(*) FROM runs WHERE status NOT IN ('running')")[0][0])  # type: ignore[call-overload]
    except sqlite3.OperationalError:
        return 0


def test_daemon_runs_refuses_a_twin_and_stops_cleanly_on_sigterm(workdir: tuple[Path, dict[str, str]]) -> None:
    path, env = workdir
    daemon = subprocess.Popen([*PIPELINE, "run", "--config", "config.yaml"], cwd=path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait(lambda: finished_runs(path) >= 4, 90, "completed runs")
        # a second daemon on the same database refuses to start
        twin = subprocess.run([*PIPELINE, "run", "--config", "config.yaml"], cwd=path, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert twin.returncode != 0
        assert "already running on this database" in twin.stderr and twin.stderr.count("\n") == 1
        # SIGTERM while a run is in flight
        wait(lambda: query(path, "SELECT count(*) FROM runs WHERE status = 'running'")[0][0] == 1, 60, "a run")
        in_flight = query(path, "SELECT id FROM runs WHERE status = 'running'")[0][0]
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, err
    assert "daemon stopped" in err and "Traceback" not in err
    status = query(path, f"SELECT status, finished_at IS NOT NULL FROM runs WHERE id = {in_flight}")
    assert status == [("success", 1)]  # the in-flight run was allowed to finish
    assert query(path, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
    assert query(path, "SELECT count(*) FROM daemon_jobs") == [(0,)]
    # one summary line per job run
    assert err.count("airkorea_sido: success; fetched") >= 2

    # status: fresh → 0, with JSON; then stale → 1
    fresh = subprocess.run([*PIPELINE, "status", "--config", "config.yaml", "--json"], cwd=path, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    report = json.loads(fresh.stdout)
    assert report["healthy"] is True and report["daemon_pid"] is None
    quota = {q["operation"]: q for q in report["quota"]}
    assert quota["getCtprvnRltmMesureDnsty"]["calls"] >= 2 and quota["getCtprvnRltmMesureDnsty"]["limit"] == 500
    assert quota["getMsrstnAcctoRltmMesureDnsty"]["left"] == 500 - quota["getMsrstnAcctoRltmMesureDnsty"]["calls"]
    assert {j["job"]: j["fresh"] for j in report["jobs"]} == {"tmdb": True, "airkorea_sido": True,
                                                              "airkorea_stations": True}  # fmt: skip
    with sqlite3.connect(path / "p.db") as conn:
        conn.execute("UPDATE runs SET started_at = datetime(started_at, '-2 hours') WHERE job = 'tmdb'")
    stale = subprocess.run([*PIPELINE, "status", "--config", "config.yaml"], cwd=path, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert stale.returncode == 1
    assert any(line.startswith("tmdb") and "STALE" in line for line in stale.stdout.splitlines())


def test_a_run_left_running_by_a_killed_daemon_is_marked_abandoned(workdir: tuple[Path, dict[str, str]]) -> None:
    path, env = workdir
    daemon = subprocess.Popen([*PIPELINE, "run", "--config", "config.yaml"], cwd=path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait(lambda: finished_runs(path) >= 1 and
             query(path, "SELECT count(*) FROM runs WHERE status = 'running'")[0][0] >= 1, 90, "a run in flight")  # fmt: skip
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    killed = query(path, "SELECT id FROM runs WHERE status = 'running'")
    assert killed
    # the lock died with the process: a new daemon starts and marks the orphaned run failed
    again = subprocess.Popen([*PIPELINE, "run", "--config", "config.yaml"], cwd=path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait(lambda: query(path, f"SELECT status FROM runs WHERE id = {killed[0][0]}")[0][0] == "failed", 60,
             "the abandoned run to be marked")  # fmt: skip
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    finally:
        if again.poll() is None:
            again.kill()
    assert again.returncode == 0
    error = query(path, f"SELECT error FROM runs WHERE id = {killed[0][0]}")[0][0]
    assert isinstance(error, str) and error.startswith("abandoned")
    with sqlite3.connect(path / "p.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
