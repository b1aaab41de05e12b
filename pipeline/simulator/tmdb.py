"""TMDB v3 handlers: ``/3/movie/now_playing``, ``/3/movie/{id}``, ``/3/discover/movie`` (shared/reference/tmdb.md)."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import date, datetime
from typing import Final

from aiohttp import web

from pipeline.simulator import tmdb_data, world
from pipeline.simulator.faults import json_response, tmdb_error
from pipeline.simulator.state import SimulatorState, TmdbQuirks, check_aware

MAX_PAGE: Final = 500
MAX_APPENDS: Final = 20
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_ID_RE: Final = re.compile(r"[0-9]{1,12}")


def authorized(request: web.Request, state: SimulatorState) -> bool:
    """Bearer read-access token, or the v3 key as ``api_key`` (a JWT passed as ``api_key`` is rejected)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip() == state.tmdb_read_token:
        return True
    return request.query.get("api_key") == state.tmdb_api_key


def parse_page(raw: str | None) -> int | None:
    """``page`` -> 1..500, or None when it is not an integer in range (HTTP 400, code 22)."""
    if raw is None:
        return 1
    if not _INT_RE.fullmatch(raw):
        return None
    page = int(raw)
    return page if 1 <= page <= MAX_PAGE else None


def parse_date(raw: str | None) -> date | None:
    """YYYY-MM-DD -> date; raises ValueError on anything else."""
    if raw is None or raw == "":
        return None
    if not _DATE_RE.fullmatch(raw):
        raise ValueError(raw)
    return date.fromisoformat(raw)


def korean_title_from(movie: tmdb_data.Movie, quirks: TmdbQuirks) -> datetime | None:
    """When the movie's Korean title arrives (None: it was always there): ``late_titles``, else the share's
    ``late_title_delay`` after its release day starts."""
    moment = quirks.late_titles.get(movie.id)
    if moment is not None:
        return check_aware("TmdbQuirks.late_titles", moment)
    if quirks.late_title_share and tmdb_data.in_share(movie.id, quirks.late_title_share):
        start = tmdb_data.release_start(movie)
        return None if start is None else start + quirks.late_title_delay
    return None


def served(movie: tmdb_data.Movie, quirks: TmdbQuirks, now: datetime) -> tmdb_data.Movie:
    """``movie`` as TMDB has it at ``now``: untranslated into Korean before its Korean title arrives (so ``ko-KR``
    falls back to ``original_title``), runtime 0 before its runtime arrives."""
    if movie.title_ko is not None:
        title_from = korean_title_from(movie, quirks)
        if title_from is not None and now < title_from:
            movie = dataclasses.replace(movie, title_ko=None)
    runtime_from = quirks.late_runtimes.get(movie.id)
    if runtime_from is not None and now < check_aware("TmdbQuirks.late_runtimes", runtime_from):
        movie = dataclasses.replace(movie, runtime=0)
    return movie


def _served_ranking(ranking: list[tmdb_data.Ranked], state: SimulatorState) -> list[tmdb_data.Ranked]:
    """``ranking`` with each movie as :func:`served`; untouched (the same list) while no TMDB quirk is on."""
    quirks = state.tmdb_quirks
    if not (quirks.late_titles or quirks.late_title_share or quirks.late_runtimes):
        return ranking
    now = state.now()
    return [(served(movie, quirks, now), pop) for movie, pop in ranking]


def page_of(ranking: list[tmdb_data.Ranked], page: int, *, reranked: bool) -> list[tmdb_data.Ranked]:
    """One page of 20. With ``reranked``, pages from 3 on are shifted back by one (live re-ranking): the last
    movie of page 2 shows up again first on page 3, and the last page runs to the end so nothing is lost."""
    total_pages = math.ceil(len(ranking) / tmdb_data.PAGE_SIZE)
    if page > total_pages:
        return []
    shift = 1 if reranked and page >= 3 else 0
    start = (page - 1) * tmdb_data.PAGE_SIZE - shift
    stop = len(ranking) if page == total_pages else page * tmdb_data.PAGE_SIZE - shift
    return ranking[start:stop]


async def now_playing(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    query = request.query
    page = parse_page(query.get("page"))
    if page is None:
        return tmdb_error(400, 22)
    language = query.get("language") or "en-US"
    region = query.get("region") or None
    now = state.now()
    minimum, maximum = tmdb_data.now_playing_window(world.kst_day(now))
    ranking = tmdb_data.ranked(tmdb_data.released_between(minimum, maximum, region), tmdb_data.utc_day(now))
    shown = _served_ranking(page_of(ranking, page, reranked=True), state)
    results = [tmdb_data.list_item(m, pop, language, region) for m, pop in shown]
    return json_response(
        {
            "dates": {"maximum": maximum.isoformat(), "minimum": minimum.isoformat()},
            "page": page,
            "results": results,
            "total_pages": math.ceil(len(ranking) / tmdb_data.PAGE_SIZE),
            "total_results": len(ranking),
        }
    )


async def movie(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    raw_id = request.match_info.get("movie_id", "")
    found = tmdb_data.movie_by_id(int(raw_id)) if _ID_RE.fullmatch(raw_id) else None
    if found is None:
        return tmdb_error(404, 34)
    query = request.query
    appends = [name.strip() for name in query.get("append_to_response", "").split(",") if name.strip()]
    if len(appends) > MAX_APPENDS:
        return tmdb_error(400, 27)
    language = query.get("language") or "en-US"
    now = state.now()
    body = tmdb_data.movie_details(served(found, state.tmdb_quirks, now), language, tmdb_data.utc_day(now))
    # Unknown append names are silently ignored, as TMDB does for retired ones (tmdb.md §3).
    if "release_dates" in appends:
        body["release_dates"] = {"results": tmdb_data.release_dates(found)["results"]}
    return json_response(body)


_SORT_FIELDS: Final = frozenset(
    {"popularity", "primary_release_date", "release_date", "vote_average", "vote_count", "revenue", "title"}
)


SortValue = float | int | str | date


def _sort_value(field: str, pair: tmdb_data.Ranked, region: str | None, language: str) -> SortValue | None:
    movie, pop = pair
    if field == "primary_release_date":
        return movie.primary_release
    if field == "release_date":
        shown = tmdb_data.list_release_date(movie, region)
        return date.fromisoformat(shown) if shown else None
    if field == "vote_average":
        return movie.vote_average
    if field == "vote_count":
        return movie.vote_count
    if field == "revenue":
        return movie.revenue
    if field == "title":
        return tmdb_data.localized_title(movie, language)
    return pop


def _sorted(ranking: list[tmdb_data.Ranked], sort_by: str, region: str | None, language: str) -> list[tmdb_data.Ranked]:
    """Apply ``sort_by``; unknown values fall back to ``popularity.desc``. Missing values sort last."""
    field, _, direction = sort_by.rpartition(".")
    if field not in _SORT_FIELDS or direction not in ("asc", "desc"):
        field, direction = "popularity", "desc"
    if field == "popularity" and direction == "desc":
        return ranking  # already ranked, inversions included
    keyed = [(_sort_value(field, pair, region, language), pair) for pair in ranking]
    present = [(value, pair) for value, pair in keyed if value is not None]
    missing = [pair for value, pair in keyed if value is None]
    present.sort(key=lambda item: (item[0], item[1][0].id), reverse=direction == "desc")
    return [pair for _, pair in present] + missing


async def discover(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    query = request.query
    page = parse_page(query.get("page"))
    if page is None:
        return tmdb_error(400, 22)
    try:
        gte = parse_date(query.get("release_date.gte"))
        lte = parse_date(query.get("release_date.lte"))
        primary_gte = parse_date(query.get("primary_release_date.gte"))
        primary_lte = parse_date(query.get("primary_release_date.lte"))
    except ValueError:
        return tmdb_error(400, 23)
    language = query.get("language") or "en-US"
    region = query.get("region") or None

    start, end = gte or tmdb_data.CATALOGUE_START, lte or tmdb_data.CATALOGUE_END
    movies = tmdb_data.released_between(start, end, region) if start <= end else []
    release_types = query.get("with_release_type")
    if release_types is not None:
        wanted = {token.strip() for token in re.split(r"[|,]", release_types)}
        if not wanted & {"2", "3"}:  # every simulated release is type 3 (theatrical)
            movies = []
    if primary_gte is not None or primary_lte is not None:
        low, high = primary_gte or date.min, primary_lte or date.max
        movies = [m for m in movies if m.primary_release is not None and low <= m.primary_release <= high]

    ranking = _served_ranking(tmdb_data.ranked(movies, tmdb_data.utc_day(state.now())), state)  # titles sort as shown
    ranking = _sorted(ranking, query.get("sort_by") or "popularity.desc", region, language)
    results = [tmdb_data.list_item(m, pop, language, region) for m, pop in page_of(ranking, page, reranked=False)]
    return json_response(
        {
            "page": page,
            "results": results,
            "total_pages": math.ceil(len(ranking) / tmdb_data.PAGE_SIZE),
            "total_results": len(ranking),
        }
    )


async def not_found(request: web.Request) -> web.StreamResponse:
    return tmdb_error(404, 34)
