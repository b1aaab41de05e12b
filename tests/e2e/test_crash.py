"""SIGKILL at any moment leaves a consistent database, never a false success, and an exact re-run.

Also: readers (plain sqlite3, `pipeline status`) during heavy writes never see "database is locked", and the
writer never fails because of them.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.bench import simulator_process
from pipeline.simulator import SIM_DATA_GO_KEY, SIM_TMDB_API_KEY

PIPELINE = [sys.executable, "-m", "pipeline"]
CLOCK = "2026-11-28T09:30:00+09:00"


@pytest.fixture
def slow_simulator() -> Iterator[str]:
    with simulator_process(40, CLOCK) as base:
        yield base


def setup(tmp_path: Path, base: str, data_term: str = "DAILY") -> dict[str, str]:
    (tmp_path / "config.yaml").write_text(
        f"""
database: {{url: "sqlite+aiosqlite:///{tmp_path / "p.db"}", chunk_size: 200}}
sources:
  tmdb: {{base_url: "{base}/3", max_pages: 3, rate_limit: 40}}
  airkorea: {{base_url: "{base}/B552584", stations: [종로구, 중구, 강남구, 도봉구], data_term: {data_term},
              rate_limit: 50}}
""",
        encoding="utf-8",
    )
    return {**{k: v for k, v in os.environ.items() if k != "PIPELINE_CONFIG"},
            "TMDB_API_KEY": SIM_TMDB_API_KEY, "DATA_GO_API_KEY": SIM_DATA_GO_KEY}  # fmt: skip


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path / "p.db", timeout=30) as conn:
        return conn.execute(sql).fetchall()


COUNTS = (
    "SELECT (SELECT count(*) FROM movies), (SELECT count(*) FROM air_stations), (SELECT count(*) FROM air_readings)"
)


def test_sigkill_at_ten_points_then_an_exact_rerun(slow_simulator: str, tmp_path: Path) -> None:
    env = setup(tmp_path, slow_simulator)
    # the rows a complete run writes, in a separate database
    reference = tmp_path / "reference"
    reference.mkdir()
    ref_env = setup(reference, slow_simulator)
    started = time.monotonic()
    subprocess.run([*PIPELINE, "run", "--once"], cwd=reference, env=ref_env, check=True, capture_output=True,
                   timeout=300)  # fmt: skip
    duration = time.monotonic() - started
    expected = query(reference, COUNTS)[0]
    assert expected[0] > 0 and expected[2] > 0

    kills = 0
    for trial in range(10):
        delay = 0.4 + (duration - 0.4) * trial / 10  # from start-up through extraction to the last writes
        proc = subprocess.Popen([*PIPELINE, "run", "--once"], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(60)
        if not (tmp_path / "p.db").exists():
            continue
        assert query(tmp_path, "PRAGMA integrity_check") == [("ok",)]
        if not query(tmp_path, "SELECT name FROM sqlite_master WHERE name = 'runs'"):
            continue  # killed while migrating: the migration's transaction left an empty, consistent file
        # a killed run is never recorded as a success: every success holds a complete snapshot set
        for (run_id,) in query(tmp_path, "SELECT id FROM runs WHERE status = 'success'"):
            assert query(tmp_path, f"SELECT count(*) FROM movie_snapshots WHERE run_id = {run_id}")[0][0] == expected[0]
        # (a kill in the last moments may land after the run was recorded complete, during shutdown)
        assert query(tmp_path, "SELECT count(*) FROM runs WHERE status = 'success'")[0][0] <= trial + 1
    assert kills >= 8

    final = subprocess.run([*PIPELINE, "run", "--once"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert final.returncode == 0, final.stderr
    assert query(tmp_path, COUNTS)[0] == expected
    last = query(tmp_path, "SELECT max(id) FROM runs")[0][0]
    assert query(tmp_path, f"SELECT status FROM runs WHERE id = {last}") == [("success",)]
    assert query(tmp_path, f"SELECT count(*) FROM movie_snapshots WHERE run_id = {last}")[0][0] == expected[0]
    # every killed run was found and marked abandoned; none is left running
    assert query(tmp_path, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
    abandoned = query(tmp_path, "SELECT count(*) FROM runs WHERE error LIKE 'abandoned%'")[0][0]
    assert 1 <= abandoned <= kills  # a kill during start-up leaves no run behind


def test_readers_never_see_locked_and_never_block_the_writer(slow_simulator: str, tmp_path: Path) -> None:
    env = setup(tmp_path, slow_simulator, data_term="MONTH")
    subprocess.run([*PIPELINE, "migrate"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    errors: list[str] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        conn = sqlite3.connect(tmp_path / "p.db", timeout=5)
        try:
            while not stop.is_set():
                try:
                    conn.execute("SELECT count(*), max(measured_at) FROM air_readings").fetchall()
                    conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 5").fetchall()
                    reads += 1
                except sqlite3.OperationalError as exc:
                    errors.append(str(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        writer = subprocess.Popen([*PIPELINE, "run", "--once"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        statuses = []
        while writer.poll() is None:
            status = subprocess.run([*PIPELINE, "status"], cwd=tmp_path, env=env, capture_output=True, text=True,
                                    timeout=60)  # fmt: skip
            statuses.append(status)
        out, err = writer.communicate()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert writer.returncode == 0, err
    assert errors == [] and reads > 10
    assert [s.stderr for s in statuses if "locked" in s.stderr] == []
    assert query(tmp_path, "SELECT count(*) FROM air_readings")[0][0] > 4 * 700


DATA_TABLES = ("rejects", "movie_snapshots", "movies", "air_coverage", "air_readings", "air_published_hours",
               "air_stations")  # fmt: skip
TABLES = "SELECT (SELECT count(*) FROM movie_snapshots), (SELECT count(*) FROM air_readings), " \
         "(SELECT sum(received) FROM air_coverage), (SELECT count(*) FROM movies)"  # fmt: skip


def empty_data_tables(path: Path) -> None:
    with sqlite3.connect(path / "p.db", timeout=30) as conn:
        for table in DATA_TABLES:
            conn.execute(f"DELETE FROM {table}")


def test_sigkill_during_replay_then_a_rerun_finishes_the_job(slow_simulator: str, tmp_path: Path) -> None:
    env = setup(tmp_path, slow_simulator, data_term="MONTH")
    subprocess.run([*PIPELINE, "run", "--once"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    expected = query(tmp_path, TABLES)[0]
    assert expected[1] > 4 * 700
    empty_data_tables(tmp_path)
    replayer = subprocess.Popen([*PIPELINE, "replay"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while replayer.poll() is None and time.monotonic() < deadline:  # killed once it has written part of it
        if query(tmp_path, "SELECT count(*) FROM air_readings")[0][0] > 0:
            break
        time.sleep(0.01)
    killed = replayer.poll() is None
    replayer.send_signal(signal.SIGKILL)
    replayer.wait(60)
    assert query(tmp_path, "PRAGMA integrity_check") == [("ok",)]
    assert killed and query(tmp_path, TABLES)[0] != expected  # really half-way
    rerun = subprocess.run([*PIPELINE, "replay"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert query(tmp_path, TABLES)[0] == expected
    statuses = query(tmp_path, "SELECT status, error FROM runs WHERE trigger = 'replay' ORDER BY id")
    assert statuses[-1] == ("success", None)
    assert all(status != "running" for status, _error in statuses)  # the killed one was marked abandoned
