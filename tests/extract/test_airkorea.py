"""What the AirKorea API serves, defined once in ``pipeline.extract.airkorea``: windows, the newest published
hour, query parameters and call planning — held against the simulator's own, independent copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from pipeline.config import SIDOS, AirKoreaSettings, parse_settings
from pipeline.extract import airkorea as ak
from pipeline.extract.http import make_session
from pipeline.keys import Secrets
from pipeline.simulator import airkorea_data as sim
from pipeline.transform.common import kst_label_to_utc


@pytest.mark.parametrize("minute", [0, 14, 15, 16, 59])
def test_the_newest_published_hour_agrees_with_the_simulator(minute: int) -> None:
    now = datetime(2026, 11, 28, 3, minute, 30, tzinfo=UTC)
    ours = ak.newest_published_hour(now)
    theirs = kst_label_to_utc(sim.data_time(sim.newest_hour(now)))
    assert ours == theirs
    assert ours <= now - ak.PUBLISH_DELAY < ours + timedelta(hours=1)


def test_every_window_reaches_no_further_than_the_simulator_serves_and_holds_its_rows() -> None:
    for window in ak.WINDOWS:
        served_hours = sim.DATA_TERM_HOURS[window.term]
        assert window.reach <= timedelta(hours=served_hours)
        assert window.rows >= served_hours
    assert [w.reach for w in ak.WINDOWS] == sorted(w.reach for w in ak.WINDOWS)
    assert ak.LARGEST_WINDOW.rows <= ak.MAX_ROWS_PER_PAGE  # a 3MONTH series fits one call


@pytest.mark.parametrize(
    ("reach", "term"),
    [
        (timedelta(hours=1), "DAILY"),
        (timedelta(hours=23), "DAILY"),
        (timedelta(hours=23, minutes=1), "MONTH"),
        (timedelta(days=30), "MONTH"),
        (timedelta(days=30, hours=1), "3MONTH"),
        (timedelta(days=92), "3MONTH"),
        (timedelta(days=92, hours=1), None),
    ],
)
def test_the_smallest_window_covering_a_reach(reach: timedelta, term: str | None) -> None:
    window = ak.smallest_window(reach)
    assert (window.term if window else None) == term


def test_reach_counts_the_oldest_hour_itself() -> None:
    now = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # newest published: the hour ending 00:00 UTC
    assert ak.reach_of(datetime(2026, 11, 28, 0, tzinfo=UTC), now) == timedelta(hours=1)
    assert ak.reach_of(datetime(2026, 11, 27, 2, tzinfo=UTC), now) == timedelta(hours=23)
    assert ak.oldest_served_hour(now) == datetime(2026, 11, 28, tzinfo=UTC) - timedelta(days=92) + timedelta(hours=1)


def test_queries_name_every_parameter_the_api_takes() -> None:
    assert ak.sido_query("서울", ver="1.5", rows=1000) == {
        "sidoName": "서울", "ver": "1.5", "returnType": "json", "numOfRows": "1000", "pageNo": "1",
    }  # fmt: skip
    assert ak.station_query("종로구", "MONTH", ver="1.0", rows=100, page=3) == {
        "stationName": "종로구", "dataTerm": "MONTH", "ver": "1.0", "returnType": "json", "numOfRows": "100",
        "pageNo": "3",
    }  # fmt: skip


def test_call_planning_follows_pages_and_windows() -> None:
    settings = parse_settings({}).sources.airkorea
    assert ak.sido_calls(SIDOS, 1000) == 17
    assert ak.sido_calls(settings.sidos, 1000) == 1  # the default: 전국
    assert ak.sido_calls(["전국"], 1000) == 1
    assert ak.sido_calls(["서울"], 100) == 2
    assert ak.station_calls(3, "DAILY", 1000) == 3
    assert ak.station_calls(3, "3MONTH", 1000) == 9
    assert ak.station_calls(2, "3MONTH", ak.MAX_ROWS_PER_PAGE) == 2


def test_the_default_timetable_polls_after_the_hour_is_published() -> None:
    jobs = parse_settings({}).schedule.jobs
    for name in ("airkorea_sido", "airkorea_stations"):
        cron = jobs[name].cron
        assert cron is not None
        minute = int(cron.split()[0])
        assert timedelta(minutes=minute) > ak.PUBLISH_DELAY, f"{name} polls before AirKorea publishes"


# --- fetching: paging by totalCount, which the API does not always get right --------------------------------


def page_body(items: list[dict[str, str]], total: int, page: int, rows: int) -> dict[str, object]:
    return {
        "response": {
            "body": {"totalCount": total, "items": items, "pageNo": page, "numOfRows": rows},
            "header": {"resultMsg": "NORMAL_CODE", "resultCode": "00"},
        }
    }


Answer = tuple[int, int]  # (items, totalCount)


class FakeAirKorea:
    """Serves ``pages[n]`` for pageNo n + 1 — an answer, or a list of answers for successive fetches of that
    page (the last one repeats); records every query."""

    def __init__(self, pages: list[Answer | list[Answer]]) -> None:
        self.pages = pages
        self.queries: list[dict[str, str]] = []
        self.fetched: dict[int, int] = {}

    async def handle(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        page, rows = int(request.query["pageNo"]), int(request.query["numOfRows"])
        answers = self.pages[page - 1] if page <= len(self.pages) else (0, 0)
        attempt = self.fetched[page] = self.fetched.get(page, 0) + 1
        count, total = answers[min(attempt, len(answers)) - 1] if isinstance(answers, list) else answers
        items = [{"stationName": f"s{page}-{i}", "dataTime": "2026-11-28 09:00"} for i in range(count)]
        return web.json_response(page_body(items, total, page, rows))


async def fetch_pages(fake: FakeAirKorea, server: AiohttpServer, rows: int, sido: str = "서울") -> list[ak.AirPage]:
    app = web.Application()
    app.router.add_get(f"/B552584/{ak.SERVICE}/{ak.SIDO_OPERATION}", fake.handle)
    test_server = await server(app)
    settings = AirKoreaSettings(base_url=str(test_server.make_url("/B552584")), num_of_rows=rows, rate_limit=50)
    async with make_session() as session:
        client = ak.make_client(session, settings, Secrets(data_go_api_key="k+ey/="))
        return [page async for page in ak.fetch_sido_pages(client, sido, settings)]


async def fetch_all(fake: FakeAirKorea, server: AiohttpServer, rows: int, sido: str = "서울") -> list[int]:
    return [len(page.items) for page in await fetch_pages(fake, server, rows, sido)]


@pytest.mark.parametrize(
    ("pages", "rows", "fetched", "requests"),
    [
        pytest.param([(3, 3)], 10, [3], 1, id="one page"),
        pytest.param([(2, 5), (2, 5), (1, 5)], 2, [2, 2, 1], 3, id="totalCount pages"),
        pytest.param([(2, 0), (2, 0), (1, 0)], 2, [2, 2, 1], 3, id="totalCount 0: full pages go on"),
        pytest.param([(2, 3), (2, 3), (0, 3)], 2, [2, 2], 3, id="under-reported: a full second page asks a third"),
        pytest.param([(2, 6), (0, 6)], 2, [2, 0], 3, id="an empty page before totalCount: fetched again, then stops"),
        pytest.param([(0, 0)], 10, [], 1, id="nothing"),
    ],
)
async def test_pages_follow_total_count_and_stop_at_an_empty_or_short_page(
    pages: list[Answer | list[Answer]], rows: int, fetched: list[int], requests: int, aiohttp_server: AiohttpServer
) -> None:
    fake = FakeAirKorea(pages)
    assert await fetch_all(fake, aiohttp_server, rows) == fetched
    assert len(fake.queries) == requests
    assert [q["pageNo"] for q in fake.queries] == sorted(q["pageNo"] for q in fake.queries)
    assert fake.queries[0] == {**ak.sido_query("서울", ver="1.5", rows=rows), "serviceKey": "k+ey/="}


async def test_a_short_page_is_fetched_once_more_and_the_fuller_answer_kept(aiohttp_server: AiohttpServer) -> None:
    fake = FakeAirKorea([(3, 7), [(1, 7), (3, 7)], (1, 7)])  # page 2 is short the first time only
    pages = await fetch_pages(fake, aiohttp_server, 3)
    assert [len(p.items) for p in pages] == [3, 3, 1] and [p.shortfall for p in pages] == [0, 0, 0]
    assert [q["pageNo"] for q in fake.queries] == ["1", "2", "2", "3"]


async def test_a_page_that_stays_short_is_kept_with_its_shortfall_and_paging_goes_on(
    aiohttp_server: AiohttpServer,
) -> None:
    fake = FakeAirKorea([(3, 8), (1, 8), (2, 8)])  # page 2 holds 1 of 3, twice
    pages = await fetch_pages(fake, aiohttp_server, 3)
    assert [(len(p.items), p.shortfall) for p in pages] == [(3, 0), (1, 2), (2, 0)]
    assert [q["pageNo"] for q in fake.queries] == ["1", "2", "2", "3"]
    assert pages[1].describe_shortfall("province 서울") == (
        "province 서울: page 2 held 1 of the 3 items its totalCount (8) promises, also when fetched again; "
        "kept what came"
    )


async def test_items_given_as_an_empty_string_are_an_empty_page(aiohttp_server: AiohttpServer) -> None:
    async def handle(request: web.Request) -> web.Response:
        body = page_body([], 0, 1, 10)
        body["response"]["body"]["items"] = ""  # type: ignore[index]
        return web.json_response(body)

    app = web.Application()
    app.router.add_get(f"/B552584/{ak.SERVICE}/{ak.SIDO_OPERATION}", handle)
    server = await aiohttp_server(app)
    settings = AirKoreaSettings(base_url=str(server.make_url("/B552584")), rate_limit=50)
    async with make_session() as session:
        client = ak.make_client(session, settings, Secrets(data_go_api_key="k"))
        assert [page async for page in ak.fetch_sido_pages(client, "세종", settings)] == []
