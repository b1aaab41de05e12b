"""The same simulated cycle into SQLite and into PostgreSQL, the simulator clock fixed: every view answers the
same questions with the same answers (types normalised: datetime vs text, Decimal vs float)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pipeline.config import parse_settings
from pipeline.load.db import create_engine
from pipeline.offline import simulated
from pipeline.runner import run_once
from pipeline.simulator import SimulatorState
from tests.backends import plain_rows
from tests.e2e.test_cycle import FIXED

#: (question, SQL, whether the row order is part of the answer). Rows of unordered answers are compared as
#: sorted lists: text collation (Korean station names) differs between SQLite and a PostgreSQL locale.
QUESTIONS: list[tuple[str, str, bool]] = [
    ("air_latest totals",
     "SELECT count(*), count(DISTINCT sido_name), sum(pm10), sum(pm25), sum(khai), min(measured_at), "
     "max(measured_at_kst), count(pm10_flag), sum(o3) FROM air_latest", True),
    ("air_latest by province",
     "SELECT sido_name, count(*), sum(pm25), max(pm10), min(o3) FROM air_latest GROUP BY sido_name", False),
    ("air_latest rows",
     "SELECT sido_name, mang_name, station_name, measured_at, measured_at_kst, so2, co, o3, no2, pm10, pm25, "
     "pm10_24h, pm25_24h, khai, pm10_grade, pm25_grade_1h, khai_grade, pm10_flag, pm25_flag, run_id FROM air_latest",
     False),
    ("air_daily totals",
     "SELECT count(*), sum(hours), sum(pm10_hours), sum(pm25_hours), max(pm25_max), sum(o3_hours) FROM air_daily",
     True),
    ("air_daily rows",
     "SELECT station_name, kst_date, hours, pm10_mean, pm10_max, pm10_hours, pm25_mean, o3_mean, no2_mean, co_mean, "
     "so2_mean, khai_mean, khai_max FROM air_daily", False),
    ("air_daily watch-list, ordered",
     "SELECT station_name, kst_date, hours, pm10_mean, pm25_mean, o3_mean FROM air_daily "
     "WHERE station_name = '종로구' ORDER BY kst_date", True),
    ("air_readings_kst per KST day",
     "SELECT kst_date, count(*), sum(pm10), count(DISTINCT station_name) FROM air_readings_kst "
     "GROUP BY kst_date ORDER BY kst_date", True),
    ("air_readings_kst one station, ordered",
     "SELECT measured_at, measured_at_kst, kst_date, pm10, pm25, pm10_flag FROM air_readings_kst "
     "WHERE station_name = '종로구' ORDER BY measured_at DESC", True),
    ("air_completeness rows",
     "SELECT station_name, sido_name, kst_date, expected, received, flagged, not_published, missing, completeness, "
     "missing_mask FROM air_completeness", False),
    ("air_completeness totals",
     "SELECT count(*), sum(expected), sum(received), sum(flagged), sum(missing) FROM air_completeness", True),
    ("movie_trend totals",
     "SELECT count(*), count(DISTINCT tmdb_id), count(DISTINCT captured_at), sum(vote_count), min(position), "
     "max(position), sum(revenue) FROM movie_trend", True),
    ("movie_trend top of the list",
     "SELECT position, tmdb_id, title, list_name, popularity, vote_average, vote_count, revenue FROM movie_trend "
     "ORDER BY position LIMIT 25", True),
    ("movie_trend rows",
     "SELECT tmdb_id, title, run_id, list_name, position, popularity, vote_average, vote_count, revenue "
     "FROM movie_trend", False),
    ("now_playing_history",
     "SELECT tmdb_id, title, release_date, snapshots FROM now_playing_history ORDER BY tmdb_id", True),
    ("now_playing_history totals",
     "SELECT count(*), sum(snapshots), min(release_date), max(release_date) FROM now_playing_history", True),
]  # fmt: skip


async def answers(url: str, tmp_path: Path) -> dict[str, Any]:
    settings = parse_settings({"database": {"url": url},
                               "sources": {"tmdb": {"rate_limit": 40},
                                           "airkorea": {"rate_limit": 50, "stations": ["종로구", "중구"]}}})  # fmt: skip
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, _sim):
        report, _counts = await run_once(local, secrets)
    assert report.status == "success"
    engine = create_engine(url)
    try:
        found: dict[str, Any] = {}
        async with engine.connect() as conn:
            for name, sql, ordered in QUESTIONS:
                rows = plain_rows([tuple(r) for r in (await conn.execute(text(sql))).all()])
                found[name] = rows if ordered else sorted(rows, key=repr)
        return found
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
async def test_both_backends_answer_the_same(tmp_path: Path, postgres_url: str) -> None:
    sqlite = await answers(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", tmp_path)
    postgres = await answers(postgres_url, tmp_path)
    # the answers are real: a full cycle's worth of data
    (count, provinces, *_rest), = sqlite["air_latest totals"]  # fmt: skip
    assert 640 <= count <= 675 and provinces == 17
    assert len(sqlite["air_readings_kst one station, ordered"]) == 24
    (stations, expected, received, flagged, missing), = sqlite["air_completeness totals"]  # fmt: skip
    assert expected == received + flagged > stations and missing == 0  # the watch-list's series are held too
    assert 80 <= len(sqlite["now_playing_history"]) <= 150 and sqlite["movie_trend totals"][0][2] == 1
    for name, _sql, _ordered in QUESTIONS:
        assert postgres[name] == sqlite[name], name
