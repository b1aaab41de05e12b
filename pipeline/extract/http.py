"""One gate per source over a shared aiohttp session: concurrency bound, smooth rate limit, retries.

Every request goes through :meth:`SourceClient.get`:

1. take a concurrency slot (an ``asyncio.Semaphore`` no larger than the connector's per-host limit, so the
   pool never queues and aiohttp's timeouts measure the request, not the wait);
2. take a token from a leaky-bucket limiter (``AsyncLimiter(1, 1/rate)``: no initial burst);
3. send, read the whole body, and hand status, headers and text to the source's *classifier*, which returns
   the parsed body or raises a :class:`~pipeline.errors.SourceError` subclass;
4. :class:`~pipeline.errors.TransientError` is retried by tenacity with full-jitter exponential backoff,
   honouring ``Retry-After`` and never sleeping past the per-request retry budget; every other class is
   raised at once (auth and quota errors are never retried).

Exceptions never carry a secret: URLs are described without their query's secret parameters and every
message goes through :data:`~pipeline.redaction.redact`; aiohttp's own exceptions are replaced ``from None``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from pipeline.errors import AuthError, BadRequestError, QuotaError, SourceError, TransientError
from pipeline.extract.stats import RequestStats, job_stats
from pipeline.redaction import SECRET_PARAMS, redact

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 30.0
USER_AGENT = "pipeline/0.1 (+https://github.com/; collects TMDB and AirKorea data)"

#: classify(status, headers, body, request_description) -> parsed body, or raise a SourceError
Classifier = Callable[[int, Mapping[str, str], bytes, str], Any]
#: called with the operation before every attempt is sent (the quota ledger); may raise QuotaError
BeforeSend = Callable[[str], Awaitable[None]]
#: called with the operation when the API says its quota is used up
OnQuota = Callable[[str], Awaitable[None]]
#: called with (source, operation, path, query without the key, status, body) for every response read, before
#: it is classified (the raw archive)
AfterReceive = Callable[[str, str, str, Mapping[str, str], int, bytes], Awaitable[None]]


def describe(url: str, params: Mapping[str, str]) -> str:
    """``GET url?params`` without secret parameters: safe for logs, errors and the database."""
    shown = {k: v for k, v in params.items() if k not in SECRET_PARAMS}
    query = f"?{urlencode(shown)}" if shown else ""
    return redact(f"GET {url}{query}")


class SourceClient:
    """The gate, retry policy and classifier of one source, over a shared session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        source: str,
        base_url: str,
        classify: Classifier,
        concurrency: int,
        rate_limit: float,
        timeout: float,
        attempts: int,
        max_retry_time: float,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        before_send: BeforeSend | None = None,
        on_quota: OnQuota | None = None,
    ) -> None:
        self.session = session
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.classify = classify
        self.stats = RequestStats()
        self.attempts = attempts
        self.max_retry_time = max_retry_time
        self.backoff = wait_random_exponential(multiplier=backoff_base, max=backoff_max)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._limiter = AsyncLimiter(1, 1 / rate_limit)
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(10.0, timeout))
        self._headers = dict(headers or {})
        self._auth_params = dict(params or {})
        self.before_send = before_send
        self.on_quota = on_quota
        self.after_receive: AfterReceive | None = None  # the raw archive, set by whoever makes the client
        self.stopped: SourceError | None = None  # an auth error stops the whole source for this run
        self.paused: dict[str, SourceError] = {}  # a quota error pauses one operation

    def stop(self, error: SourceError) -> None:
        """No more requests to this source (auth failure)."""
        if self.stopped is None:
            self.stopped = error
            self._count("actions", f"{error.error_class}:stopped_source")

    def pause(self, operation: str, error: SourceError) -> None:
        """No more requests for ``operation`` (daily quota)."""
        if operation not in self.paused:
            self.paused[operation] = error
            self._count("actions", f"{error.error_class}:paused_operation")

    async def get(
        self, path: str, params: Mapping[str, str], operation: str, classify: Classifier | None = None
    ) -> Any:
        """GET ``base_url + path`` and return the classified body; retries transient failures.

        ``classify`` replaces the source's classifier for this request (a backfill takes raw bytes).
        """
        if self.stopped is not None:
            raise self.stopped
        if operation in self.paused:
            raise self.paused[operation]
        url = f"{self.base_url}/{path.lstrip('/')}"
        description = describe(url, params)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_retry_time),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(url, path, params, operation, description, classify or self.classify)
        except SourceError as exc:
            if isinstance(exc, TransientError):
                self._count("actions", "transient:gave_up")
            elif isinstance(exc, AuthError):
                self.stop(exc)
            elif isinstance(exc, QuotaError):
                self.pause(operation, exc)
                if exc.code == "22" and self.on_quota is not None:
                    await self.on_quota(operation)  # remembered until midnight KST, across restarts
            raise
        raise AssertionError("unreachable")  # pragma: no cover - reraise=True always raises

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        wait = float(after) if isinstance(after, int | float) else self.backoff(state)
        remaining = self.max_retry_time - (state.seconds_since_start or 0.0)
        return max(0.0, min(wait, remaining))

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self._count("actions", "transient:retried")
        for stats in self._targets():
            stats.retries += 1
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s; retry %d in %.1fs", exc, state.attempt_number, wait)

    async def _once(
        self,
        url: str,
        path: str,
        query: Mapping[str, str],
        operation: str,
        description: str,
        classify: Classifier,
    ) -> Any:
        params = {**query, **self._auth_params}
        async with self._semaphore:
            await self._limiter.acquire()
            # the source may have been stopped (auth) or the operation paused (quota) while this request waited
            if self.stopped is not None:
                raise self.stopped
            if operation in self.paused:
                raise self.paused[operation]
            if self.before_send is not None:
                await self.before_send(operation)  # counts the call in the daily ledger, or refuses it
            self._count("requests", operation)
            started = time.monotonic()
            try:
                async with self.session.get(
                    url, params=params, headers=self._headers, timeout=self._timeout, allow_redirects=False
                ) as response:
                    body = await response.read()
                    status, headers = response.status, response.headers
                # archived before anything reads it (kept when the transform fails), and inside the slot: no
                # other request may start between this answer and its classification (a code 22 pauses them)
                if self.after_receive is not None:
                    await self.after_receive(self.source, operation, path, query, status, body)
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                error = self._fail(
                    TransientError(
                        f"{self.source}: {type(exc).__name__} on {description}",
                        source=self.source,
                        url=description,
                        operation=operation,
                    )
                )
                raise error from None
            except aiohttp.ClientError as exc:
                error = self._fail(
                    BadRequestError(
                        f"{self.source}: {type(exc).__name__} on {description}",
                        source=self.source,
                        url=description,
                        operation=operation,
                    )
                )
                raise error from None
        fetched = time.monotonic()
        log.debug("%s %s -> %s in %.3fs", self.source, description, status, fetched - started)
        try:
            return classify(status, headers, body, description)
        except SourceError as exc:
            exc.operation = exc.operation or operation
            exc.url = exc.url or description
            raise self._fail(exc) from None
        finally:
            for stats in self._targets():
                stats.add_time("fetch", fetched - started)
                stats.add_time("parse", time.monotonic() - fetched)

    def _fail(self, exc: SourceError) -> SourceError:
        self._count("failures", exc.error_class)
        return exc

    def _targets(self) -> list[RequestStats]:
        current = job_stats.get()
        return [self.stats] if current is None or current is self.stats else [self.stats, current]

    def _count(self, kind: str, key: str) -> None:
        for stats in self._targets():
            counter: Counter[str] = getattr(stats, kind)
            counter[key] += 1

    def count_action(self, key: str) -> None:
        """Record what was done about a failure (``not_found:skipped``…) in the run's stats."""
        self._count("actions", key)


def make_session(total_connections: int = 64, per_host: int = 32) -> aiohttp.ClientSession:
    """The run's (or daemon's) one HTTP session. Per-source semaphores stay below ``per_host``."""
    connector = aiohttp.TCPConnector(limit=total_connections, limit_per_host=per_host, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
