"""TMDB fetching against a scripted TMDB on 127.0.0.1: list pages (page 1, then the rest at once, yielded in
order and capped), now-playing's parameters, movie details as they arrive, and how the key is sent.
Responses are held and released by the test, so the order of events is fixed, never timed."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from pipeline.config import TmdbSettings
from pipeline.errors import AuthError, BadRequestError, NotFoundError, TransientError
from pipeline.extract import tmdb
from pipeline.extract.http import SourceClient, make_session
from pipeline.keys import Secrets

V3_KEY = "0123456789abcdef0123456789abcdef"
V4_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJwaXBlbGluZS10ZXN0In0.c2lnbmF0dXJl"
NOT_FOUND = {"success": False, "status_code": 34, "status_message": "The resource you requested could not be found."}
T = TypeVar("T")


class FakeTmdb:
    """``/3/movie/{id}`` and every list path under ``/3``; records each request and what happened, in order.

    A list page holds two movies unless listed in ``bodies``; a page or movie id in ``held`` is answered only
    once its event is set.
    """

    def __init__(self) -> None:
        self.total_pages = 1
        self.bodies: dict[int, Any] = {}  # page -> the body to send instead
        self.replies: dict[int, tuple[int, Any]] = {}  # movie id -> (status, body) instead of its details
        self.reply_headers: dict[str, str] = {}  # added to every details response
        self.held: dict[int, asyncio.Event] = {}
        self.requests: list[web.Request] = []
        self.log: list[str] = []
        self._arrived = asyncio.Condition()
        self.server: TestServer | None = None

    def hold(self, *keys: int) -> None:
        self.held.update({key: asyncio.Event() for key in keys})

    def release(self, key: int) -> None:
        self.held[key].set()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/3"))

    async def wait_for_requests(self, count: int) -> None:
        async with asyncio.timeout(10), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    async def _arrive(self, request: web.Request, key: int, what: str) -> None:
        self.requests.append(request)
        self.log.append(f"request {what}")
        async with self._arrived:
            self._arrived.notify_all()
        if key in self.held:
            await self.held[key].wait()
        self.log.append(f"answer {what}")

    async def listing(self, request: web.Request) -> web.Response:
        page = int(request.query["page"])
        await self._arrive(request, page, f"page {page}")
        movies = [{"id": page * 100 + i, "title": f"movie {page * 100 + i}"} for i in (1, 2)]
        body = self.bodies.get(page, {"page": page, "results": movies, "total_pages": self.total_pages,
                                      "total_results": 2 * self.total_pages})  # fmt: skip
        return web.json_response(body)

    async def details(self, request: web.Request) -> web.Response:
        movie_id = int(request.match_info["id"])
        await self._arrive(request, movie_id, f"movie {movie_id}")
        status, body = self.replies.get(movie_id, (200, {"id": movie_id, "title": f"movie {movie_id}"}))
        return web.json_response(body, status=status, headers=self.reply_headers)

    def pages_requested(self) -> list[int]:
        return [int(r.query["page"]) for r in self.requests]


@pytest.fixture
async def fake(aiohttp_server: AiohttpServer) -> FakeTmdb:
    fake = FakeTmdb()
    app = web.Application()
    app.router.add_get(r"/3/movie/{id:\d+}", fake.details)
    app.router.add_get("/3/{path:.+}", fake.listing)
    fake.server = await aiohttp_server(app, host="127.0.0.1")
    return fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session() as session:
        yield session


def settings(fake: FakeTmdb, **kw: Any) -> TmdbSettings:
    return TmdbSettings(**{"base_url": fake.base_url, "concurrency": 20, "rate_limit": 40, "attempts": 1} | kw)


def client(session: aiohttp.ClientSession, fake: FakeTmdb, key: str = V3_KEY, **kw: Any) -> SourceClient:
    return tmdb.make_client(session, settings(fake, **kw), Secrets(tmdb_api_key=key))


async def collect(pages: AsyncIterator[T]) -> list[T]:
    return [page async for page in pages]


async def within(awaitable: Any) -> Any:
    """Await, failing instead of hanging when the code under test waits for a response that is held."""
    async with asyncio.timeout(10):
        return await awaitable


class Completions:
    """Wraps a client's classifier: which pages' responses the client has read, and in what order."""

    def __init__(self, client: SourceClient) -> None:
        self.order: list[int] = []
        self.done: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        classify = client.classify

        def recording(status: int, headers: Mapping[str, str], body: bytes, request: str) -> Any:
            page = int(re.findall(r"[?&]page=(\d+)", request)[0])
            self.order.append(page)
            self.done[page].set()
            return classify(status, headers, body, request)

        client.classify = recording


# --- list pages ------------------------------------------------------------------------------------------


async def test_page_one_comes_first_then_the_rest_at_once_yielded_in_page_order(
    fake: FakeTmdb, session: aiohttp.ClientSession
) -> None:
    fake.total_pages = 4
    fake.hold(2, 3, 4)
    c = client(session, fake)
    completions = Completions(c)
    params = {"sort_by": "popularity.desc", "with_genres": "16"}
    listing = asyncio.create_task(collect(tmdb.fetch_list_pages(c, "discover/movie", params, max_pages=10, operation="discover")))  # fmt: skip
    await fake.wait_for_requests(4)  # pages 2, 3 and 4 are all in flight together…
    assert fake.log[:2] == ["request page 1", "answer page 1"]  # …asked for only once page 1 told total_pages
    assert sorted(fake.log[2:]) == ["request page 2", "request page 3", "request page 4"]
    for page in (4, 3, 2):  # answered last page first
        fake.release(page)
        await within(completions.done[page].wait())
    pages = await within(listing)
    assert completions.order == [1, 4, 3, 2]
    assert [p.page for p in pages] == [1, 2, 3, 4]
    assert [[m["id"] for m in p.results] for p in pages] == [[101, 102], [201, 202], [301, 302], [401, 402]]
    assert (pages[0].total_pages, pages[0].total_results) == (4, 8)
    assert all(r.path == "/3/discover/movie" for r in fake.requests)
    assert sorted((dict(r.query) for r in fake.requests), key=lambda q: q["page"]) == [
        {"sort_by": "popularity.desc", "with_genres": "16", "page": str(n), "api_key": V3_KEY} for n in (1, 2, 3, 4)
    ]
    assert c.stats.requests == {"discover": 4}


@pytest.mark.parametrize(
    ("first_page", "max_pages", "total_pages", "expected"),
    [
        pytest.param(1, 10, 3, [1, 2, 3], id="total_pages"),
        pytest.param(1, 3, 50, [1, 2, 3], id="max_pages"),
        pytest.param(498, 10, 1000, [498, 499, 500], id="page-500"),
        pytest.param(3, 2, 10, [3, 4], id="first_page"),
        pytest.param(7, 5, 9, [7, 8, 9], id="first_page-and-total_pages"),
        pytest.param(1, 10, 1, [1], id="one-page"),
    ],
)
async def test_pages_are_capped_at_max_pages_total_pages_and_500(
    fake: FakeTmdb, session: aiohttp.ClientSession, first_page: int, max_pages: int, total_pages: int,
    expected: list[int],
) -> None:  # fmt: skip
    fake.total_pages = total_pages
    c = client(session, fake)
    pages = await collect(
        tmdb.fetch_list_pages(c, "movie/popular", {}, max_pages=max_pages, operation="popular", first_page=first_page)
    )
    assert [p.page for p in pages] == expected
    assert sorted(fake.pages_requested()) == expected  # nothing beyond the cap is even asked for
    assert fake.pages_requested()[0] == first_page


async def test_an_empty_page_ends_the_listing(fake: FakeTmdb, session: aiohttp.ClientSession) -> None:
    fake.total_pages = 5
    fake.bodies[3] = {"page": 3, "results": [], "total_pages": 5, "total_results": 10}
    pages = await collect(tmdb.fetch_list_pages(client(session, fake), "movie/popular", {}, max_pages=10, operation="popular"))  # fmt: skip
    assert [p.page for p in pages] == [1, 2]


async def test_an_empty_first_page_is_yielded_and_nothing_more_is_asked(
    fake: FakeTmdb, session: aiohttp.ClientSession
) -> None:
    fake.bodies[1] = {"page": 1, "results": [], "total_pages": 5, "total_results": 0}
    pages = await collect(tmdb.fetch_list_pages(client(session, fake), "movie/popular", {}, max_pages=10, operation="popular"))  # fmt: skip
    assert [(p.page, p.results) for p in pages] == [(1, [])]
    assert fake.pages_requested() == [1]


async def test_a_list_body_without_results_is_a_bad_request(fake: FakeTmdb, session: aiohttp.ClientSession) -> None:
    fake.total_pages = 2
    fake.bodies[2] = {"page": 2, "total_pages": 2}
    with pytest.raises(BadRequestError, match=r"^tmdb: unexpected list body \('results'\) for movie/popular page 2$"):
        await collect(tmdb.fetch_list_pages(client(session, fake), "movie/popular", {}, max_pages=10, operation="popular"))  # fmt: skip


async def test_now_playing_asks_for_the_configured_language_and_region(
    fake: FakeTmdb, session: aiohttp.ClientSession
) -> None:
    fake.total_pages = 5
    configured = settings(fake, language="en-US", region="US", max_pages=2)
    c = tmdb.make_client(session, configured, Secrets(tmdb_api_key=V3_KEY))
    pages = await collect(tmdb.fetch_now_playing(c, configured))
    assert [p.page for p in pages] == [1, 2]
    assert [(r.path, dict(r.query)) for r in sorted(fake.requests, key=lambda r: r.query["page"])] == [
        ("/3/movie/now_playing", {"language": "en-US", "region": "US", "page": str(n), "api_key": V3_KEY})
        for n in (1, 2)
    ]
    assert c.stats.requests == {"now_playing": 2}


# --- movie details ---------------------------------------------------------------------------------------


async def test_movie_details_are_yielded_as_they_arrive(fake: FakeTmdb, session: aiohttp.ClientSession) -> None:
    fake.hold(11, 22, 33)
    c = client(session, fake)
    details = tmdb.fetch_movie_details(c, [11, 22, 33], "ko-KR")
    first = asyncio.ensure_future(anext(details))
    await fake.wait_for_requests(3)  # all three asked for at once
    arrived: list[tuple[int, Any]] = []
    for movie_id in (33, 11, 22):
        fake.release(movie_id)
        arrived.append(await within(first if not arrived else anext(details)))
    assert arrived == [(33, {"id": 33, "title": "movie 33"}), (11, {"id": 11, "title": "movie 11"}),
                       (22, {"id": 22, "title": "movie 22"})]  # fmt: skip
    with pytest.raises(StopAsyncIteration):
        await anext(details)
    assert sorted((r.path, dict(r.query)) for r in fake.requests) == [
        (f"/3/movie/{n}", {"language": "ko-KR", "api_key": V3_KEY}) for n in (11, 22, 33)
    ]
    assert c.stats.requests == {"movie": 3}


async def test_a_movie_tmdb_does_not_know_yields_its_not_found_error(
    fake: FakeTmdb, session: aiohttp.ClientSession
) -> None:
    fake.replies[13] = (404, NOT_FOUND)
    c = client(session, fake)
    results = dict(await collect(tmdb.fetch_movie_details(c, [12, 13, 14], "en-US")))
    assert sorted(results) == [12, 13, 14]
    assert results[12] == {"id": 12, "title": "movie 12"} and results[14] == {"id": 14, "title": "movie 14"}
    error = results[13]
    assert isinstance(error, NotFoundError)
    assert (error.status, error.code, error.operation) == (404, "34", "movie")
    assert error.url == f"GET {fake.base_url}/movie/13?language=en-US"  # the key is not part of it
    assert V3_KEY not in str(error)
    assert c.stats.actions == {"not_found:skipped": 1} and c.stats.failures == {"not_found": 1}


async def test_any_other_details_error_is_raised(fake: FakeTmdb, session: aiohttp.ClientSession) -> None:
    fake.replies[15] = (401, {"success": False, "status_code": 7, "status_message": "Invalid API key"})
    c = client(session, fake)
    with pytest.raises(AuthError):
        await collect(tmdb.fetch_movie_details(c, [15], "ko-KR"))
    assert "not_found:skipped" not in c.stats.actions


async def test_no_ids_no_requests(fake: FakeTmdb, session: aiohttp.ClientSession) -> None:
    assert await collect(tmdb.fetch_movie_details(client(session, fake), [], "ko-KR")) == []
    assert fake.requests == []


# --- the key ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "authorization", "api_key"),
    [
        pytest.param(V4_TOKEN, f"Bearer {V4_TOKEN}", None, id="v4-token"),
        pytest.param(V3_KEY, None, V3_KEY, id="v3-key"),
        pytest.param("eyJ-not-a-token", None, "eyJ-not-a-token", id="eyJ-but-no-jwt"),
    ],
)
async def test_make_client_sends_a_v4_token_as_bearer_and_a_v3_key_as_api_key(
    fake: FakeTmdb, session: aiohttp.ClientSession, key: str, authorization: str | None, api_key: str | None
) -> None:
    body = await client(session, fake, key=key).get("movie/550", {"language": "ko-KR"}, "movie")
    assert body == {"id": 550, "title": "movie 550"}
    [request] = fake.requests
    assert request.path == "/3/movie/550"
    assert request.headers.get("Authorization") == authorization
    assert request.query.get("api_key") == api_key
    assert dict(request.query) == {"language": "ko-KR"} | ({"api_key": api_key} if api_key else {})


@pytest.mark.parametrize("attempts", [1, 3])
async def test_make_client_applies_the_source_settings(
    fake: FakeTmdb, session: aiohttp.ClientSession, attempts: int
) -> None:
    fake.replies[1] = (503, {"success": False, "status_code": 11, "status_message": "Internal error."})
    fake.reply_headers["Retry-After"] = "0"
    c = client(session, fake, attempts=attempts)
    with pytest.raises(TransientError, match=r"^tmdb: HTTP 503, status_code 11: Internal error\. for GET http"):
        await c.get("movie/1", {}, "movie")
    assert len(fake.requests) == attempts and c.stats.requests == {"movie": attempts}
    assert c.stats.actions["transient:gave_up"] == 1
