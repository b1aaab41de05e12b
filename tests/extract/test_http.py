"""The request gate against a scripted server on 127.0.0.1: retries, Retry-After, no retry storms, encoding."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pipeline.config import AirKoreaSettings
from pipeline.errors import AuthError, QuotaError, TransientError
from pipeline.extract import airkorea
from pipeline.extract.http import RequestStats, SourceClient, job_stats
from pipeline.keys import Secrets
from pipeline.redaction import redact

OK = '{"response":{"body":{"totalCount":1,"items":[{"stationName":"중구"}],"pageNo":1,"numOfRows":10},' \
     '"header":{"resultMsg":"NORMAL_CODE","resultCode":"00"}}}'  # fmt: skip
GATEWAY = ("<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg><returnAuthMsg>{m}</returnAuthMsg>"
           "<returnReasonCode>{c}</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>")  # fmt: skip
KEY = "Key+With/Special=="


Script = list[Callable[[web.Request], web.StreamResponse]]


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Script, list[web.Request]]]:
    script: Script = []
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        if script:
            return script.pop(0)(request)
        return web.Response(text=OK, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv, script, seen
    finally:
        await srv.close()


def client(session: aiohttp.ClientSession, srv: TestServer, **kw: Any) -> SourceClient:
    options: dict[str, Any] = {"concurrency": 4, "rate_limit": 1000.0, "timeout": 5.0, "attempts": 4,
                               "max_retry_time": 30.0, "backoff_base": 0.01, "backoff_max": 0.05} | kw  # fmt: skip
    return SourceClient(session, source="airkorea", base_url=str(srv.make_url("/B552584/Svc")),
                        classify=airkorea.classify, params={"serviceKey": KEY}, **options)  # fmt: skip


def respond(
    text: str, status: int = 200, headers: dict[str, str] | None = None
) -> Callable[[web.Request], web.Response]:
    return lambda _request: web.Response(text=text, status=status, headers=headers)


async def test_transient_failures_are_retried_and_counted(server: Any) -> None:
    srv, script, seen = server
    script += [respond("busy", 503), respond(GATEWAY.format(m="SERVICETIMEOUT_ERROR", c="05")), respond("x", 429)]
    async with aiohttp.ClientSession() as session:
        c = client(session, srv)
        page = await c.get("op", {"pageNo": "1"}, "op")
    assert page.items == [{"stationName": "중구"}]
    assert len(seen) == 4 and c.stats.requests["op"] == 4 and c.stats.retries == 3
    assert c.stats.failures["transient"] == 3 and c.stats.actions["transient:retried"] == 3


async def test_retry_after_is_honoured(server: Any) -> None:
    srv, script, seen = server
    script += [respond("slow down", 429, {"Retry-After": "1"})]
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        await client(session, srv).get("op", {}, "op")
        assert time.monotonic() - started >= 0.95
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (GATEWAY.format(m="SERVICE_KEY_IS_NOT_REGISTERED_ERROR", c="30"), 200, AuthError),
        (GATEWAY.format(m="LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR", c="22"), 200, QuotaError),
        ("Forbidden", 403, AuthError),
    ],
)
async def test_auth_and_quota_are_never_retried_and_stop_further_calls(
    server: Any, body: str, status: int, error: type[Exception]
) -> None:
    srv, script, seen = server
    script += [respond(body, status)]
    async with aiohttp.ClientSession() as session:
        c = client(session, srv)
        with pytest.raises(error):
            await c.get("op", {}, "op")
        with pytest.raises(error):  # the source (auth) or the operation (quota) is not called again
            await c.get("op", {}, "op")
    assert len(seen) == 1


async def test_attempts_are_capped(server: Any) -> None:
    srv, script, seen = server
    script += [respond("down", 500)] * 10
    async with aiohttp.ClientSession() as session:
        c = client(session, srv, attempts=3)
        with pytest.raises(TransientError, match="HTTP 500"):
            await c.get("op", {}, "op")
    assert len(seen) == 3 and c.stats.actions["transient:gave_up"] == 1


async def test_connection_reset_and_truncated_body_are_transient(server: Any) -> None:
    srv, script, seen = server

    def reset(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(text="never sent")

    script += [reset, respond('{"response": {"header": {"resultCode": "00"}, "body": {"items": [')]
    async with aiohttp.ClientSession() as session:
        c = client(session, srv)
        await c.get("op", {}, "op")
    # aiohttp itself re-sends an idempotent GET once after a reset; the truncated body is our retry
    assert len(seen) == 3 and c.stats.failures["transient"] >= 1 and c.stats.requests["op"] >= 2


async def test_the_decoded_key_is_sent_encoded_exactly_once_and_never_leaks(server: Any) -> None:
    srv, script, seen = server
    redact.add(KEY)
    script += [respond("Forbidden", 403)]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AuthError) as caught:
            await client(session, srv).get("op", {"stationName": "종로구"}, "op")
        await client(session, srv).get("op", {}, "op")
    assert seen[-1].query["serviceKey"] == KEY  # the server decodes it once back to the original
    assert "Key%2BWith%2FSpecial%3D%3D" in seen[-1].query_string or "Key%2BWith/Special%3D%3D" in seen[-1].query_string
    message = str(caught.value) + caught.value.url
    assert "Key" not in message and "%2B" not in message and "stationName" in message


async def test_concurrency_bound_and_smooth_rate(server: Any) -> None:
    srv, _script, seen = server
    in_flight, peak = 0, 0

    async def slow(_request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.Response(text=OK)

    srv.app.router._frozen = False
    srv.app.router.add_get("/slow/{tail:.*}", slow)
    async with aiohttp.ClientSession() as session:
        c = SourceClient(session, source="airkorea", base_url=str(srv.make_url("/slow")), classify=airkorea.classify,
                         concurrency=3, rate_limit=50.0, timeout=5, attempts=1, max_retry_time=5)  # fmt: skip
        started = time.monotonic()
        await asyncio.gather(*(c.get("op", {}, "op") for _ in range(20)))
        elapsed = time.monotonic() - started
    assert peak <= 3
    assert elapsed >= 19 / 50 * 0.9  # 20 requests at 50/s, no initial burst


async def test_requests_are_also_counted_for_the_current_job(server: Any) -> None:
    srv, _script, _seen = server
    mine = RequestStats()
    async with aiohttp.ClientSession() as session:
        c = client(session, srv)
        token = job_stats.set(mine)
        try:
            await c.get("op", {}, "op")
        finally:
            job_stats.reset(token)
        await c.get("op", {}, "other")
    assert mine.requests == {"op": 1} and c.stats.requests == {"op": 1, "other": 1}


def test_settings_feed_the_client() -> None:
    settings = AirKoreaSettings()
    assert settings.concurrency <= 16 and Secrets().data_go_api_key is None
