"""`database.url: postgresql+asyncpg://…` for every command, through the CLI: migrate, run --once, status,
sql, the daemon (a twin refused, status sees it, SIGTERM), and a clear error without the driver."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.transform.common import KST
from tests.backends import fetch
from tests.e2e.test_daemon import wait

PIPELINE = [sys.executable, "-m", "pipeline"]
POSTGRES = "postgresql+asyncpg://someone@127.0.0.1:5432/somewhere"


@pytest.mark.parametrize("args", [["status"], ["migrate"], ["sql", "SELECT 1"], ["sql", "--tables"],
                                  ["run", "--once", "--simulate"], ["run", "--simulate"]])  # fmt: skip
def test_without_asyncpg_the_error_says_what_to_install(
    args: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(f'database: {{url: "{POSTGRES}"}}\n', encoding="utf-8")
    assert main(args) == 2
    assert capfd.readouterr().err == (
        "error: database.url: PostgreSQL needs the asyncpg driver, which is not installed: "
        "pip install 'pipeline[postgres]'\n"
    )


def cli(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIPELINE, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def pg_workdir(tmp_path: Path, postgres_url: str) -> tuple[Path, str]:
    (tmp_path / "config.yaml").write_text(
        f"""
database: {{url: "{postgres_url}"}}
sources:
  tmdb: {{max_pages: 1, rate_limit: 40}}
  airkorea: {{sidos: [세종], stations: [종로구], rate_limit: 50}}
schedule:
  shutdown_grace: 30
  jobs:
    tmdb: {{interval: 2, freshness: 1h}}
    airkorea_sido: {{interval: 2, freshness: 1h}}
    airkorea_stations: {{interval: 3, freshness: 1h}}
""",
        encoding="utf-8",
    )
    return tmp_path, postgres_url


@pytest.mark.postgres
@pytest.mark.slow
def test_every_command_on_postgresql(pg_workdir: tuple[Path, str]) -> None:
    path, url = pg_workdir
    migrated = cli(path, "migrate")
    assert migrated.returncode == 0 and "database at the newest schema: postgresql+asyncpg://" in migrated.stdout
    once = cli(path, "run", "--once", "--simulate")
    assert once.returncode == 0, once.stderr
    assert "run 1 (cycle): success" in once.stdout and "Try some SQL (pipeline sql" in once.stdout
    status = cli(path, "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["healthy"] is True and report["daemon_pid"] is None and report["database"] == url
    assert report["totals"]["air_readings"] == fetch(url, "SELECT count(*) FROM air_readings")[0][0] > 0
    assert {q["operation"]: q["calls"] for q in report["quota"]} == {
        "getCtprvnRltmMesureDnsty": 1, "getMsrstnAcctoRltmMesureDnsty": 1
    }  # fmt: skip
    query = cli(
        path, "sql", "--json", "SELECT sido_name, count(*) AS n FROM air_latest WHERE sido_name = '세종' GROUP BY 1"
    )
    assert query.returncode == 0 and json.loads(query.stdout) == [
        {"sido_name": "세종", "n": fetch(url, "SELECT count(*) FROM air_stations WHERE sido_name = '세종'")[0][0]}
    ]
    tables = cli(path, "sql", "--tables", "--csv")
    assert tables.returncode == 0 and "air_daily,view," in tables.stdout and "runs,table,1" in tables.stdout
    before = fetch(url, "SELECT count(*), sum(pm10) FROM air_readings")
    refused = cli(path, "sql", "DELETE FROM air_readings")
    assert refused.returncode == 2 and refused.stderr == "error: pipeline sql is read-only: DELETE is refused\n"
    assert fetch(url, "SELECT count(*), sum(pm10) FROM air_readings") == before


@pytest.mark.postgres
@pytest.mark.slow
def test_the_daemon_on_postgresql(pg_workdir: tuple[Path, str]) -> None:
    path, url = pg_workdir
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_CONFIG"}

    def finished() -> Any:
        try:
            return fetch(url, "SELECT count(*) FROM runs WHERE status <> 'running'")[0][0]
        except Exception:  # not migrated yet
            return 0

    daemon = subprocess.Popen([*PIPELINE, "run", "--simulate"], cwd=path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait(lambda: finished() >= 4, 90, "completed runs")
        twin = cli(path, "run", "--simulate", env=env)
        assert twin.returncode == 1
        assert twin.stderr.splitlines()[-1].startswith(
            f"error: another pipeline daemon (pid {daemon.pid}) is already running on this database ({url})"
        )
        status = cli(path, "status", "--json", env=env)
        report = json.loads(status.stdout)
        assert report["daemon_pid"] == daemon.pid
        assert {j["job"] for j in report["jobs"] if j["next_run_at"]} == {"tmdb", "airkorea_sido", "airkorea_stations"}
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, err
    assert "daemon stopped" in err and "Traceback" not in err
    assert fetch(url, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
    after = json.loads(cli(path, "status", "--json", env=env).stdout)
    assert after["daemon_pid"] is None


@pytest.mark.postgres
@pytest.mark.slow
def test_backfill_on_postgresql(pg_workdir: tuple[Path, str]) -> None:
    path, url = pg_workdir
    today = datetime.now(KST).date()
    first = (today - timedelta(days=2)).isoformat()
    # 서울's 40 stations: enough for the parse worker (rows built for asyncpg, not in SQLite's text forms)
    air = ["backfill", "airkorea", "--simulate", "--from", first, "--to", today.isoformat(), "--sido", "서울"]
    done = cli(path, *air)
    assert done.returncode == 0, done.stdout + done.stderr
    readings = fetch(url, "SELECT count(*), count(DISTINCT station_name) FROM air_readings")[0]
    # two whole KST days (the newest hour, 24:00, may not be published yet just after midnight) and today's
    assert readings[1] == 40 and readings[0] >= 40 * 47
    chunks = fetch(url, "SELECT status, count(*) FROM backfill_chunks GROUP BY 1")
    assert chunks == [("done", 40)]
    # the rows are typed: timestamptz instants on the hour, inside the range (01:00 KST of the first day on)
    oldest = fetch(url, "SELECT min(measured_at) FROM air_readings")[0][0]
    assert oldest.tzinfo is not None and oldest.minute == 0
    assert oldest.astimezone(KST) >= datetime.fromisoformat(first).replace(hour=1, tzinfo=KST)
    again = cli(path, *air)  # every chunk done: nothing fetched, nothing changed
    assert again.returncode == 0 and fetch(url, "SELECT count(*) FROM air_readings")[0][0] == readings[0]
    assert fetch(url, "SELECT count(*) FROM api_calls WHERE operation = 'getMsrstnAcctoRltmMesureDnsty'") == [(1,)]
    assert fetch(url, "SELECT sum(calls) FROM api_calls WHERE operation = 'getMsrstnAcctoRltmMesureDnsty'") == [(40,)]
    daily = fetch(url, "SELECT count(*) FROM air_daily WHERE kst_date = :d", {"d": today - timedelta(days=1)})
    assert daily == [(40,)]
    tmdb = cli(path, "backfill", "tmdb", "--simulate", "--from", (today - timedelta(days=60)).isoformat(),
               "--to", today.isoformat())  # fmt: skip
    assert tmdb.returncode == 0, tmdb.stdout + tmdb.stderr
    movies, snapshots = fetch(url, "SELECT (SELECT count(*) FROM movies), (SELECT count(*) FROM movie_snapshots "
                                   "WHERE list_name = 'discover')")[0]  # fmt: skip
    assert movies > 0 and snapshots == movies
    runs = fetch(url, "SELECT job, status FROM runs ORDER BY id")
    assert runs == [("backfill_airkorea", "success"), ("backfill_airkorea", "success"), ("backfill_tmdb", "success")]


@pytest.mark.postgres
@pytest.mark.slow
def test_bench_measures_the_loader_on_postgresql(pg_workdir: tuple[Path, str]) -> None:
    path, url = pg_workdir
    out = path / "bench.json"
    result = cli(path, "bench", "--quick", "--only", "loader", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {line["name"]: line for line in json.loads(out.read_text(encoding="utf-8"))["lines"]}
    for label in ("fresh", "again, unchanged", "again, 5 % changed"):
        ours = lines[f"PostgreSQL: upsert 20,000 readings, {label}"]
        assert ours["baseline_name"] == "asyncpg executemany (rows/s)" and ours["value"] > 1000 < ours["baseline"]
        assert isinstance(ours["passed"], bool) and ours["ratio"] == pytest.approx(ours["value"] / ours["baseline"])
    assert lines["PostgreSQL: ours vs COPY, fresh"]["baseline_name"] == "COPY (rows/s)"
    staged = lines["PostgreSQL: ours vs COPY, again, unchanged"]
    assert staged["baseline_name"].startswith("COPY to staging") and staged["baseline"] > 1000
    assert lines["upsert 20,000 readings, fresh"]["baseline_name"] == "raw sqlite3 executemany (rows/s)"
    # the throwaway database is gone, and the configured database was not touched
    assert fetch(url, "SELECT count(*) FROM pg_database WHERE datname LIKE 'pipeline_bench_%'") == [(0,)]
    assert fetch(url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]
