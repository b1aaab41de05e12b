"""What the AirKorea API serves, defined once in ``pipeline.extract.airkorea``: windows, the newest published
hour, query parameters and call planning — held against the simulator's own, independent copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from pipeline.config import AirKoreaSettings, parse_settings
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
    assert ak.sido_calls(settings.sidos, 1000) == 17
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


class FakeAirKorea:
    """Serves ``pages[n]`` (items, totalCount) for pageNo n + 1; records every query."""

    def __init__(self, pages: list[tuple[int, int]]) -> None:
        self.pages = pages
        self.queries: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        page, rows = int(request.query["pageNo"]), int(request.query["numOfRows"])
        count, total = self.pages[page - 1] if page <= len(self.pages) else (0, 0)
        items = [{"stationName": f"s{page}-{i}", "dataTime": "2026-11-28 09:00"} for i in range(count)]
        return web.json_response(page_body(items, total, page, rows))


async def fetch_all(fake: FakeAirKorea, server: AiohttpServer, rows: int, sido: str = "서울") -> list[int]:
    app = web.Application()
    app.router.add_get(f"/B552584/{ak.SERVICE}/{ak.SIDO_OPERATION}", fake.handle)
    test_server = await server(app)
    settings = AirKoreaSettings(base_url=str(test_server.make_url("/B552584")), num_of_rows=rows, rate_limit=50)
    async with make_session() as session:
        client = ak.make_client(session, settings, Secrets(data_go_api_key="k+ey/="))
        return [len(page.items) async for page in ak.fetch_sido_pages(client, sido, settings)]


@pytest.mark.parametrize(
    ("pages", "rows", "fetched", "requests"),
    [
        pytest.param([(3, 3)], 10, [3], 1, id="one page"),
        pytest.param([(2, 5), (2, 5), (1, 5)], 2, [2, 2, 1], 3, id="totalCount pages"),
        pytest.param([(2, 0), (2, 0), (1, 0)], 2, [2, 2, 1], 3, id="totalCount 0: full pages go on"),
        pytest.param([(2, 3), (2, 3), (0, 3)], 2, [2, 2], 3, id="under-reported: a full second page asks a third"),
        pytest.param([(2, 6), (0, 6)], 2, [2], 2, id="an empty page stops before totalCount"),
        pytest.param([(0, 0)], 10, [], 1, id="nothing"),
    ],
)
async def test_pages_follow_total_count_and_stop_at_an_empty_or_short_page(
    pages: list[tuple[int, int]], rows: int, fetched: list[int], requests: int, aiohttp_server: AiohttpServer
) -> None:
    fake = FakeAirKorea(pages)
    assert await fetch_all(fake, aiohttp_server, rows) == fetched
    assert len(fake.queries) == requests
    assert [q["pageNo"] for q in fake.queries] == [str(n) for n in range(1, requests + 1)]
    assert fake.queries[0] == {**ak.sido_query("서울", ver="1.5", rows=rows), "serviceKey": "k+ey/="}
