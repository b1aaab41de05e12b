from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
from yarl import URL

from pipeline.simulator import (
    OPERATIONS,
    SIM_DATA_GO_KEY,
    SIM_TMDB_API_KEY,
    SIM_TMDB_READ_TOKEN,
    Simulator,
    SimulatorState,
    airkorea_data,
    serve,
    tmdb_data,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CTPRVN = "getCtprvnRltmMesureDnsty"
MSRSTN = "getMsrstnAcctoRltmMesureDnsty"
V3 = {"api_key": SIM_TMDB_API_KEY}
BEARER = {"Authorization": f"Bearer {SIM_TMDB_READ_TOKEN}"}


def ak(sim: Simulator, operation: str) -> str:
    return f"{sim.airkorea_base_url}/ArpltnInforInqireSvc/{operation}"


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


async def fetch(
    session: aiohttp.ClientSession,
    url: str | URL,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, str, Mapping[str, str]]:
    async with session.get(url, params=params, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text(), response.headers


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    status, _, text, _ = await fetch(session, url, params, headers)
    return status, json.loads(text)


async def air(session: aiohttp.ClientSession, sim: Simulator, operation: str, **params: str) -> tuple[int, str, str]:
    query = {"serviceKey": SIM_DATA_GO_KEY, **params}
    status, content_type, text, _ = await fetch(session, ak(sim, operation), query)
    return status, content_type, text


# ================================================================================================ TMDB


async def test_now_playing_kr_pages_with_reranking_duplicate(sim: Simulator, session: aiohttp.ClientSession) -> None:
    url = f"{sim.tmdb_base_url}/movie/now_playing"
    params = {**V3, "region": "KR", "language": "ko-KR"}
    status, first = await get_json(session, url, params)
    assert status == 200
    assert list(first) == ["dates", "page", "results", "total_pages", "total_results"]
    assert first["dates"] == {"maximum": "2025-01-22", "minimum": "2024-12-11"}
    total, pages = first["total_results"], first["total_pages"]
    assert 80 <= total <= 150
    assert pages == -(-total // 20)
    item_keys = list(fixture_json("tmdb/now_playing_p1_ko-KR_region-KR_2025-01.json")["results"][0])
    assert all(list(item) == item_keys for item in first["results"])

    results = [first["results"]]
    for page in range(2, pages + 1):
        status, body = await get_json(session, url, {**params, "page": str(page)})
        assert status == 200 and body["page"] == page and body["total_results"] == total
        results.append(body["results"])
    assert all(len(r) == 20 for r in results[:-1])
    assert results[2][0]["id"] == results[1][-1]["id"]  # the re-ranking duplicate
    ids = [item["id"] for page_items in results for item in page_items]
    assert len(set(ids)) == total  # nothing lost
    assert len(ids) == total + 1  # pages from 3 on are shifted by one: a single duplicate
    pops = [item["popularity"] for item in results[0]]
    assert pops[0] >= pops[-1]
    window = ("2024-12-11", "2025-01-22")
    in_window = [i for r in results for i in r if window[0] <= i["release_date"] <= window[1]]
    assert len(in_window) >= total * 0.9


async def test_now_playing_worldwide_is_bigger(sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, body = await get_json(session, f"{sim.tmdb_base_url}/movie/now_playing", V3)
    assert status == 200
    assert body["total_results"] >= 250
    assert body["results"][0]["title"]  # en-US default


@pytest.mark.parametrize("page", ["0", "501", "-1", "abc", "1.5"])
async def test_invalid_page_is_code_22(sim: Simulator, session: aiohttp.ClientSession, page: str) -> None:
    for path in ("/movie/now_playing", "/discover/movie"):
        status, body = await get_json(session, sim.tmdb_base_url + path, {**V3, "page": page})
        assert status == 400
        assert body == fixture_json("tmdb/error_bodies.json")["http400_invalid_page_code22"]


async def test_page_beyond_total_is_empty(sim: Simulator, session: aiohttp.ClientSession) -> None:
    url = f"{sim.tmdb_base_url}/movie/now_playing"
    _, first = await get_json(session, url, {**V3, "region": "KR"})
    status, body = await get_json(session, url, {**V3, "region": "KR", "page": "500"})
    assert status == 200
    assert body["results"] == []
    assert (body["total_pages"], body["total_results"]) == (first["total_pages"], first["total_results"])


async def test_movie_details_shape(sim: Simulator, session: aiohttp.ClientSession) -> None:
    _, listing = await get_json(session, f"{sim.tmdb_base_url}/movie/now_playing", {**V3, "region": "KR"})
    movie_id = listing["results"][0]["id"]
    status, body = await get_json(session, f"{sim.tmdb_base_url}/movie/{movie_id}", V3)
    assert status == 200
    assert list(body) == list(fixture_json("tmdb/movie_details_11_en-US_official-docs-example.json"))
    assert body["id"] == movie_id
    assert body["status"] == "Released"
    assert isinstance(body["genres"], list) and isinstance(body["origin_country"], list)
    assert body["belongs_to_collection"] is None or set(body["belongs_to_collection"]) == {
        "id",
        "name",
        "poster_path",
        "backdrop_path",
    }


async def test_movie_details_language_and_appends(sim: Simulator, session: aiohttp.ClientSession) -> None:
    untranslated = next(m for m in tmdb_data.catalogue().movies if m.title_ko is None and m.genre_ids)
    url = f"{sim.tmdb_base_url}/movie/{untranslated.id}"
    _, ko = await get_json(session, url, {**V3, "language": "ko-KR", "append_to_response": "release_dates,bogus"})
    assert ko["title"] == untranslated.original_title
    assert ko["overview"] == ""
    assert "bogus" not in ko
    assert set(ko["release_dates"]) == {"results"}
    korean = next(
        m for m in tmdb_data.catalogue().movies if m.original_language == "en" and m.title_ko and 28 in m.genre_ids
    )
    _, translated = await get_json(session, f"{sim.tmdb_base_url}/movie/{korean.id}", {**V3, "language": "ko-KR"})
    assert translated["title"] == korean.title_ko
    assert {"id": 28, "name": "액션"} in translated["genres"]
    too_many = ",".join(f"x{i}" for i in range(21))
    status, body = await get_json(session, url, {**V3, "append_to_response": too_many})
    assert status == 400 and body["status_code"] == 27


@pytest.mark.parametrize("movie_id", ["1", "abc", "699999", str(tmdb_data.ID_BASE + 15)])
async def test_unknown_movie_is_404_code_34(sim: Simulator, session: aiohttp.ClientSession, movie_id: str) -> None:
    status, body = await get_json(session, f"{sim.tmdb_base_url}/movie/{movie_id}", V3)
    assert status == 404
    assert body == {
        "success": False,
        "status_code": 34,
        "status_message": "The resource you requested could not be found.",
    }


async def test_unknown_tmdb_path_is_404(sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, body = await get_json(session, f"{sim.tmdb_base_url}/tv/popular", V3)
    assert status == 404 and body["status_code"] == 34


async def test_tmdb_auth(sim: Simulator, session: aiohttp.ClientSession) -> None:
    url = f"{sim.tmdb_base_url}/movie/now_playing"
    assert (await get_json(session, url, V3))[0] == 200
    assert (await get_json(session, url, headers=BEARER))[0] == 200
    invalid = fixture_json("tmdb/error_bodies.json")["http401_invalid_api_key__recorded_2022"]
    for params, headers in [
        ({"api_key": "0" * 32}, None),
        ({"api_key": SIM_TMDB_READ_TOKEN}, None),  # the JWT is not a v3 key
        (None, None),
        (None, {"Authorization": f"Bearer {SIM_TMDB_API_KEY}"}),
    ]:
        status, _, text, _ = await fetch(session, url, params, headers)
        assert status == 401
        assert json.loads(text) == invalid
        assert text.startswith('{"status_code":7')


async def test_discover_filters_by_kr_release_window(sim: Simulator, session: aiohttp.ClientSession) -> None:
    url = f"{sim.tmdb_base_url}/discover/movie"
    params = {
        **V3,
        "region": "KR",
        "release_date.gte": "2024-03-01",
        "release_date.lte": "2024-03-31",
        "with_release_type": "2|3",
        "language": "ko-KR",
    }
    status, body = await get_json(session, url, params)
    assert status == 200
    assert list(body) == ["page", "results", "total_pages", "total_results"]
    assert 60 <= body["total_results"] <= 130
    ids: set[int] = set()
    for page in range(1, body["total_pages"] + 1):
        _, page_body = await get_json(session, url, {**params, "page": str(page)})
        ids |= {item["id"] for item in page_body["results"]}
    assert len(ids) == body["total_results"]
    for movie_id in ids:
        movie = tmdb_data.catalogue().by_id[movie_id]
        assert any("2024-03-01" <= d.isoformat() <= "2024-03-31" for d in movie.kr_dates())
    _, by_date = await get_json(session, url, {**params, "sort_by": "primary_release_date.asc"})
    assert body["total_results"] == by_date["total_results"]
    # Sorted by the primary release date (items show the KR date, which can differ).
    primary = [tmdb_data.catalogue().by_id[i["id"]].primary_release for i in by_date["results"]]
    present = [d for d in primary if d is not None]
    assert present == sorted(present) and primary[: len(present)] == present

    _, none = await get_json(session, url, {**params, "with_release_type": "4"})
    assert none["total_results"] == 0 and none["results"] == []
    for comma in ("3", "2,3"):
        assert (await get_json(session, url, {**params, "with_release_type": comma}))[1]["total_results"] > 0
    status, bad = await get_json(session, url, {**params, "release_date.gte": "2024/03/01"})
    assert status == 400 and bad["status_code"] == 23


# ================================================================================================ AirKorea


async def test_ctprvn_json_envelope_ver_15(sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, content_type, text = await air(session, sim, CTPRVN, returnType="json", sidoName="서울", ver="1.5")
    assert status == 200
    assert content_type == "application/json;charset=UTF-8"
    body = json.loads(text)
    reference = fixture_json("airkorea/ctprvn_seoul_v1.5_numOfRows1.json")
    assert list(body) == ["response"]
    assert list(body["response"]) == ["body", "header"]
    assert list(body["response"]["body"]) == ["totalCount", "items", "pageNo", "numOfRows"]
    assert body["response"]["header"] == {"resultMsg": "NORMAL_CODE", "resultCode": "00"}
    assert (body["response"]["body"]["totalCount"], body["response"]["body"]["pageNo"]) == (40, 1)
    assert body["response"]["body"]["numOfRows"] == 10
    items = body["response"]["body"]["items"]
    assert len(items) == 10
    assert all(set(item) == set(reference["response"]["body"]["items"][0]) for item in items)
    assert all(isinstance(v, str) or v is None for item in items for v in item.values())
    assert all(item["sidoName"] == "서울" and item["dataTime"] == "2025-01-20 12:00" for item in items)
    assert all(item["stationCode"].startswith("111") for item in items)


async def test_ctprvn_without_ver_has_no_pm25(sim: Simulator, session: aiohttp.ClientSession) -> None:
    _, _, text = await air(session, sim, CTPRVN, returnType="JSON", sidoName="서울", numOfRows="100")
    body = json.loads(text)["response"]["body"]
    reference = fixture_json("airkorea/ctprvn_seoul_nover.json")["response"]["body"]["items"][0]
    assert len(body["items"]) == 40
    assert all(list(item) == list(reference) for item in body["items"])
    assert not any(key.startswith("pm25") for item in body["items"] for key in item)
    names = [item["stationName"] for item in body["items"]]
    assert len(set(names)) == 40 and names != sorted(names)


async def test_ctprvn_defaults_to_xml(sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, content_type, text = await air(session, sim, CTPRVN, sidoName="서울", numOfRows="100")
    assert status == 200
    assert content_type == "text/xml;charset=UTF-8"
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <header>')
    root = ElementTree.fromstring(text)
    assert root.findtext("header/resultCode") == "00"
    body = root.find("body")
    assert body is not None
    assert [child.tag for child in body] == ["items", "numOfRows", "pageNo", "totalCount"]
    assert body.findtext("totalCount") == "40"
    items = body.findall("items/item")
    assert len(items) == 40
    assert "<coFlag/>" in text or "<pm10Flag/>" in text  # null -> empty element
    assert all(item.findtext("sidoName") == "서울" for item in items)


async def test_ctprvn_pagination_national_and_unknown_sido(sim: Simulator, session: aiohttp.ClientSession) -> None:
    _, _, text = await air(session, sim, CTPRVN, returnType="json", sidoName="서울", numOfRows="15", pageNo="3")
    body = json.loads(text)["response"]["body"]
    assert (body["totalCount"], len(body["items"]), body["pageNo"], body["numOfRows"]) == (40, 10, 3, 15)
    _, _, text = await air(session, sim, CTPRVN, returnType="json", sidoName="전국", numOfRows="1000", ver="1.3")
    national = json.loads(text)["response"]["body"]
    assert 640 <= national["totalCount"] == len(national["items"]) <= 675
    assert len({item["stationName"] for item in national["items"]}) == national["totalCount"]
    _, _, text = await air(session, sim, CTPRVN, returnType="json", sidoName="평양")
    empty = json.loads(text)["response"]
    assert empty["header"]["resultCode"] == "00" and empty["body"]["totalCount"] == 0 and empty["body"]["items"] == []


async def test_ctprvn_order_changes_every_hour(
    sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession
) -> None:
    _, _, first = await air(session, sim, CTPRVN, returnType="json", sidoName="서울", numOfRows="40")
    state.clock = state.now() + timedelta(hours=1)
    _, _, second = await air(session, sim, CTPRVN, returnType="json", sidoName="서울", numOfRows="40")
    names_1 = [i["stationName"] for i in json.loads(first)["response"]["body"]["items"]]
    items_2 = json.loads(second)["response"]["body"]["items"]
    assert names_1 != [i["stationName"] for i in items_2]
    assert items_2[0]["dataTime"] == "2025-01-20 13:00"


async def test_msrstn_daily(sim: Simulator, session: aiohttp.ClientSession) -> None:
    _, _, text = await air(
        session, sim, MSRSTN, returnType="json", stationName="종로구", dataTerm="DAILY", numOfRows="100", ver="1.3"
    )
    body = json.loads(text)["response"]["body"]
    assert body["totalCount"] == 24 and len(body["items"]) == 24
    times = [item["dataTime"] for item in body["items"]]
    assert times[0] == "2025-01-20 12:00" and times[-1] == "2025-01-19 13:00"
    assert times == sorted(times, reverse=True)
    assert "2025-01-19 24:00" in times
    assert not any(t.endswith("00:00") for t in times)
    assert not any("sidoName" in item or "stationName" in item or "stationCode" in item for item in body["items"])
    assert all(item["mangName"] == "도시대기" for item in body["items"])
    reference = fixture_json("airkorea/msrstn_daily_v1.0.json")["response"]["body"]["items"][0]
    _, _, text = await air(session, sim, MSRSTN, returnType="json", stationName="종로구", dataTerm="daily", ver="1.0")
    assert all(list(item) == list(reference) for item in json.loads(text)["response"]["body"]["items"])
    _, _, text = await air(session, sim, MSRSTN, returnType="json", stationName="종로구", ver="1.4")
    items = json.loads(text)["response"]["body"]["items"]
    assert all(item["stationName"] == "종로구" and item["stationCode"] == "111123" for item in items)
    assert not any("sidoName" in item for item in items)


async def test_msrstn_month_terms(sim: Simulator, session: aiohttp.ClientSession) -> None:
    for term, expected in (("MONTH", 720), ("3MONTH", 2208), ("month", 720)):
        _, _, text = await air(
            session, sim, MSRSTN, returnType="json", stationName="정릉로", dataTerm=term, numOfRows="1"
        )
        assert json.loads(text)["response"]["body"]["totalCount"] == expected
    _, _, text = await air(
        session, sim, MSRSTN, returnType="json", stationName="정릉로", dataTerm="3MONTH", numOfRows="1000", pageNo="3"
    )
    last_page = json.loads(text)["response"]["body"]["items"]
    assert len(last_page) == 208
    assert last_page[-1]["dataTime"] == airkorea_data.data_time(airkorea_data.newest_hour(sim.state.now()) - 2207)


async def test_msrstn_unknown_station_is_empty(sim: Simulator, session: aiohttp.ClientSession) -> None:
    _, _, text = await air(session, sim, MSRSTN, returnType="json", stationName="구로동", numOfRows="1", ver="1.3")
    assert text == (FIXTURES / "airkorea/msrstn_unknown_station_empty.json").read_text(encoding="utf-8").strip()
    _, _, text = await air(session, sim, MSRSTN, returnType="json", stationName="구로동", numOfRows="7")
    assert json.loads(text)["response"]["body"]["numOfRows"] == 7


async def test_missing_mandatory_parameter_is_code_11(sim: Simulator, session: aiohttp.ClientSession) -> None:
    for operation in (CTPRVN, MSRSTN):
        status, content_type, text = await air(session, sim, operation, returnType="json")
        assert status == 200 and content_type.startswith("text/xml")
        assert "<returnReasonCode>11</returnReasonCode>" in text
        assert "NO_MANDATORY_REQUEST_PARAMETERS_ERROR" in text


async def test_service_key_encoding(sim: Simulator, session: aiohttp.ClientSession) -> None:
    url = ak(sim, CTPRVN)
    good = {"returnType": "json", "sidoName": "서울", "serviceKey": SIM_DATA_GO_KEY}
    status, _, text, _ = await fetch(session, url, good)
    assert status == 200 and json.loads(text)["response"]["header"]["resultCode"] == "00"

    # The portal's "Encoding" key put through params is encoded a second time (%2B -> %252B).
    encoding_key = SIM_DATA_GO_KEY.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    expected = (FIXTURES / "airkorea/error_key_not_registered.xml").read_text(encoding="utf-8")
    for bad in (encoding_key, "wrong", ""):
        status, content_type, text, _ = await fetch(session, url, {**good, "serviceKey": bad})
        assert status == 200
        assert content_type == "text/xml;charset=UTF-8"
        assert text == expected
    status, _, text, _ = await fetch(session, url, {k: v for k, v in good.items() if k != "serviceKey"})
    assert text == expected

    # The Encoding key in a hand-built URL works; a raw "+" decodes to a space and fails.
    sido = "%EC%84%9C%EC%9A%B8"
    by_hand = URL(f"{url}?serviceKey={encoding_key}&returnType=json&sidoName={sido}", encoded=True)
    assert json.loads((await fetch(session, by_hand))[2])["response"]["header"]["resultCode"] == "00"
    raw_plus = URL(f"{url}?serviceKey={SIM_DATA_GO_KEY}&returnType=json&sidoName={sido}", encoded=True)
    assert "<returnReasonCode>30</returnReasonCode>" in (await fetch(session, raw_plus))[2]


async def test_unknown_airkorea_operation_is_404(sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, _, _ = await air(session, sim, "getMsrstnAcctoRmmrg")
    assert status == 404


# ================================================================================================ faults


async def test_429_with_and_without_retry_after(
    sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession
) -> None:
    url = f"{sim.tmdb_base_url}/movie/now_playing"
    state.add_fault("now_playing", "429", retry_after=2)
    state.add_fault("now_playing", "429")
    status, content_type, text, headers = await fetch(session, url, V3)
    assert status == 429 and headers["Retry-After"] == "2"
    assert content_type.startswith("application/json")
    assert json.loads(text) == {
        "success": False,
        "status_code": 25,
        "status_message": "Your request count (41) is over the allowed limit of (40).",
    }
    status, _, _, headers = await fetch(session, url, V3)
    assert status == 429 and "Retry-After" not in headers
    assert (await fetch(session, url, V3))[0] == 200

    state.add_fault(CTPRVN, "429", retry_after=1.5)
    status, content_type, _ = await air(session, sim, CTPRVN, sidoName="서울")
    assert status == 429 and content_type.startswith("text/plain")
    state.add_fault(CTPRVN, "429", retry_after=1.5)
    _, _, _, headers = await fetch(session, ak(sim, CTPRVN), {"serviceKey": SIM_DATA_GO_KEY, "sidoName": "서울"})
    assert headers["Retry-After"] == "1.5"


async def test_http_error_kinds(sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession) -> None:
    url = f"{sim.tmdb_base_url}/discover/movie"
    state.add_fault("discover", "500")
    status, _, text, _ = await fetch(session, url, V3)
    assert status == 500 and json.loads(text)["status_code"] == 11

    state.add_fault("*", "503_html", times=2)
    status, content_type, text, _ = await fetch(session, url, V3)
    assert status == 503 and content_type.startswith("text/html")
    assert text.startswith("<html><head><title>503 Service Temporarily Unavailable</title>")
    assert (await air(session, sim, CTPRVN, sidoName="서울"))[0] == 503

    state.add_fault("discover", "504_html")
    status, content_type, text, _ = await fetch(session, url, V3)
    assert status == 504 and content_type.startswith("text/html") and "504 Gateway Time-out" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)

    state.add_fault("movie", "401")
    status, _, text, _ = await fetch(session, f"{sim.tmdb_base_url}/movie/{tmdb_data.ID_BASE}", V3)
    assert status == 401 and json.loads(text)["status_code"] == 7
    state.add_fault(MSRSTN, "401")
    state.add_fault(MSRSTN, "403")
    assert (await air(session, sim, MSRSTN, stationName="종로구"))[::2] == (401, "Unauthorized")
    assert (await air(session, sim, MSRSTN, stationName="종로구"))[::2] == (403, "Forbidden")
    state.add_fault(MSRSTN, "500")
    assert (await air(session, sim, MSRSTN, stationName="종로구"))[0] == 500
    assert state.faults == []
    assert (await fetch(session, url, V3))[0] == 200


async def test_gateway_faults(sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession) -> None:
    state.add_fault(CTPRVN, "gateway")  # code 05, XML
    state.add_fault(CTPRVN, "gateway", code="05", fmt="json")
    state.add_fault(CTPRVN, "gateway", code="30")
    state.add_fault(CTPRVN, "gateway", code="22", fmt="json")
    status, content_type, text = await air(session, sim, CTPRVN, returnType="json", sidoName="서울")
    assert status == 200 and content_type == "text/xml;charset=UTF-8"
    root = ElementTree.fromstring(text)
    assert root.tag == "OpenAPI_ServiceResponse"
    assert root.findtext("cmmMsgHeader/errMsg") == "SERVICETIMEOUT_ERROR"
    assert root.findtext("cmmMsgHeader/returnReasonCode") == "05"
    status, content_type, text = await air(session, sim, CTPRVN, returnType="json", sidoName="서울")
    assert content_type.startswith("application/json")
    assert json.loads(text) == {
        "OpenAPI_ServiceResponse": {
            "cmmMsgHeader": {
                "errMsg": "SERVICETIMEOUT_ERROR",
                "returnAuthMsg": "서비스 연결실패 에러",
                "returnReasonCode": "05",
            }
        }
    }
    _, _, text = await air(session, sim, CTPRVN, sidoName="서울")
    assert text == (FIXTURES / "airkorea/error_key_not_registered.xml").read_text(encoding="utf-8")
    _, _, text = await air(session, sim, CTPRVN, returnType="json", sidoName="서울")
    header = json.loads(text)["OpenAPI_ServiceResponse"]["cmmMsgHeader"]
    assert header == {
        "errMsg": "SERVICE ERROR",
        "returnAuthMsg": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
        "returnReasonCode": "22",
    }
    with pytest.raises(ValueError, match="gateway code"):
        state.add_fault(CTPRVN, "gateway", code="77")


async def test_reset_fault_drops_the_connection(
    sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession
) -> None:
    # aiohttp 3.14 retries an idempotent request once after ClientOSError/ServerDisconnectedError (no opt-out),
    # so a GET client only sees a reset when two come in a row.
    state.add_fault("now_playing", "reset", times=2)
    state.add_fault(MSRSTN, "reset", times=2)
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(session, f"{sim.tmdb_base_url}/movie/now_playing", V3)
    with pytest.raises(aiohttp.ClientConnectionError):
        await air(session, sim, MSRSTN, stationName="종로구")
    assert (await fetch(session, f"{sim.tmdb_base_url}/movie/now_playing", V3))[0] == 200
    assert state.counters["now_playing"] == 3
    assert state.counters[MSRSTN] == 2


async def test_a_single_reset_is_absorbed_by_aiohttps_hidden_retry(
    sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession
) -> None:
    url = f"{sim.tmdb_base_url}/movie/now_playing"
    state.add_fault("now_playing", "reset")
    assert (await fetch(session, url, V3))[0] == 200
    assert state.counters["now_playing"] == 2


async def test_truncated_fault_raises_payload_error(
    sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession
) -> None:
    state.add_fault(MSRSTN, "truncated")
    state.add_fault("now_playing", "truncated")
    params = {"serviceKey": SIM_DATA_GO_KEY, "returnType": "json", "stationName": "종로구", "numOfRows": "100"}
    async with session.get(ak(sim, MSRSTN), params=params) as response:
        assert response.status == 200
        announced = response.content_length
        assert announced is not None and announced > 1000
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    async with session.get(f"{sim.tmdb_base_url}/movie/now_playing", params=V3) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.json()
    assert (await air(session, sim, MSRSTN, stationName="종로구"))[0] == 200


async def test_slow_fault_and_latency(sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession) -> None:
    state.add_fault(CTPRVN, "slow", delay=0.6)
    with pytest.raises(asyncio.TimeoutError):
        async with session.get(
            ak(sim, CTPRVN),
            params={"serviceKey": SIM_DATA_GO_KEY, "sidoName": "서울"},
            timeout=aiohttp.ClientTimeout(total=0.2),
        ) as response:
            await response.read()
    state.add_fault(CTPRVN, "slow", delay=0.2)
    started = time.monotonic()
    status, _, _ = await air(session, sim, CTPRVN, sidoName="서울")
    assert status == 200 and time.monotonic() - started >= 0.2
    state.latency = 0.15
    started = time.monotonic()
    assert (await fetch(session, f"{sim.tmdb_base_url}/movie/now_playing", V3))[0] == 200
    assert time.monotonic() - started >= 0.15


async def test_faults_fire_in_order_and_expire(
    sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession
) -> None:
    url = f"{sim.tmdb_base_url}/movie/now_playing"
    state.add_fault("*", "500", times=2)
    state.add_fault("now_playing", "503_html")
    assert (await fetch(session, url, V3))[0] == 500
    assert (await air(session, sim, CTPRVN, sidoName="서울"))[0] == 500  # "*" matches any operation
    assert (await fetch(session, url, V3))[0] == 503
    assert (await fetch(session, url, V3))[0] == 200
    assert state.faults == []
    with pytest.raises(ValueError, match="unknown operation"):
        state.add_fault("popular", "500")
    with pytest.raises(ValueError, match="unknown fault kind"):
        state.add_fault("*", "418")


async def test_daily_quota_resets_at_kst_midnight(
    sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession
) -> None:
    state.clock = datetime(2025, 1, 20, 14, 50, tzinfo=UTC)  # 23:50 KST
    state.daily_quota[CTPRVN] = 2
    for _ in range(2):
        assert json.loads((await air(session, sim, CTPRVN, returnType="json", sidoName="서울"))[2])
    status, content_type, text = await air(session, sim, CTPRVN, returnType="json", sidoName="서울")
    assert status == 200 and content_type.startswith("text/xml")
    assert "<returnAuthMsg>LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR</returnAuthMsg>" in text
    assert "<returnReasonCode>22</returnReasonCode>" in text
    assert (await air(session, sim, MSRSTN, returnType="json", stationName="종로구"))[1].startswith("application/json")
    state.clock = datetime(2025, 1, 20, 15, 0, 1, tzinfo=UTC)  # 00:00:01 KST next day
    status, content_type, _ = await air(session, sim, CTPRVN, returnType="json", sidoName="서울")
    assert content_type.startswith("application/json")
    assert state.counters[CTPRVN] == 4


async def test_counters_per_operation(sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession) -> None:
    await fetch(session, f"{sim.tmdb_base_url}/movie/now_playing", V3)
    await fetch(session, f"{sim.tmdb_base_url}/movie/now_playing")  # 401 still counts
    await fetch(session, f"{sim.tmdb_base_url}/movie/{tmdb_data.ID_BASE}", V3)
    await fetch(session, f"{sim.tmdb_base_url}/discover/movie", V3)
    state.add_fault(MSRSTN, "500")
    await air(session, sim, MSRSTN, stationName="종로구")  # faulted still counts
    await air(session, sim, CTPRVN)  # code 11 still counts
    await fetch(session, f"{sim.base_url}/_sim/stats")  # admin is not counted
    assert dict(state.counters) == {"now_playing": 2, "movie": 1, "discover": 1, CTPRVN: 1, MSRSTN: 1}
    assert set(state.counters) <= set(OPERATIONS)


async def test_admin_routes(sim: Simulator, state: SimulatorState, session: aiohttp.ClientSession) -> None:
    admin = f"{sim.base_url}/_sim"
    await fetch(session, f"{sim.tmdb_base_url}/movie/now_playing", V3)
    async with session.get(f"{admin}/stats") as response:
        stats = await response.json()
    assert stats["counters"] == {"now_playing": 1} and stats["peak_in_flight"] == {"now_playing": 1}
    assert stats["now"] == "2025-01-20T03:30:00+00:00"

    fault = {"operation": CTPRVN, "kind": "gateway", "times": 1, "retry_after": None, "code": "22", "fmt": "json"}
    async with session.post(f"{admin}/faults", json=fault) as response:
        assert response.status == 200
    _, _, text = await air(session, sim, CTPRVN, sidoName="서울")
    assert json.loads(text)["OpenAPI_ServiceResponse"]["cmmMsgHeader"]["returnReasonCode"] == "22"
    async with session.post(f"{admin}/faults", json={"operation": "x", "kind": "500"}) as response:
        assert response.status == 400

    async with session.post(f"{admin}/clock", json={"now": "2025-02-01T09:20:00+09:00"}) as response:
        assert (await response.json())["now"] == "2025-02-01T00:20:00+00:00"
    _, _, text = await air(session, sim, CTPRVN, returnType="json", sidoName="서울")
    assert json.loads(text)["response"]["body"]["items"][0]["dataTime"] == "2025-02-01 09:00"
    async with session.post(f"{admin}/clock", json={"now": "2025-02-01T09:20:00"}) as response:
        assert response.status == 400
    async with session.post(f"{admin}/clock", json={"now": None}) as response:
        assert response.status == 200
    assert state.clock is None

    async with session.post(f"{admin}/latency", json={"seconds": 0.05}) as response:
        assert response.status == 200
    assert state.latency == 0.05
    async with session.post(f"{admin}/quota", json={"operation": MSRSTN, "per_day": 0}) as response:
        assert response.status == 200
    assert "<returnReasonCode>22</returnReasonCode>" in (await air(session, sim, MSRSTN, stationName="종로구"))[2]
    async with session.post(f"{admin}/quota", json={"operation": MSRSTN, "per_day": None}) as response:
        assert response.status == 200
    assert state.daily_quota == {}

    state.add_fault("*", "500", times=5)
    async with session.post(f"{admin}/reset") as response:
        assert response.status == 200
    assert not state.counters and not state.faults and not state.quota_used


async def test_fixed_clock_is_deterministic(sim: Simulator, session: aiohttp.ClientSession) -> None:
    requests = [
        (f"{sim.tmdb_base_url}/movie/now_playing", {**V3, "region": "KR", "page": "2"}),
        (f"{sim.tmdb_base_url}/movie/{tmdb_data.ID_BASE + 3}", V3),
        (ak(sim, CTPRVN), {"serviceKey": SIM_DATA_GO_KEY, "sidoName": "경기", "ver": "1.5", "numOfRows": "200"}),
        (ak(sim, MSRSTN), {"serviceKey": SIM_DATA_GO_KEY, "stationName": "종로구", "dataTerm": "MONTH"}),
    ]
    for url, params in requests:
        first = await fetch(session, url, params)
        second = await fetch(session, url, params)
        assert first[0] == 200
        assert first[2] == second[2]


async def test_real_clock_mode_advances(state: SimulatorState, session: aiohttp.ClientSession) -> None:
    state.clock = None
    async with Simulator(state) as sim:
        before = airkorea_data.data_time(airkorea_data.newest_hour(datetime.now(UTC)))
        _, _, text = await air(session, sim, CTPRVN, returnType="json", sidoName="세종")
        after = airkorea_data.data_time(airkorea_data.newest_hour(datetime.now(UTC)))
        newest = json.loads(text)["response"]["body"]["items"][0]["dataTime"]
        assert newest in {before, after}
        state.clock = datetime.now(UTC) + timedelta(hours=3)
        _, _, text = await air(session, sim, CTPRVN, returnType="json", sidoName="세종")
        later = json.loads(text)["response"]["body"]["items"][0]["dataTime"]
        assert airkorea_data.data_time(airkorea_data.newest_hour(state.now())) == later != newest


# ================================================================================================ server


async def test_simulator_properties() -> None:
    simulator = Simulator()
    with pytest.raises(RuntimeError):
        _ = simulator.port
    async with simulator as sim:
        assert sim.port > 0
        assert sim.base_url == f"http://127.0.0.1:{sim.port}"
        assert sim.tmdb_base_url == f"{sim.base_url}/3"
        assert sim.airkorea_base_url == f"{sim.base_url}/B552584"
        assert sim.state.data_go_key == SIM_DATA_GO_KEY
    with pytest.raises(RuntimeError):
        _ = simulator.port


async def test_serve_runs_until_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.INFO, logger="pipeline.simulator.server")
    task = asyncio.create_task(serve("127.0.0.1", port, SimulatorState()))
    try:
        async with aiohttp.ClientSession() as client:
            for _ in range(100):
                try:
                    async with client.get(f"http://127.0.0.1:{port}/_sim/stats") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("serve() never started listening")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert f"http://127.0.0.1:{port}/3" in caplog.text
    assert f"http://127.0.0.1:{port}/B552584" in caplog.text
