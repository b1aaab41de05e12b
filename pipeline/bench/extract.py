"""Sections 1 + 2, ``extract``: concurrent requests against the ideal bound, and against sequential ``requests``."""

from __future__ import annotations

import asyncio
import math
import time

import aiohttp

from pipeline.bench.harness import Line, Sizes, register, simulator_process
from pipeline.extract import airkorea as airkorea_extract
from pipeline.extract.http import SourceClient
from pipeline.simulator import SIM_DATA_GO_KEY


async def _concurrent(base: str, n: int, concurrency: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, limit_per_host=32)) as session:
        client = SourceClient(
            session,
            source="airkorea",
            base_url=f"{base}/B552584/{airkorea_extract.SERVICE}",
            classify=airkorea_extract.classify,
            concurrency=concurrency,
            rate_limit=100_000.0,
            timeout=30,
            attempts=1,
            max_retry_time=30,
            params={"serviceKey": SIM_DATA_GO_KEY},
        )
        params = airkorea_extract.sido_query("세종", ver="1.5", rows=100)
        await client.get(airkorea_extract.SIDO_OPERATION, params, "warm-up")
        started = time.perf_counter()
        pages = await asyncio.gather(*(client.get(airkorea_extract.SIDO_OPERATION, params, "bench") for _ in range(n)))
        elapsed = time.perf_counter() - started
    assert all(page.items for page in pages)
    return elapsed


def _sequential_requests(base: str, n: int) -> float:
    import requests  # the synchronous way the pipeline replaces (an optional bench dependency)

    url = f"{base}/B552584/{airkorea_extract.SERVICE}/{airkorea_extract.SIDO_OPERATION}"
    params = {"serviceKey": SIM_DATA_GO_KEY, **airkorea_extract.sido_query("세종", ver="1.5", rows=100)}
    with requests.Session() as session:
        session.get(url, params=params, timeout=30).raise_for_status()
        started = time.perf_counter()
        for _ in range(n):
            response = session.get(url, params=params, timeout=30)
            response.raise_for_status()
            response.json()
        return time.perf_counter() - started


@register("extract")
def bench_extract(sizes: Sizes) -> list[Line]:
    n, c, latency = sizes.requests, sizes.concurrency, sizes.latency_ms / 1000
    with simulator_process(sizes.latency_ms) as base:
        ours = asyncio.run(_concurrent(base, n, c))
        ideal = math.ceil(n / c) * latency
        lines = [
            Line(
                "extract",
                f"{n} requests, concurrency {c}, latency {sizes.latency_ms:.0f} ms",
                ours,
                "s",
                ideal,
                "ideal ceil(N/C)×L",
                ours / ideal,
                "≤ 1.10",
                ours / ideal <= 1.10,
            )
        ]
        try:
            seed = _sequential_requests(base, n)
        except ImportError:
            lines.append(
                Line(
                    "extract",
                    "sequential requests (seed's way)",
                    math.nan,
                    "s",
                    note="requests is not installed: pip install -e '.[bench]'",
                )
            )
            return lines
    speedup = seed / ours
    lines.append(
        Line(
            "extract",
            "speed-up over sequential requests",
            speedup,
            "×",
            seed,
            "requests, sequential (s)",
            speedup / c,
            f"≥ {0.9 * c:.0f}× (0.9 × C)",
            speedup >= 0.9 * c,
        )
    )
    return lines
