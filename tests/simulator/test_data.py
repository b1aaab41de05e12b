from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from pipeline.simulator import airkorea_data, tmdb_data, vocab, world

KST = world.KST


# ------------------------------------------------------------------------------------------------ stations


def test_station_counts_and_unique_names() -> None:
    stations = airkorea_data.stations()
    assert 640 <= len(stations) <= 675
    assert len({s.name for s in stations}) == len(stations)
    assert len({s.code for s in stations}) == len(stations)
    per_sido = Counter(s.sido for s in stations)
    assert set(per_sido) == set(vocab.SIDOS)
    assert per_sido["서울"] == 40
    assert per_sido["경기"] > per_sido["부산"] > per_sido["세종"] > 0


def test_seoul_stations_are_the_observed_ones() -> None:
    seoul = airkorea_data.stations_by_sido()["서울"]
    by_name = {s.name: s for s in seoul}
    assert by_name["종로구"].code == "111123"
    assert by_name["중구"].code == "111121"
    assert by_name["정릉로"].code == "111162"
    assert all(s.code.startswith("111") and len(s.code) == 6 for s in seoul)
    roadside = {s.name for s in seoul if s.mang == "도로변대기"}
    assert len(roadside) == 15
    assert {"한강대로", "청계천로", "동작대로 중앙차로", "강남대로"} <= roadside
    assert sum(name.endswith("구") for name in by_name) == 25


def test_duplicate_names_are_disambiguated_by_sido() -> None:
    names = airkorea_data.stations_by_name()
    assert "중앙동(경기)" in names
    assert "중앙동(강원)" in names
    assert "중앙동" not in names
    assert names["부곡동(울산)"].sido == "울산"
    assert {s.mang for s in airkorea_data.stations()} == {"도시대기", "도로변대기", "국가배경농도", "교외대기", "항만"}
    assert all(re.fullmatch(r"\d{6}", s.code) for s in airkorea_data.stations())


def test_national_list_covers_every_sido_in_order() -> None:
    everything = airkorea_data.stations_by_sido()[airkorea_data.ALL_SIDOS]
    assert everything == airkorea_data.stations()
    assert next(s.sido for s in everything) == "서울"


# ------------------------------------------------------------------------------------------------ hours


def test_newest_hour_waits_for_the_15_minute_publication() -> None:
    at_14_10 = datetime(2025, 1, 20, 14, 10, tzinfo=KST)
    at_14_20 = datetime(2025, 1, 20, 14, 20, tzinfo=KST)
    assert airkorea_data.data_time(airkorea_data.newest_hour(at_14_10)) == "2025-01-20 13:00"
    assert airkorea_data.data_time(airkorea_data.newest_hour(at_14_20)) == "2025-01-20 14:00"
    assert airkorea_data.newest_hour(at_14_20.astimezone(UTC)) == airkorea_data.newest_hour(at_14_20)


def test_midnight_is_labelled_24_00_of_the_previous_day() -> None:
    midnight = airkorea_data.hour_index(datetime(2025, 3, 1, 0, 0, tzinfo=KST))
    assert airkorea_data.data_time(midnight) == "2025-02-28 24:00"
    assert airkorea_data.data_time(midnight + 1) == "2025-03-01 01:00"
    labels = [airkorea_data.data_time(midnight - i) for i in range(24 * 40)]
    assert not any(label.endswith(" 00:00") for label in labels)
    assert sum(label.endswith(" 24:00") for label in labels) == 40


# ------------------------------------------------------------------------------------------------ readings


def _sample(ver: int) -> list[dict[str, str | None]]:
    newest = airkorea_data.newest_hour(datetime(2025, 1, 20, 12, 30, tzinfo=KST))
    return [
        airkorea_data.station_item(station, newest - hour, ver, ctprvn=True)
        for station in airkorea_data.stations()[::3]
        for hour in range(0, 24 * 60, 11)
    ]


def test_readings_are_deterministic() -> None:
    station = airkorea_data.stations()[100]
    assert airkorea_data.reading(station, 230_000, 5) == airkorea_data.reading(station, 230_000, 5)
    assert airkorea_data.reading(station, 230_000, 5) != airkorea_data.reading(station, 230_001, 5)


def test_missing_value_mix_is_realistic() -> None:
    items = _sample(5)
    n = len(items)
    outage = [i for i in items if i["so2Flag"] == "통신장애" and i["pm10Flag"] == "통신장애"]
    assert 0.08 <= len(outage) / n <= 0.11
    for item in outage:
        assert {item[f"{p}Value"] for p in ("so2", "co", "o3", "no2", "pm10", "pm25")} <= {"-", ""}
        assert item["khaiGrade"] is None and item["so2Grade"] is None and item["o3Grade"] is None
    assert any(i["pm10Grade"] == "1" for i in outage)  # the 24-hour grade can survive an outage
    gases_only = [i for i in items if i["so2Flag"] == "통신장애" and i["pm10Flag"] is None]
    assert gases_only and all(i["pm10Value"] not in ("-", "") for i in gases_only)
    pm10_only = [i for i in items if i["pm10Flag"] == "통신장애" and i["pm25Flag"] is None]
    assert pm10_only and all(i["pm25Value"] not in ("-", "") for i in pm10_only)
    no_khai = [i for i in items if i["khaiValue"] in ("-", "") and all(i[f"{p}Flag"] is None for p in ("so2", "pm10"))]
    assert no_khai and all(i["khaiGrade"] is None for i in no_khai)
    other_flags = Counter(v for i in items for k, v in i.items() if k.endswith("Flag") and v not in (None, "통신장애"))
    assert set(other_flags) == {"점검및교정", "장비점검", "자료이상"}
    blank = sum("" in i.values() for i in items) / n
    assert 0.003 <= blank <= 0.03
    assert any(i["pm10Grade1h"] == "-" for i in items)


def test_values_are_in_realistic_ranges_with_consistent_grades() -> None:
    items = [i for i in _sample(5) if i["pm10Flag"] is None and i["so2Flag"] is None and i["pm25Flag"] is None]
    pm10 = sorted(int(str(i["pm10Value"])) for i in items)
    pm25 = sorted(int(str(i["pm25Value"])) for i in items)
    o3 = sorted(float(str(i["o3Value"])) for i in items)
    assert 15 <= pm10[len(pm10) // 2] <= 60
    assert 5 <= pm25[len(pm25) // 2] <= 30
    assert 0.005 <= o3[len(o3) // 2] <= 0.06
    assert o3[-1] < 0.2
    cut = {"1": 30, "2": 80, "3": 150}
    for item in items:
        if item["pm10Grade1h"] in cut:
            assert int(str(item["pm10Value"])) <= cut[str(item["pm10Grade1h"])]
        assert item["so2Grade"] in {"1", "2", "3", "4"}
    khai = [int(str(i["khaiValue"])) for i in items if i["khaiValue"] not in ("-", "")]
    assert 30 <= sorted(khai)[len(khai) // 2] <= 110


def test_decimals_depend_on_ver() -> None:
    station = airkorea_data.stations_by_name()["종로구"]
    index = airkorea_data.hour_index(datetime(2025, 1, 20, 12, 0, tzinfo=KST))
    rows = [airkorea_data.station_item(station, index - h, 5, ctprvn=False) for h in range(48)]
    old = [airkorea_data.station_item(station, index - h, 3, ctprvn=False) for h in range(48)]
    fresh = [(r, o) for r, o in zip(rows, old, strict=True) if r["so2Flag"] is None and r["coFlag"] is None]
    assert fresh
    for new_row, old_row in fresh:
        assert re.fullmatch(r"0\.\d{4}", str(new_row["so2Value"]))
        assert re.fullmatch(r"\d\.\d{2}", str(new_row["coValue"]))
        assert re.fullmatch(r"0\.\d{3}", str(old_row["so2Value"]))
        assert re.fullmatch(r"\d\.\d", str(old_row["coValue"]))


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, -1), ("", -1), ("1.0", 0), ("1.3", 3), ("1.5", 5), ("2", 5), ("x", -1)]
)
def test_parse_ver(raw: str | None, expected: int) -> None:
    assert airkorea_data.parse_ver(raw) == expected


def test_field_sets_follow_ver() -> None:
    assert not any(k.startswith("pm25") for k in airkorea_data.KEY_ORDERS[(True, -1)])
    assert "pm25Value" in airkorea_data.KEY_ORDERS[(True, 0)]
    assert (
        "pm10Value24" in airkorea_data.KEY_ORDERS[(True, 1)] and "mangName" not in airkorea_data.KEY_ORDERS[(True, 1)]
    )
    assert (
        "mangName" in airkorea_data.KEY_ORDERS[(False, 2)] and "stationName" not in airkorea_data.KEY_ORDERS[(False, 3)]
    )
    assert {"stationName", "stationCode"} <= set(airkorea_data.KEY_ORDERS[(False, 4)])
    assert all("sidoName" not in airkorea_data.KEY_ORDERS[(False, v)] for v in range(-1, 6))
    assert all({"sidoName", "stationName"} <= set(airkorea_data.KEY_ORDERS[(True, v)]) for v in range(-1, 6))
    assert len(airkorea_data.KEY_ORDERS[(True, 5)]) == 29


def test_ctprvn_order_is_shuffled_per_hour() -> None:
    first = [s.name for s in airkorea_data.ctprvn_order("서울", 230_000)]
    second = [s.name for s in airkorea_data.ctprvn_order("서울", 230_001)]
    assert sorted(first) == sorted(second)
    assert first != second
    assert first != sorted(first)
    assert first == [s.name for s in airkorea_data.ctprvn_order("서울", 230_000)]


# ------------------------------------------------------------------------------------------------ movies


def test_catalogue_is_deterministic_with_stable_ids() -> None:
    catalogue = tmdb_data.catalogue()
    assert len(catalogue.by_id) == len(catalogue.movies)
    assert tmdb_data.movies_of_day(1000) == tmdb_data.movies_of_day(1000)
    first = catalogue.movies[0]
    assert first.id == tmdb_data.ID_BASE
    per_day = Counter((m.id - tmdb_data.ID_BASE) // tmdb_data.ID_STRIDE for m in catalogue.movies if m.kr_release)
    days = (tmdb_data.CATALOGUE_END - tmdb_data.CATALOGUE_START).days + 1
    assert 2.6 <= sum(per_day.values()) / days <= 3.3
    assert max(per_day.values()) <= 5


def test_catalogue_shares_of_sparse_fields() -> None:
    movies = tmdb_data.catalogue().movies
    n = len(movies)

    def share(predicate: object) -> float:
        assert callable(predicate)
        return sum(1 for m in movies if predicate(m)) / n

    assert 0.10 <= share(lambda m: m.title_ko is None) <= 0.20
    assert 0.15 <= share(lambda m: m.overview_ko == "") <= 0.30
    assert 0.05 <= share(lambda m: m.runtime == 0) <= 0.11
    assert 0.25 <= share(lambda m: m.budget == 0) <= 0.35
    assert 0.35 <= share(lambda m: m.revenue == 0) <= 0.45
    assert 0.10 <= share(lambda m: m.imdb_id is None) <= 0.20
    assert 0.01 <= share(lambda m: m.primary_release is None) <= 0.03
    assert 0.01 <= share(lambda m: m.poster_path is None) <= 0.06
    assert share(lambda m: m.vote_count == 0) > 0.05
    assert share(lambda m: isinstance(m.vote_average, int) and m.vote_average > 0) > 0.01
    assert {m.original_language for m in movies} >= {"ko", "en", "ja", "fr", "zh"}
    ko = [m for m in movies if m.original_language == "ko"]
    assert all(m.title_ko == m.original_title for m in ko)
    assert any(m.collection is not None for m in movies)


@pytest.mark.parametrize("day", [date(2020, 3, 2), date(2022, 7, 14), date(2025, 1, 20), date(2027, 6, 30)])
def test_kr_now_playing_window_size(day: date) -> None:
    minimum, maximum = tmdb_data.now_playing_window(day)
    assert maximum.weekday() == 2 and minimum.weekday() == 2
    assert (maximum - minimum).days == 42
    assert 0 <= (maximum - day).days < 7
    kr = tmdb_data.released_between(minimum, maximum, "KR")
    assert 80 <= len(kr) <= 150
    worldwide = tmdb_data.released_between(minimum, maximum, None)
    assert len(worldwide) >= 250
    assert {m.id for m in kr} <= {m.id for m in worldwide}


def test_popularity_moves_with_the_day_and_is_rounded() -> None:
    movie = next(
        m for m in tmdb_data.catalogue().movies if m.kr_release and m.kr_release >= date(2025, 1, 12) and not m.fresh
    )
    values = [tmdb_data.popularity(movie, date(2025, 1, 10) + timedelta(days=i)) for i in range(10)]
    assert len(set(values)) > 5
    assert all(round(v, 4) == v for v in values)
    assert tmdb_data.popularity(movie, date(2025, 1, 16)) == tmdb_data.popularity(movie, date(2025, 1, 16))


def test_ranking_is_roughly_descending() -> None:
    movies = tmdb_data.released_between(date(2024, 12, 11), date(2025, 1, 22), "KR")
    ranking = tmdb_data.ranked(movies, date(2025, 1, 20))
    pops = [pop for _, pop in ranking]
    inversions = sum(1 for a, b in itertools.pairwise(pops) if a < b)
    assert 1 <= inversions <= len(pops) // 4
    assert pops[0] >= pops[-1]


def test_details_fall_back_for_untranslated_movies() -> None:
    movie = next(m for m in tmdb_data.catalogue().movies if m.title_ko is None)
    details = tmdb_data.movie_details(movie, "ko-KR", date(2025, 1, 1))
    assert details["title"] == movie.original_title
    assert details["overview"] == ""
    english = tmdb_data.movie_details(movie, "en-US", date(2025, 1, 1))
    assert english["title"] == (movie.title_en or movie.original_title)
