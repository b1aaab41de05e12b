"""The aiohttp application: both APIs on one port, plus ``/_sim/*`` admin routes.

Every API request goes through the same steps, in this order:

    count -> latency -> scripted fault -> daily quota -> credentials -> handler

so a faulted or rejected request still shows in ``state.counters``. Admin routes are not counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from aiohttp import web

from pipeline.simulator import airkorea, tmdb
from pipeline.simulator.faults import (
    Family,
    fault_response,
    gateway_response,
    json_response,
    reset_connection,
    tmdb_error,
    truncated_response,
)
from pipeline.simulator.state import OPERATIONS, SimulatorState

Handler = Callable[[web.Request, SimulatorState], Awaitable[web.StreamResponse]]
Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATE_KEY: Final = web.AppKey("simulator_state", SimulatorState)
AIRKOREA_PREFIX: Final = "/B552584/ArpltnInforInqireSvc"


def _api(state: SimulatorState, operation: str, family: Family, handler: Handler) -> Endpoint:
    async def normal(request: web.Request) -> web.StreamResponse:
        if not state.use_quota(operation):
            return gateway_response("22") if family == "airkorea" else tmdb_error(429, 25)
        if family == "tmdb" and not tmdb.authorized(request, state):
            return tmdb_error(401, 7)
        if family == "airkorea" and not airkorea.key_valid(request, state):
            return gateway_response("30")
        return await handler(request, state)

    async def endpoint(request: web.Request) -> web.StreamResponse:
        state.counters[operation] += 1
        state.in_flight[operation] += 1
        state.peak_in_flight[operation] = max(state.peak_in_flight[operation], state.in_flight[operation])
        try:
            return await answer(request)
        finally:
            state.in_flight[operation] -= 1

    async def answer(request: web.Request) -> web.StreamResponse:
        if state.latency > 0:
            await asyncio.sleep(state.latency)
        fault = state.take_fault(operation)
        if fault is None:
            return await normal(request)
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return await normal(request)
        if fault.kind == "reset":
            return reset_connection(request)
        if fault.kind == "truncated":
            real = await normal(request)
            if not isinstance(real, web.Response):
                return real
            return await truncated_response(request, real)
        return fault_response(fault, family)

    return endpoint


# ------------------------------------------------------------------------------------------------ admin


async def _json_object(request: web.Request) -> dict[str, object]:
    try:
        payload = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(payload, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return payload


def _bad_request(message: str) -> web.Response:
    return json_response({"ok": False, "error": message}, status=400, content_type="application/json")


def _ok(**extra: object) -> web.Response:
    return json_response({"ok": True, **extra}, content_type="application/json")


def _admin_routes(state: SimulatorState) -> list[web.RouteDef]:
    async def stats(request: web.Request) -> web.StreamResponse:
        return json_response(
            {
                "counters": dict(state.counters),
                "peak_in_flight": dict(state.peak_in_flight),
                "now": state.now().isoformat(),
                "faults": [dataclasses.asdict(fault) for fault in state.faults],
                "latency": state.latency,
                "daily_quota": dict(state.daily_quota),
            },
            content_type="application/json",
        )

    async def faults(request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        try:
            retry_after = body.get("retry_after")
            state.add_fault(
                str(body.get("operation", "*")),
                str(body["kind"]),
                int(str(body.get("times", 1))),
                retry_after=None if retry_after is None else float(str(retry_after)),
                code=str(body.get("code", "05")),
                fmt=str(body.get("fmt", "xml")),
                delay=float(str(body.get("delay", 0.0))),
            )
        except KeyError:
            return _bad_request("'kind' is required")
        except ValueError as exc:
            return _bad_request(str(exc))
        return _ok(pending=len(state.faults))

    async def clock(request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        raw = body.get("now")
        if raw is None:
            state.clock = None
        else:
            try:
                moment = datetime.fromisoformat(str(raw))
            except ValueError:
                return _bad_request("'now' must be an ISO 8601 datetime or null")
            if moment.tzinfo is None:
                return _bad_request("'now' must carry a UTC offset")
            state.clock = moment
        return _ok(now=state.now().isoformat())

    async def latency(request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        try:
            seconds = float(str(body.get("seconds", 0.0)))
        except ValueError:
            return _bad_request("'seconds' must be a number")
        if seconds < 0:
            return _bad_request("'seconds' must be >= 0")
        state.latency = seconds
        return _ok(latency=seconds)

    async def quota(request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        operation = str(body.get("operation"))
        if operation not in OPERATIONS:
            return _bad_request(f"'operation' must be one of {list(OPERATIONS)}")
        per_day = body.get("per_day")
        if per_day is None:
            state.daily_quota.pop(operation, None)
        else:
            try:
                state.daily_quota[operation] = int(str(per_day))
            except ValueError:
                return _bad_request("'per_day' must be an integer or null")
        return _ok(daily_quota=dict(state.daily_quota))

    async def reset(request: web.Request) -> web.StreamResponse:
        state.reset()
        return _ok()

    return [
        web.get("/_sim/stats", stats),
        web.post("/_sim/faults", faults),
        web.post("/_sim/clock", clock),
        web.post("/_sim/latency", latency),
        web.post("/_sim/quota", quota),
        web.post("/_sim/reset", reset),
    ]


# ------------------------------------------------------------------------------------------------ app


def create_app(state: SimulatorState) -> web.Application:
    """One application serving TMDB under ``/3`` and AirKorea under ``/B552584/ArpltnInforInqireSvc``."""
    app = web.Application()
    app[STATE_KEY] = state
    app.add_routes(
        [
            # now_playing before {movie_id}: the router tries routes in registration order.
            web.get("/3/movie/now_playing", _api(state, "now_playing", "tmdb", tmdb.now_playing)),
            web.get("/3/movie/{movie_id}", _api(state, "movie", "tmdb", tmdb.movie)),
            web.get("/3/discover/movie", _api(state, "discover", "tmdb", tmdb.discover)),
            web.get("/3/{tail:.*}", tmdb.not_found),
            web.get(
                f"{AIRKOREA_PREFIX}/getCtprvnRltmMesureDnsty",
                _api(state, "getCtprvnRltmMesureDnsty", "airkorea", airkorea.ctprvn),
            ),
            web.get(
                f"{AIRKOREA_PREFIX}/getMsrstnAcctoRltmMesureDnsty",
                _api(state, "getMsrstnAcctoRltmMesureDnsty", "airkorea", airkorea.msrstn),
            ),
            web.get("/B552584/{tail:.*}", airkorea.unknown_operation),
            *_admin_routes(state),
        ]
    )
    return app
