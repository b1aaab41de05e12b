"""The aiohttp application of the web surface, its safety middlewares, and listening.

Every response carries ``X-Content-Type-Options: nosniff`` and a Content-Security-Policy that allows only
the page's own script, style and images (no inline script, nothing from another origin), and a
``Server-Timing`` header with the time the server took. A request gets
``web.request_timeout`` seconds (then 503, its queries cancelled), bodies are refused (every route is a
``GET``), and a response larger than :data:`MAX_RESPONSE_BYTES` is an error, not a slow page. A bad query
parameter is a 400 whose body is one line naming it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.config import Settings
from pipeline.errors import ConfigError, PipelineError
from pipeline.redaction import redact

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; "
    "font-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class BadParameter(PipelineError):
    """A query parameter the surface cannot take: answered 400 with this one line."""


@dataclass(frozen=True, slots=True)
class WebContext:
    """What every handler reads: the settings and the read-only engine."""

    settings: Settings
    engine: AsyncEngine
    started_at: datetime


CONTEXT = web.AppKey("context", WebContext)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def context(request: web.Request) -> WebContext:
    return request.app[CONTEXT]


def one_line(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=redact(text.splitlines()[0] if text else "") + "\n")


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bounded time and size, one-line errors, the security headers on every answer."""
    timeout = request.app[CONTEXT].settings.web.request_timeout
    started = time.perf_counter()
    try:
        if request.method not in ("GET", "HEAD"):
            response: web.StreamResponse = one_line(405, f"{request.method} is not allowed: the surface is read-only")
        else:
            async with asyncio.timeout(timeout):
                response = await handler(request)
    except BadParameter as exc:
        response = one_line(400, f"bad request: {exc}")
    except TimeoutError:
        response = one_line(503, f"the request took longer than web.request_timeout ({timeout:g} s)")
    except web.HTTPException as exc:
        response = one_line(exc.status, exc.reason)
    except ConfigError as exc:  # the database is missing, unmigrated or unreachable
        response = one_line(503, str(exc))
    except Exception as exc:  # a bug: one redacted line for the client, the traceback in the log
        log.exception("web: %s %s failed", request.method, request.path)
        response = one_line(500, f"internal error: {type(exc).__name__}")
    if isinstance(response, web.Response) and response.body is not None:
        size = len(response.body) if isinstance(response.body, bytes | bytearray) else 0
        if size > MAX_RESPONSE_BYTES:
            log.error("web: %s answered %d bytes, over the %d limit", request.path, size, MAX_RESPONSE_BYTES)
            response = one_line(500, "internal error: the response is too large")
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    # the server's own time (what `pipeline bench --only web` reports), in the standard Server-Timing header
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


def create_app(settings: Settings, engine: AsyncEngine) -> web.Application:
    """The application: every route reads ``engine`` (read-only, see :mod:`.database`)."""
    from pipeline.web import dashboard, health, metrics

    app = web.Application(middlewares=[_guard], client_max_size=1024)
    app[CONTEXT] = WebContext(settings, engine, datetime.now(UTC))
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/metrics", metrics.handle)
    dashboard.add_routes(app)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def start(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Listen on ``host:port``; a port already taken (another daemon) is a one-line :class:`ConfigError`."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # not asyncio's "error while attempting…"
        raise ConfigError(f"web: cannot listen on {host}:{port}: {reason}") from None
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the first site listens on (``--port 0`` picks a free one)."""
    for address in runner.addresses:  # sockname tuples: (host, port, …)
        return int(address[1])
    raise ConfigError("web: not listening")


@dataclass(slots=True)
class Surface:
    """The web surface listening: its runner, its read-only engine and the port it got."""

    runner: web.AppRunner
    engine: AsyncEngine
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.engine.dispose()


async def open_surface(settings: Settings, host: str | None = None, port: int | None = None) -> Surface:
    """Open the read-only engine, check that it reaches the database, and listen (``web.host``/``web.port``
    unless given). Every failure is one line (:class:`ConfigError`)."""
    from pipeline.load.db import display_url, error_message
    from pipeline.web.database import read_only_engine

    host = host or settings.web.host
    port = settings.web.port if port is None else port
    engine = read_only_engine(settings.database.url)
    try:
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (SQLAlchemyError, OSError) as exc:
            shown = display_url(settings.database.url)
            raise ConfigError(f"database.url: cannot read {shown}: {error_message(exc)}") from None
        runner = await start(create_app(settings, engine), host, port)
    except BaseException:
        await engine.dispose()
        raise
    surface = Surface(runner, engine, host, bound_port(runner))
    if not is_loopback(host):
        log.warning("web: %s is reachable from other machines (read-only, no secrets)", surface.url)
    return surface
