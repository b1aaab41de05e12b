"""`pipeline sql`: read-only whatever is asked, one-line errors, three output formats."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.load.db import upgrade_sync


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "p.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO air_stations VALUES ('종로구', '서울', '111123', '도시대기', '2026-11-27 00:00:00', "
                     "'2026-11-27 00:00:00')")  # fmt: skip
        conn.execute("INSERT INTO air_readings (station_name, measured_at, pm10, pm25, pm10_flag, updated_at) VALUES "
                     "('종로구', '2026-11-27 15:00:00', 41, NULL, '통신장애', '2026-11-27 15:20:00')")  # fmt: skip
    (tmp_path / "config.yaml").write_text(f'database: {{url: "sqlite+aiosqlite:///{path}"}}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINE_CONFIG", raising=False)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


WRITES = [
    "INSERT INTO runs (job, trigger, started_at, status, requests, rows_fetched, rows_upserted, rows_rejected) "
    "VALUES ('x', 'manual', '2026-01-01 00:00:00', 'success', 0, 0, 0, 0)",
    "UPDATE air_readings SET pm10 = 0",
    "DELETE FROM air_readings",
    "REPLACE INTO air_stations (station_name, first_seen_at, updated_at) VALUES ('a', 'x', 'x')",
    "DROP TABLE air_readings",
    "DROP VIEW air_latest",
    "CREATE TABLE evil (x)",
    "CREATE INDEX ix_evil ON air_readings (pm25)",
    "ALTER TABLE runs ADD COLUMN evil TEXT",
    "ATTACH DATABASE 'other.db' AS other",
    "DETACH DATABASE main",
    "PRAGMA user_version = 42",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA foreign_keys = OFF",
    "VACUUM",
    "VACUUM INTO 'copy.db'",
    "REINDEX",
    "ANALYZE",
    "BEGIN IMMEDIATE",
    "WITH x AS (SELECT 1) DELETE FROM air_readings",
    "WITH x AS (SELECT 1) INSERT INTO air_stations (station_name, first_seen_at, updated_at) SELECT 'z', 'x', 'x' FROM x",
    "/* sneaky */ DELETE FROM air_readings",
    "  -- comment\n  update air_readings set pm25 = 1",
    "SELECT 1; DELETE FROM air_readings",
]


@pytest.mark.parametrize("statement", WRITES)
def test_every_write_form_is_refused_and_the_file_is_unchanged(db: Path, statement: str,
                                                               capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    before = digest(db)
    assert main(["sql", statement]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert digest(db) == before
    assert not (db.parent / "other.db").exists() and not (db.parent / "copy.db").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), max(pm10) FROM air_readings").fetchone() == (1, 41)


def test_syntax_error_is_one_line_exit_2(db: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "SELEC pm10 FROM air_readings"]) == 2
    assert capfd.readouterr().err == 'error: SQL error: near "SELEC": syntax error\n'
    assert main(["sql", "SELECT nope FROM air_readings"]) == 2
    assert "no such column: nope" in capfd.readouterr().err


def test_aligned_table_with_korean_and_nulls(db: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "SELECT station_name, sido_name, pm10, pm25, pm10_flag FROM air_latest"]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "station_name  sido_name  pm10  pm25  pm10_flag",
        "------------  ---------  ----  ----  ---------",
        "종로구        서울         41  NULL  통신장애",
        "(1 row)",
    ]


def test_csv_json_and_stdin(db: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["sql", "--csv", "SELECT station_name, measured_at_kst, kst_date FROM air_readings_kst"]) == 0
    assert capfd.readouterr().out == "station_name,measured_at_kst,kst_date\n종로구,2026-11-28 00:00:00,2026-11-27\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT pm10, pm25 FROM air_readings;\n"))
    assert main(["sql", "--json"]) == 0
    assert json.loads(capfd.readouterr().out) == [{"pm10": 41, "pm25": None}]


def test_tables_lists_tables_and_views_with_counts(db: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--tables", "--json"]) == 0
    listing = {row["name"]: (row["type"], row["rows"]) for row in json.loads(capfd.readouterr().out)}
    assert listing["air_readings"] == ("table", 1) and listing["air_latest"] == ("view", 1)
    assert {"runs", "movies", "movie_snapshots", "rejects", "air_daily", "now_playing_history"} <= set(listing)


def test_read_pragmas_still_work(db: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--json", "PRAGMA table_info(air_stations)"]) == 0
    assert [c["name"] for c in json.loads(capfd.readouterr().out)][:2] == ["station_name", "sido_name"]


def test_missing_database(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(f'database: {{url: "sqlite+aiosqlite:///{tmp_path / "none.db"}"}}\n')
    assert main(["sql", "SELECT 1"]) == 2
    assert "does not exist yet" in capfd.readouterr().err
    assert not (tmp_path / "none.db").exists()
