"""The common questions use the indexes as shipped, even on a database SQLite never analysed.

The speed itself is measured by `pipeline bench --only queries` on a year of readings (~5.9 million rows);
these tests pin the plans that make those figures hold: no query here may scan air_readings.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from pipeline.bench import QUERIES
from pipeline.load.db import upgrade_sync
from pipeline.load.runs import NEWEST_RUNS


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = tmp_path_factory.mktemp("plans") / "p.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    return sqlite3.connect(path)


def plan(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize("name", QUERIES)
def test_benchmarked_queries_never_scan_the_readings(conn: sqlite3.Connection, name: str) -> None:
    sql, params, _target = QUERIES[name]
    steps = plan(conn, sql, params)
    assert not any(step.startswith("SCAN") and ("air_readings" in step or step in ("SCAN r", "SCAN x"))
                   for step in steps), steps  # fmt: skip
    assert any("USING INDEX sqlite_autoindex_air_readings_1 (station_name=?" in step or
               "USING COVERING INDEX sqlite_autoindex_air_readings_1 (station_name=?" in step for step in steps), steps  # fmt: skip


def test_air_latest_walks_the_stations_and_seeks_each_newest_hour(conn: sqlite3.Connection) -> None:
    steps = plan(conn, "SELECT * FROM air_latest")
    assert steps[0] == "SCAN s"  # ~670 stations, not millions of readings
    assert "SEARCH r USING INDEX sqlite_autoindex_air_readings_1 (station_name=? AND measured_at=?)" in steps


def test_a_station_day_in_kst_uses_the_key(conn: sqlite3.Connection) -> None:
    steps = plan(conn, "SELECT * FROM air_readings_kst WHERE station_name = ? AND kst_date = ?", ("x", "2026-03-01"))
    assert steps == ["SEARCH r USING INDEX sqlite_autoindex_air_readings_1 (station_name=?)"]


def test_one_station_over_time_is_a_range_of_the_key(conn: sqlite3.Connection) -> None:
    steps = plan(conn, "SELECT max(measured_at) FROM air_readings WHERE station_name = ?", ("x",))
    assert steps == ["SEARCH air_readings USING COVERING INDEX sqlite_autoindex_air_readings_1 (station_name=?)"]


def test_run_history_and_rejects_by_run_use_indexes(conn: sqlite3.Connection) -> None:
    assert "ix_runs_job_started_at" in " ".join(plan(conn, "SELECT * FROM runs WHERE job = ? ORDER BY started_at DESC",
                                                      ("tmdb",)))  # fmt: skip
    assert "ix_rejects_run_id" in " ".join(plan(conn, "SELECT * FROM rejects WHERE run_id = ?", (1,)))


def test_plans_hold_after_analyze_too(conn: sqlite3.Connection, tmp_path: Path) -> None:
    conn.execute("ANALYZE")
    steps = plan(conn, "SELECT * FROM air_latest")
    assert steps[0] == "SCAN s"


@pytest.mark.parametrize("key", NEWEST_RUNS)
def test_the_newest_run_of_each_job_is_read_from_an_index_alone(conn: sqlite3.Connection, key: str) -> None:
    # `pipeline status` and every /healthz probe ask it: the runs table (with its details JSON) is not read
    sql = str(NEWEST_RUNS[key].compile(dialect=sqlite_dialect(), compile_kwargs={"literal_binds": True}))
    steps = plan(conn, sql)
    assert any("USING COVERING INDEX ix_runs_job_status_id" in step for step in steps), steps
    assert not any(step == "SCAN runs" for step in steps), steps
