"""The views on a small known dataset: KST day boundaries, valid hours, newest reading, movie history."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from pipeline.load.runs import start_run
from pipeline.load.upsert import insert_snapshots, upsert_air_readings, upsert_air_stations, upsert_movies
from pipeline.load.writer import Writer
from pipeline.transform.airkorea import AirReading, AirStation
from pipeline.transform.common import kst_label_to_utc
from pipeline.transform.tmdb import Movie, MovieSnapshot
from tests.backends import plain

NULLS = {f.name: None for f in dataclasses.fields(AirReading)}


def reading(station: str, label: str, **values: object) -> AirReading:
    return AirReading(**{**NULLS, "station_name": station, "measured_at": kst_label_to_utc(label), **values})  # type: ignore[arg-type]


async def rows(writer: Writer, sql: str) -> list[dict[str, object]]:
    """Rows as dicts, raw: each backend's own types (text or datetime, text or date)."""
    async with writer.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(text(sql))).mappings()]


async def load_air(writer: Writer) -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    run_id = await start_run(writer, "test", "manual")
    await upsert_air_stations(writer, [AirStation("종로구", "서울", "111123", "도시대기"),
                                      AirStation("세종읍", "세종", None, "도시대기")], now)  # fmt: skip
    day = [reading("종로구", f"2026-11-27 {h:02d}:00", pm10=h, pm25=None if h % 4 == 0 else 10) for h in range(1, 25)]
    edges = [
        reading("종로구", "2026-11-26 24:00", pm10=100),  # 2026-11-27 00:00 KST: still the 26th's value
        reading("종로구", "2026-11-28 01:00", pm10=200),  # the 28th's first hour
    ]
    short = [reading("세종읍", f"2026-11-27 {h:02d}:00", pm10=30 + h, o3=0.02) for h in (9, 10, 11)]
    await upsert_air_readings(writer, day + edges + short, run_id, now)


async def test_air_readings_kst_and_the_24_00_boundary(writer: Writer) -> None:
    await load_air(writer)
    result = await rows(writer, "SELECT measured_at, measured_at_kst, kst_date FROM air_readings_kst "
                                "WHERE station_name = '종로구' AND pm10 IN (1, 24, 100, 200) ORDER BY measured_at")  # fmt: skip
    assert [(plain(r["measured_at"]), plain(r["measured_at_kst"]), plain(r["kst_date"])) for r in result] == [
        ("2026-11-26 15:00:00", "2026-11-27 00:00:00", "2026-11-26"),  # labelled 2026-11-26 24:00
        ("2026-11-26 16:00:00", "2026-11-27 01:00:00", "2026-11-27"),
        ("2026-11-27 15:00:00", "2026-11-28 00:00:00", "2026-11-27"),  # labelled 2026-11-27 24:00
        ("2026-11-27 16:00:00", "2026-11-28 01:00:00", "2026-11-28"),
    ]


async def test_air_daily_means_and_valid_hours(writer: Writer) -> None:
    await load_air(writer)
    result = {(r["station_name"], plain(r["kst_date"])): r for r in await rows(writer, "SELECT * FROM air_daily")}
    full = result[("종로구", "2026-11-27")]
    assert full["hours"] == 24 and full["pm10_hours"] == 24
    assert full["pm10_mean"] == sum(range(1, 25)) / 24 and full["pm10_max"] == 24
    assert full["pm25_hours"] == 18 and full["pm25_mean"] == 10  # 6 hours without PM2.5 are not zeros
    assert full["o3_hours"] == 0 and full["o3_mean"] is None
    short = result[("세종읍", "2026-11-27")]
    assert (short["hours"], short["pm10_hours"], short["pm10_mean"], short["o3_hours"]) == (3, 3, 40, 3)
    assert result[("종로구", "2026-11-26")]["hours"] == 1 and result[("종로구", "2026-11-28")]["pm10_max"] == 200


async def test_air_latest_is_the_newest_reading_per_station(writer: Writer) -> None:
    await load_air(writer)
    result = await rows(writer, "SELECT station_name, sido_name, measured_at_kst, pm10 FROM air_latest ORDER BY 1")
    assert [(r["station_name"], r["sido_name"], plain(r["measured_at_kst"]), r["pm10"]) for r in result] == [
        ("세종읍", "세종", "2026-11-27 11:00:00", 41),
        ("종로구", "서울", "2026-11-28 01:00:00", 200),
    ]


def movie(tmdb_id: int, title: str) -> Movie:
    base = {f.name: None for f in dataclasses.fields(Movie)}
    return Movie(**{**base, "tmdb_id": tmdb_id, "title": title})  # type: ignore[arg-type]


async def test_movie_trend_and_now_playing_history(writer: Writer) -> None:
    t0 = datetime(2026, 11, 20, 1, tzinfo=UTC)
    for day, popularity in enumerate((10.0, 12.5, 9.0)):
        run_id = await start_run(writer, "tmdb", "schedule", t0 + timedelta(days=day))
        await upsert_movies(writer, [movie(1, "하나"), movie(2, "둘")], run_id, t0 + timedelta(days=day))
        snaps = [MovieSnapshot(1, "now_playing", 1, 1, popularity, 7.0 + day, 100 + day, None, date(2026, 11, 1))]
        if day < 2:
            snaps.append(MovieSnapshot(2, "now_playing", 2, 1, 5.0, 6.0, 10, None, None))
        await insert_snapshots(writer, snaps, run_id, t0 + timedelta(days=day))
    trend = await rows(writer, "SELECT title, popularity, vote_average, vote_count FROM movie_trend "
                               "WHERE tmdb_id = 1 ORDER BY captured_at")  # fmt: skip
    assert [tuple(r.values()) for r in trend] == [("하나", 10.0, 7.0, 100), ("하나", 12.5, 8.0, 101),
                                                  ("하나", 9.0, 9.0, 102)]  # fmt: skip
    history = {r["tmdb_id"]: r for r in await rows(writer, "SELECT * FROM now_playing_history")}
    assert history[1]["snapshots"] == 3 and history[2]["snapshots"] == 2
    assert plain(history[1]["first_seen_at"]) == "2026-11-20 01:00:00"
    assert plain(history[1]["last_seen_at"]) == "2026-11-22 01:00:00"
    assert plain(history[2]["last_seen_at"]) == "2026-11-21 01:00:00"
