"""The backfill's parse workers: :func:`~pipeline.jobs.airkorea.page_rows` in spawned processes.

Parsing and normalising a page cost as much CPU as writing it, and one process has one GIL: with a
:class:`ProcessParser`, pages are parsed in worker processes while the backfill process fetches and writes
the next ones. It is a :class:`~pipeline.jobs.airkorea.PageParser` like the daemon's inline one.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from pipeline.jobs.airkorea import PageJob, PageRows, page_rows
from pipeline.resources import no_cyclic_gc, peak_rss_mb
from pipeline.transform.airkorea import RawAirItem

#: a worker process costs about a second to start: worth it from this many stations on
MIN_STATIONS_FOR_WORKERS = 8


def default_workers() -> int:
    """Worker processes for parsing: the CPUs beyond the one that writes, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _ready() -> None:
    """Nothing: its completion says that a worker process is up."""


def _in_worker(body: bytes, job: PageJob) -> PageRows:
    """:func:`page_rows` in a worker process, with the worker's peak memory attached."""
    return replace(page_rows(body, job), peak_rss_mb=peak_rss_mb())


class ProcessParser:
    """Raw pages parsed in ``workers`` spawned processes; anything already parsed (an XML body, an empty
    answer) and every page before the first worker is up are parsed here.

    A spawned worker takes a second or so to start (a new interpreter, its imports): it is started at once,
    and the first pages do not wait for it.
    """

    stage = "transform (worker CPU)"

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=no_cyclic_gc)
        self._booted = self._pool.submit(_ready)
        self.worker_peak_rss_mb = 0.0

    async def parse(self, body: bytes | Sequence[RawAirItem], job: PageJob) -> PageRows:
        if not (isinstance(body, bytes) and self._booted.done()):
            return page_rows(body, job)
        rows = await asyncio.get_running_loop().run_in_executor(self._pool, _in_worker, body, job)
        self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, rows.peak_rss_mb)
        return rows

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
