"""TMDB v3: now-playing / discover pages and movie details. I/O only; bodies come back raw.

Pagination: page 1 tells ``total_pages``; pages 2 … ``min(max_pages, total_pages, 500)`` are then fetched
concurrently and yielded in order, stopping at the first empty page.

Importing it loads no HTTP library: the request gate is imported where a client is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, cast

import orjson

from pipeline.config import TmdbSettings
from pipeline.errors import AuthError, BadRequestError, NotFoundError, SourceError, TransientError
from pipeline.extract.headers import retry_after_seconds
from pipeline.keys import Secrets
from pipeline.redaction import printable

if TYPE_CHECKING:
    import aiohttp

    from pipeline.extract.http import SourceClient
    from pipeline.transform.tmdb import RawListItem, RawMovie

SOURCE = "tmdb"
MAX_PAGE = 500  # TMDB refuses page > 500 with status_code 22
AUTH_CODES = frozenset({3, 7, 10, 14, 35})
NOT_FOUND_CODES = frozenset({6, 34})
TRANSIENT_CODES = frozenset({9, 11, 15, 24, 25, 43, 46})
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class ListPage:
    page: int
    results: list[RawListItem]  # the objects of the body's results, unchecked: the transform checks them
    total_pages: int
    total_results: int


def classify(status: int, headers: Mapping[str, str], raw: bytes | str, request: str) -> Any:
    """Parse a TMDB response or raise the right :class:`SourceError`."""
    body: Any = None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    code = body.get("status_code") if isinstance(body, dict) else None
    message = body.get("status_message") if isinstance(body, dict) else None
    detail = f"HTTP {status}" + (
        f", status_code {printable(str(code))}: {printable(str(message))}" if code is not None else ""
    )
    if status == 200 and isinstance(body, dict) and code is None:
        return body
    kw: dict[str, Any] = {
        "source": SOURCE,
        "url": request,
        "status": status,
        "code": str(code) if code else None,
    }
    if status == 401 or code in AUTH_CODES:
        raise AuthError(
            f"tmdb: TMDB rejected TMDB_API_KEY ({detail}). Check the key in .env: a v4 read-access token "
            "(eyJ…) is sent as 'Authorization: Bearer', a 32-character v3 key as the api_key parameter",
            **kw,
        )
    if status == 404 or code in NOT_FOUND_CODES:
        raise NotFoundError(f"tmdb: not found ({detail}) for {request}", **kw)
    if status in TRANSIENT_STATUS or status >= 500 or code in TRANSIENT_CODES:
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        raise TransientError(f"tmdb: {detail} for {request}", retry_after=retry_after, **kw)
    if status == 200:
        # 200 but not a JSON object: a truncated body or a proxy's HTML page
        raise TransientError(f"tmdb: HTTP 200 with a body that is not a JSON object for {request}", **kw)
    raise BadRequestError(f"tmdb: request refused ({detail}): {request}", **kw)


def make_client(session: aiohttp.ClientSession, settings: TmdbSettings, secrets: Secrets) -> SourceClient:
    from pipeline.extract.http import SourceClient  # the gate loads aiohttp: only where requests are made

    key = secrets.tmdb_api_key or ""
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    if secrets.tmdb_auth == "bearer":
        headers["Authorization"] = f"Bearer {key}"
    else:
        params["api_key"] = key
    return SourceClient(
        session,
        source=SOURCE,
        base_url=settings.base_url,
        classify=classify,
        concurrency=settings.concurrency,
        rate_limit=settings.rate_limit,
        timeout=settings.timeout,
        attempts=settings.attempts,
        max_retry_time=settings.max_retry_time,
        headers=headers,
        params=params,
    )


def list_page(body: Mapping[str, Any], request: str) -> ListPage:
    try:
        results = body["results"]
        if not isinstance(results, list):
            raise TypeError("results is not a list")
        return ListPage(
            page=int(body.get("page", 1)),
            results=cast("list[RawListItem]", [r for r in results if isinstance(r, dict)]),
            total_pages=int(body.get("total_pages", 1)),
            total_results=int(body.get("total_results", len(results))),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequestError(f"tmdb: unexpected list body ({exc}) for {request}", source=SOURCE) from None


async def fetch_list_pages(
    client: SourceClient,
    path: str,
    params: Mapping[str, str],
    *,
    max_pages: int,
    operation: str,
    first_page: int = 1,
) -> AsyncIterator[ListPage]:
    """Yield list pages in order: ``first_page`` …  ``min(last, total_pages, 500)``; stop at an empty page."""

    async def get(page: int) -> ListPage:
        body = await client.get(path, {**params, "page": str(page)}, operation)
        return list_page(body, f"{path} page {page}")

    first = await get(first_page)
    yield first
    if not first.results:
        return
    last = min(first_page + max_pages - 1, first.total_pages, MAX_PAGE)
    tasks = [asyncio.ensure_future(get(page)) for page in range(first_page + 1, last + 1)]
    try:
        for task in tasks:
            page = await task
            if not page.results:
                return
            yield page
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def fetch_now_playing(client: SourceClient, settings: TmdbSettings) -> AsyncIterator[ListPage]:
    params = {"language": settings.language, "region": settings.region}
    async for page in fetch_list_pages(
        client, "movie/now_playing", params, max_pages=settings.max_pages, operation="now_playing"
    ):
        yield page


#: rows a list page holds (TMDB's fixed page size), for list positions
PAGE_SIZE = 20
#: theatrical releases (limited, wide): what a backfill of "now playing" history asks /discover/movie for
THEATRICAL_RELEASE_TYPES = "2|3"


def discover_query(language: str, region: str, first: date, last: date) -> dict[str, str]:
    """``/discover/movie`` parameters: theatrical releases in ``region`` from ``first`` to ``last``, oldest first."""
    return {
        "language": language,
        "region": region,
        "release_date.gte": first.isoformat(),
        "release_date.lte": last.isoformat(),
        "with_release_type": THEATRICAL_RELEASE_TYPES,
        "sort_by": "primary_release_date.asc",
    }


async def fetch_discover_pages(
    client: SourceClient, params: Mapping[str, str], *, first_page: int, max_pages: int
) -> AsyncIterator[ListPage]:
    """Pages ``first_page`` … of ``/discover/movie`` (see :func:`discover_query`), in order."""
    async for page in fetch_list_pages(
        client, "discover/movie", params, first_page=first_page, max_pages=max_pages, operation="discover"
    ):
        yield page


async def fetch_discover_total_pages(client: SourceClient, params: Mapping[str, str]) -> int:
    """How many discover pages the query has (at most 500): its first page's ``total_pages``."""
    first = await client.get("discover/movie", {**params, "page": "1"}, "discover")
    return min(int(first.get("total_pages", 1) or 1), MAX_PAGE)


async def fetch_movie_details(
    client: SourceClient, ids: Iterable[int], language: str
) -> AsyncIterator[tuple[int, RawMovie | SourceError]]:
    """Yield ``(id, body)`` as details arrive; a movie TMDB does not know yields ``(id, NotFoundError)``."""

    async def one(movie_id: int) -> tuple[int, RawMovie | SourceError]:
        try:
            return movie_id, await client.get(f"movie/{movie_id}", {"language": language}, "movie")
        except NotFoundError as exc:
            client.count_action("not_found:skipped")
            return movie_id, exc

    tasks = [asyncio.ensure_future(one(movie_id)) for movie_id in ids]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
