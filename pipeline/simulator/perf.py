"""Micro-benchmark of the AirKorea payload path: ``python -m pipeline.simulator.perf [--repeat N]``.

Times row generation + serialisation of whole response bodies (what a handler does besides HTTP), best of N:
a 3MONTH ``getMsrstnAcctoRltmMesureDnsty`` page (2,208 rows) and a 전국 ``getCtprvnRltmMesureDnsty`` page (every
station), as JSON and as XML. The nationwide 3MONTH backfill needs well over 50,000 rows/s from one core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pipeline.simulator import airkorea, airkorea_data

CLOCK = datetime(2025, 1, 20, 3, 30, tzinfo=UTC)
VER_15 = airkorea_data.parse_ver("1.5")


def best_seconds(run: Callable[[], bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=20, help="runs per case; the best is reported")
    args = parser.parse_args(argv)

    newest = airkorea_data.newest_hour(CLOCK)
    station = airkorea_data.stations()[0]
    hours = airkorea_data.DATA_TERM_HOURS["3MONTH"]
    national = len(airkorea_data.stations())

    def msrstn(fmt: airkorea.Format) -> Callable[[], bytes]:
        return lambda: airkorea.msrstn_body(fmt, station, newest, hours, VER_15, 1, hours)

    def ctprvn(fmt: airkorea.Format) -> Callable[[], bytes]:
        def run() -> bytes:
            airkorea_data.clear_ctprvn_order_cache()  # include the hourly station shuffle, as a first request would
            return airkorea.ctprvn_body(fmt, airkorea_data.ALL_SIDOS, newest, VER_15, 1, 1000)

        return run

    cases = [
        (f"msrstn 3MONTH ver=1.5 JSON ({hours} rows)", msrstn("json"), hours),
        (f"msrstn 3MONTH ver=1.5 XML  ({hours} rows)", msrstn("xml"), hours),
        (f"ctprvn 전국 ver=1.5 JSON ({national} rows)", ctprvn("json"), national),
        (f"ctprvn 전국 ver=1.5 XML  ({national} rows)", ctprvn("xml"), national),
    ]
    for label, run, rows in cases:
        run()  # warm the per-station and per-hour caches
        seconds = best_seconds(run, args.repeat)
        print(f"{label:40s} {seconds / rows * 1e6:6.2f} µs/row {rows / seconds:12,.0f} rows/s")


if __name__ == "__main__":
    main()
