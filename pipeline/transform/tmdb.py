"""TMDB now-playing items and movie details → typed rows. Pure: raw dicts in, records out.

TMDB writes "unknown" as ``0`` (budget, revenue, runtime) and ``""`` (release_date, overview, homepage,
tagline); both become ``None``. A ``vote_average`` with ``vote_count`` 0 is no rating (TMDB sends ``0``):
``None`` too. ``vote_average`` may be a JSON integer; ``popularity`` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, TypedDict

from pipeline.errors import RecordError
from pipeline.transform.common import json_list, to_date, to_float, to_int, to_text

SOURCE = "tmdb"


class RawListItem(TypedDict, total=False):
    """The fields we read from a ``results[]`` item of ``/movie/now_playing`` or ``/discover/movie``: its
    snapshot's, and a bare movie's (:func:`movie_from_list_item`)."""

    id: int
    title: str
    original_title: str
    popularity: float
    vote_average: float
    vote_count: int
    release_date: str
    genre_ids: list[int]
    original_language: str
    overview: str
    poster_path: str | None
    backdrop_path: str | None
    adult: bool


class RawGenre(TypedDict):
    id: int
    name: str


class RawMovie(TypedDict, total=False):
    """The fields we read from ``/movie/{id}``."""

    id: int
    title: str
    original_title: str
    original_language: str
    overview: str
    tagline: str
    homepage: str
    status: str
    release_date: str
    runtime: int
    budget: int
    revenue: int
    genres: list[RawGenre]
    origin_country: list[str]
    production_countries: list[dict[str, str]]
    spoken_languages: list[dict[str, str]]
    belongs_to_collection: dict[str, Any] | None
    imdb_id: str | None
    popularity: float
    vote_average: float
    vote_count: int
    poster_path: str | None
    backdrop_path: str | None
    adult: bool


@dataclass(frozen=True, slots=True)
class Movie:
    """Latest known state of a movie (table ``movies``)."""

    tmdb_id: int
    title: str | None
    original_title: str | None
    original_language: str | None
    overview: str | None
    tagline: str | None
    homepage: str | None
    status: str | None
    release_date: date | None
    runtime: int | None  # minutes
    budget: int | None  # USD
    revenue: int | None  # USD
    genres: str | None  # JSON array of genre names, in the requested language
    genre_ids: str | None  # JSON array of TMDB genre ids
    origin_country: str | None  # JSON array of ISO 3166-1 codes
    production_countries: str | None  # JSON array of ISO 3166-1 codes
    spoken_languages: str | None  # JSON array of ISO 639-1 codes
    collection_id: int | None
    collection_name: str | None
    imdb_id: str | None
    popularity: float | None
    vote_average: float | None
    vote_count: int | None
    poster_path: str | None
    backdrop_path: str | None
    adult: bool | None


@dataclass(frozen=True, slots=True)
class MovieSnapshot:
    """What one run saw of one movie in a list (table ``movie_snapshots``)."""

    tmdb_id: int
    list_name: str  # 'now_playing' or 'discover'
    position: int  # 1-based rank in the list as served, duplicates removed
    page: int
    popularity: float | None
    vote_average: float | None
    vote_count: int | None
    revenue: int | None
    release_date: date | None  # the region's release date from the list item


def _movie_id(raw: Mapping[str, Any]) -> int:
    value = raw.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RecordError(f"id missing or not a positive integer: {value!r}")
    return value


def _unknown_if_zero(value: object, field: str) -> int | None:
    number = to_int(value, field)
    if number is not None and number < 0:
        raise RecordError(f"{field}: negative: {value!r}")
    return number or None


def _votes(raw: Mapping[str, Any]) -> tuple[float | None, int | None]:
    """``(vote_average, vote_count)``; no votes, no average (TMDB's ``0.0`` for "not rated")."""
    average = to_float(raw.get("vote_average"), "vote_average")
    count = to_int(raw.get("vote_count"), "vote_count")
    return (None if count == 0 else average), count


def _codes(items: object, key: str, field: str) -> str | None:
    if items is None:
        return None
    if not isinstance(items, list):
        raise RecordError(f"{field}: expected a list, got {type(items).__name__}")
    codes = [item.get(key) for item in items if isinstance(item, Mapping) and item.get(key)]
    return json_list(codes)


def to_movie(raw: RawMovie | Mapping[str, Any]) -> Movie:
    """Normalise a ``/movie/{id}`` body. Raises :class:`RecordError` when it cannot be stored."""
    tmdb_id = _movie_id(raw)
    genres = raw.get("genres") or []
    if not isinstance(genres, list):
        raise RecordError(f"genres: expected a list, got {type(genres).__name__}")
    origin = raw.get("origin_country")
    if origin is not None and not isinstance(origin, list):
        raise RecordError(f"origin_country: expected a list, got {type(origin).__name__}")
    collection = raw.get("belongs_to_collection")
    if collection is not None and not isinstance(collection, Mapping):
        raise RecordError("belongs_to_collection: expected an object or null")
    adult = raw.get("adult")
    vote_average, vote_count = _votes(raw)
    return Movie(
        tmdb_id=tmdb_id,
        title=to_text(raw.get("title")),
        original_title=to_text(raw.get("original_title")),
        original_language=to_text(raw.get("original_language")),
        overview=to_text(raw.get("overview")),
        tagline=to_text(raw.get("tagline")),
        homepage=to_text(raw.get("homepage")),
        status=to_text(raw.get("status")),
        release_date=to_date(raw.get("release_date"), "release_date"),
        runtime=_unknown_if_zero(raw.get("runtime"), "runtime"),
        budget=_unknown_if_zero(raw.get("budget"), "budget"),
        revenue=_unknown_if_zero(raw.get("revenue"), "revenue"),
        genres=json_list([g.get("name") for g in genres if isinstance(g, Mapping) and g.get("name")]),
        genre_ids=json_list([g.get("id") for g in genres if isinstance(g, Mapping) and g.get("id") is not None]),
        origin_country=json_list([c for c in origin or [] if isinstance(c, str) and c]),
        production_countries=_codes(raw.get("production_countries"), "iso_3166_1", "production_countries"),
        spoken_languages=_codes(raw.get("spoken_languages"), "iso_639_1", "spoken_languages"),
        collection_id=to_int(collection.get("id"), "belongs_to_collection.id") if collection else None,
        collection_name=to_text(collection.get("name")) if collection else None,
        imdb_id=to_text(raw.get("imdb_id")),
        popularity=to_float(raw.get("popularity"), "popularity"),
        vote_average=vote_average,
        vote_count=vote_count,
        poster_path=to_text(raw.get("poster_path")),
        backdrop_path=to_text(raw.get("backdrop_path")),
        adult=adult if isinstance(adult, bool) else None,
    )


def to_snapshot(
    item: RawListItem | Mapping[str, Any], *, position: int, page: int, list_name: str, movie: Movie | None
) -> MovieSnapshot:
    """Normalise a list item; ``movie`` (the details, when fetched) supplies the revenue."""
    tmdb_id = _movie_id(item)
    vote_average, vote_count = _votes(item)
    return MovieSnapshot(
        tmdb_id=tmdb_id,
        list_name=list_name,
        position=position,
        page=page,
        popularity=to_float(item.get("popularity"), "popularity"),
        vote_average=vote_average,
        vote_count=vote_count,
        revenue=movie.revenue if movie is not None else None,
        release_date=to_date(item.get("release_date"), "release_date"),
    )


def movie_from_list_item(item: RawListItem | Mapping[str, Any]) -> Movie:
    """A minimal ``movies`` row from a list item, for a movie whose details could not be fetched."""
    movie = to_movie({**item, "genres": []})
    ids = item.get("genre_ids")
    genre_ids = json_list([g for g in ids if isinstance(g, int)]) if isinstance(ids, list) else None
    return replace(movie, genre_ids=genre_ids)
