"""`pipeline sql`: read-only whatever is asked, one-line errors, three output formats."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.load.db import upgrade_sync
from tests.backends import fetch

ROWS = [
    "INSERT INTO air_stations (station_name, sido_name, station_code, mang_name, first_seen_at, updated_at) "
    "VALUES ('종로구', '서울', '111123', '도시대기', '2026-11-27 00:00:00{tz}', '2026-11-27 00:00:00{tz}')",
    "INSERT INTO air_readings (station_name, measured_at, pm10, pm25, pm10_flag, updated_at) VALUES "
    "('종로구', '2026-11-27 15:00:00{tz}', 41, NULL, '통신장애', '2026-11-27 15:20:00{tz}')",
]  # UTC: SQLite's text as the pipeline writes it; PostgreSQL's timestamptz with an explicit offset


class Db:
    """The test database of one backend, with a fingerprint of everything a write could change."""

    def __init__(self, url: str, path: Path | None) -> None:
        self.url, self.path = url, path

    def fingerprint(self) -> object:
        if self.path is not None:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()  # the file is byte-identical
        relations = fetch(self.url, "SELECT c.relname, c.relkind, c.relacl::text, d.description FROM pg_class c "
                                    "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_description d "
                                    "ON d.objoid = c.oid AND d.objsubid = 0 WHERE n.nspname NOT IN "
                                    "('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1")  # fmt: skip
        data = {name: fetch(self.url, f'SELECT md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) FROM "{name}" t')
                for name, kind, *_ in relations if kind == "r"}  # fmt: skip
        sequences = fetch(self.url, "SELECT last_value, is_called FROM runs_id_seq")
        settings = fetch(self.url, "SELECT count(*) FROM pg_db_role_setting")
        large_objects = fetch(self.url, "SELECT count(*) FROM pg_largeobject_metadata")
        return relations, data, sequences, settings, large_objects

    def readings(self) -> list[tuple[object, ...]]:
        return fetch(self.url, "SELECT count(*), max(pm10) FROM air_readings")


@pytest.fixture
def db(db_url: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Db:
    upgrade_sync(db_url)
    for sql in ROWS:
        fetch(db_url, sql.format(tz="" if backend == "sqlite" else "+00"))
    (tmp_path / "config.yaml").write_text(f'database: {{url: "{db_url}"}}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINE_CONFIG", raising=False)
    return Db(db_url, tmp_path / "test.db" if backend == "sqlite" else None)


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


#: PostgreSQL's own write forms, and ways around a keyword check that only the read-only transaction stops
POSTGRES_WRITES = [
    "INSERT INTO runs (job, trigger, started_at, status, requests, rows_fetched, rows_upserted, rows_rejected) "
    "VALUES ('x', 'manual', now(), 'success', 0, 0, 0, 0)",
    "UPDATE air_readings SET pm10 = 0",
    "DELETE FROM air_readings",
    "TRUNCATE air_readings CASCADE",
    "DROP TABLE air_readings CASCADE",
    "DROP VIEW air_latest",
    "CREATE TABLE evil (x int)",
    "CREATE TEMP TABLE evil AS SELECT 1",
    "CREATE INDEX ix_evil ON air_readings (pm25)",
    "ALTER TABLE runs ADD COLUMN evil text",
    "COMMENT ON TABLE runs IS 'evil'",
    "GRANT ALL ON runs TO PUBLIC",
    "COPY air_stations FROM '/etc/hostname'",
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "SET TRANSACTION READ WRITE",
    "SET default_transaction_read_only = off",
    "RESET ALL",
    "LOCK TABLE runs",
    "DO $$ BEGIN DELETE FROM air_readings; END $$",
    "MERGE INTO air_readings r USING air_stations s ON r.station_name = s.station_name WHEN MATCHED THEN DELETE",
    "PREPARE evil AS DELETE FROM air_readings",
    "BEGIN",
    "COMMIT",
    "START TRANSACTION READ WRITE",
    "VACUUM",
    "ANALYZE",
    "REINDEX TABLE runs",
    "CHECKPOINT",
    "ALTER DATABASE postgres SET work_mem = '1MB'",
    "REFRESH MATERIALIZED VIEW air_latest",
    # not stopped by a keyword: the read-only transaction (or the transaction-id check) refuses them
    "WITH x AS (DELETE FROM air_readings RETURNING 1) SELECT count(*) FROM x",
    "WITH x AS (SELECT 1) INSERT INTO air_stations (station_name, first_seen_at, updated_at) SELECT 'z', now(), now() FROM x",
    "SELECT * INTO evil FROM runs",
    "EXPLAIN ANALYZE DELETE FROM air_readings",
    "SELECT nextval('runs_id_seq')",
    "SELECT setval('runs_id_seq', 100)",
    "SELECT set_config('transaction_read_only', 'off', false)",
    "SELECT lo_import('/etc/hostname')",
    "SELECT txid_current()",
    "/* sneaky */ DELETE FROM air_readings",
    "  -- comment\n  update air_readings set pm25 = 1",
    "SELECT 1; DELETE FROM air_readings",
    "(DELETE FROM air_readings)",
]


def write_forms() -> list[object]:
    return [pytest.param("sqlite", s, id=f"sqlite-{i}") for i, s in enumerate(WRITES)] + [
        pytest.param("postgresql", s, id=f"postgresql-{i}", marks=pytest.mark.postgres)
        for i, s in enumerate(POSTGRES_WRITES)
    ]


@pytest.mark.parametrize(("backend", "statement"), write_forms(), indirect=["backend"])
def test_every_write_form_is_refused_and_the_data_is_unchanged(db: Db, backend: str, statement: str,
                                                               capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    before = db.fingerprint()
    assert main(["sql", statement]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    if backend == "postgresql":  # refused as a write, not merely failing for some other reason
        assert "read-only" in err or "one statement at a time" in err, err
    assert db.fingerprint() == before
    assert not Path("other.db").exists() and not Path("copy.db").exists()
    assert db.readings() == [(1, 41)]
    assert main(["sql", "SELECT count(*) AS n FROM air_readings"]) == 0  # and reading still works
    assert capfd.readouterr().out.splitlines()[2].strip() == "1"


def test_syntax_error_is_one_line_exit_2(db: Db, backend: str, capfd: pytest.CaptureFixture[str]) -> None:
    expected = {
        "sqlite": 'error: SQL error: near "SELEC": syntax error\n',
        "postgresql": 'error: SQL error: syntax error at or near "SELEC"\n',
    }
    assert main(["sql", "SELEC pm10 FROM air_readings"]) == 2
    assert capfd.readouterr().err == expected[backend]
    assert main(["sql", "SELECT nope FROM air_readings"]) == 2
    err = capfd.readouterr().err
    assert ("no such column: nope" in err or 'column "nope" does not exist' in err) and err.count("\n") == 1


def test_aligned_table_with_korean_and_nulls(db: Db, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "SELECT station_name, sido_name, pm10, pm25, pm10_flag FROM air_latest"]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "station_name  sido_name  pm10  pm25  pm10_flag",
        "------------  ---------  ----  ----  ---------",
        "종로구        서울         41  NULL  통신장애",
        "(1 row)",
    ]


def test_csv_json_and_stdin(db: Db, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["sql", "--csv", "SELECT station_name, measured_at_kst, kst_date FROM air_readings_kst"]) == 0
    assert capfd.readouterr().out == "station_name,measured_at_kst,kst_date\n종로구,2026-11-28 00:00:00,2026-11-27\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT pm10, pm25 FROM air_readings;\n"))
    assert main(["sql", "--json"]) == 0
    assert json.loads(capfd.readouterr().out) == [{"pm10": 41, "pm25": None}]


@pytest.mark.backends("postgresql")
def test_postgres_values_colons_and_percent_signs(db: Db, capfd: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT measured_at, '100%' AS p, ':x' AS q, avg(pm10) AS mean FROM air_readings GROUP BY 1"
    assert main(["sql", "--json", sql]) == 0
    assert json.loads(capfd.readouterr().out) == [
        {"measured_at": "2026-11-27 15:00:00+00:00", "p": "100%", "q": ":x", "mean": 41.0}
    ]


def test_tables_lists_tables_and_views_with_counts(db: Db, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--tables", "--json"]) == 0
    rows = json.loads(capfd.readouterr().out)
    listing = {row["name"]: (row["type"], row["rows"]) for row in rows}
    assert listing["air_readings"] == ("table", 1) and listing["air_latest"] == ("view", 1)
    assert {"runs", "movies", "movie_snapshots", "rejects", "air_daily", "now_playing_history"} <= set(listing)
    assert [(r["type"], r["name"]) for r in rows] == sorted((r["type"], r["name"]) for r in rows)


@pytest.mark.backends("sqlite")
def test_read_pragmas_still_work(db: Db, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--json", "PRAGMA table_info(air_stations)"]) == 0
    assert [c["name"] for c in json.loads(capfd.readouterr().out)][:2] == ["station_name", "sido_name"]


def test_missing_database(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(f'database: {{url: "sqlite+aiosqlite:///{tmp_path / "none.db"}"}}\n')
    assert main(["sql", "SELECT 1"]) == 2
    assert "does not exist yet" in capfd.readouterr().err
    assert not (tmp_path / "none.db").exists()


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize(("where", "message"), [
    ("127.0.0.1:1/x", "cannot connect to postgresql+asyncpg://postgres:***@127.0.0.1:1/x"),
    ("{server}/no_such_database_here", 'database "no_such_database_here" does not exist'),
])  # fmt: skip
def test_postgres_unreachable_is_one_line_exit_2(backend: str, postgres_server: object, where: str, message: str,
                                                 tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    server = str(postgres_server.url).split("@", 1)[1].rsplit("/", 1)[0]  # type: ignore[attr-defined]
    url = f"postgresql+asyncpg://postgres:hunter2pw@{where.format(server=server)}"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(f'database: {{url: "{url}"}}\n', encoding="utf-8")
    for args in (["sql", "SELECT 1"], ["sql", "--tables"], ["status"]):
        assert main(args) == 2
        err = capfd.readouterr().err
        assert err.startswith("error: database.url: ") and err.count("\n") == 1, err
        assert message.split("postgres:***@")[-1] in err and "hunter2pw" not in err
