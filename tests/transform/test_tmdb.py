"""Every recorded TMDB body goes through the transform; whole records are asserted."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.errors import RecordError
from pipeline.extract.tmdb import list_page
from pipeline.transform.tmdb import Movie, MovieSnapshot, movie_from_list_item, to_movie, to_snapshot
from tests.conftest import fixture_json

NOW_PLAYING = [
    "tmdb/now_playing_p1_en-US_official-docs-example_2023-05.json",
    "tmdb/now_playing_p1_default-params_recorded_2024-01.json",
    "tmdb/now_playing_p1_ko-KR_region-KR_2025-01.json",
    "tmdb/now_playing_p1_en-US_2025-07.json",
]


def test_sparse_new_entry_zero_and_empty_mean_unknown() -> None:
    movie = to_movie(fixture_json("tmdb/movie_details_1236474_sparse-new-entry_recorded_2024.json"))
    assert movie == Movie(
        tmdb_id=1236474, title="Better Than Me", original_title="Better Than Me", original_language="en",
        overview=None, tagline=None, homepage=None, status="Released", release_date=None, runtime=None,
        budget=5,  # a junk value a user typed: kept, it is not TMDB's 0-for-unknown
        revenue=None, genres=None, genre_ids=None, origin_country=None, production_countries=None,
        spoken_languages=None, collection_id=None, collection_name=None, imdb_id=None, popularity=0.0,
        vote_average=None,  # TMDB's 0.0 with no votes: no rating
        vote_count=0, poster_path=None, backdrop_path=None, adult=False,
    )  # fmt: skip


def test_fight_club_full_details() -> None:
    movie = to_movie(fixture_json("tmdb/movie_details_550_en-US_recorded_2024.json"))
    assert movie == Movie(
        tmdb_id=550, title="Fight Club", original_title="Fight Club", original_language="en",
        overview=movie.overview, tagline="Mischief. Mayhem. Soap.", homepage="http://www.foxmovies.com/movies/fight-club",
        status="Released", release_date=date(1999, 10, 15), runtime=139, budget=63000000, revenue=100853753,
        genres='["Drama"]', genre_ids="[18]", origin_country=None,  # no origin_country before mid-2024
        production_countries='["DE","US"]', spoken_languages='["en"]', collection_id=None, collection_name=None,
        imdb_id="tt0137523", popularity=93.958, vote_average=8.44, vote_count=27917,
        poster_path="/pB8BM7pdSp6B6Ih7QZ4DrQ3PmJK.jpg", backdrop_path="/hZkgoQYus5vegHoetLkCJzb17zJ.jpg", adult=False,
    )  # fmt: skip
    assert movie.overview is not None and movie.overview.startswith("A ticking-time-bomb insomniac")


def test_star_wars_official_example() -> None:
    raw = fixture_json("tmdb/movie_details_11_en-US_official-docs-example.json")
    movie = to_movie(raw)
    assert movie.tmdb_id == 11 and movie.origin_country == '["US"]'
    assert movie.collection_id == raw["belongs_to_collection"]["id"]
    assert movie.collection_name == raw["belongs_to_collection"]["name"]
    assert movie.release_date == date.fromisoformat(raw["release_date"])
    assert movie.revenue == raw["revenue"] and movie.runtime == raw["runtime"]


@pytest.mark.parametrize("name", NOW_PLAYING)
def test_every_now_playing_page_becomes_snapshots(name: str) -> None:
    body = fixture_json(name)
    page = list_page(body, name)
    assert page.total_pages == body["total_pages"] and page.page == 1
    snapshots = [
        to_snapshot(item, position=i, page=1, list_name="now_playing", movie=None)
        for i, item in enumerate(page.results, start=1)
    ]
    assert [s.tmdb_id for s in snapshots] == [item["id"] for item in body["results"]]
    for snapshot, item in zip(snapshots, body["results"], strict=True):
        assert snapshot.popularity == float(item["popularity"])
        # also when written as a JSON integer; no votes, no rating
        assert snapshot.vote_average == (float(item["vote_average"]) if item["vote_count"] else None)
        assert snapshot.vote_count == item["vote_count"]


def test_korean_page_snapshot_and_bare_movie_whole_records() -> None:
    body = fixture_json("tmdb/now_playing_p1_ko-KR_region-KR_2025-01.json")
    first = body["results"][0]
    assert to_snapshot(first, position=1, page=1, list_name="now_playing", movie=None) == MovieSnapshot(
        tmdb_id=939243, list_name="now_playing", position=1, page=1, popularity=7240.445, vote_average=7.839,
        vote_count=1001, revenue=None, release_date=date(2025, 1, 1),
    )  # fmt: skip
    bare = movie_from_list_item(first)
    assert (bare.tmdb_id, bare.title, bare.original_title, bare.genre_ids) == (
        939243, "수퍼 소닉 3", "Sonic the Hedgehog 3", "[28,878,35,10751]",
    )  # fmt: skip
    nulls = [item for item in body["results"] if item["backdrop_path"] is None]
    assert nulls and movie_from_list_item(nulls[0]).backdrop_path is None


def test_untranslated_items_keep_original_title_and_null_overview() -> None:
    items = fixture_json("tmdb/now_playing_ko-KR_results-items-excerpt_2024-06.json")
    movies = {m.original_title: m for m in map(movie_from_list_item, items)}
    infaillibles = movies["Les Infaillibles"]
    assert infaillibles.title == "Les Infaillibles" and infaillibles.overview is None
    assert movies["Civil War"].title == "시빌 워" and movies["Civil War"].vote_average == 7.0


def test_a_vote_average_without_votes_is_null_in_details_and_list_items() -> None:
    for votes, average, expected in ((0, 0, None), (0, 0.0, None), (0, 6.5, None), (3, 0, 0.0), (3, 6.5, 6.5),
                                     (None, 0, 0.0)):  # fmt: skip
        raw = {"id": 7, "title": "X", "vote_count": votes, "vote_average": average}
        assert to_movie(raw).vote_average == expected, raw
        snapshot = to_snapshot(raw, position=1, page=1, list_name="now_playing", movie=None)
        assert (snapshot.vote_average, snapshot.vote_count) == (expected, votes), raw


def test_revenue_zero_and_empty_release_date_are_null() -> None:
    raw = {"id": 7, "title": "X", "revenue": 0, "budget": 0, "runtime": 0, "release_date": "", "homepage": "",
           "tagline": "", "overview": "", "genres": [], "vote_average": 0}  # fmt: skip
    movie = to_movie(raw)
    assert (movie.revenue, movie.budget, movie.runtime, movie.release_date) == (None, None, None, None)
    assert (movie.homepage, movie.tagline, movie.overview, movie.vote_average) == (None, None, None, 0.0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"title": "no id"}, "id missing"),
        ({"id": "12"}, "id missing"),
        ({"id": 3, "release_date": "2024-13-45"}, "release_date"),
        ({"id": 3, "runtime": -5}, "negative"),
        ({"id": 3, "genres": "Drama"}, "genres"),
    ],
)
def test_unusable_details_raise_record_error(raw: dict[str, object], reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        to_movie(raw)


def test_error_bodies_fixture_is_complete() -> None:
    bodies = fixture_json("tmdb/error_bodies.json")
    assert {b.get("status_code") for b in bodies.values()} >= {7, 34, 22, 25}
