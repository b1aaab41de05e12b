"""Progress for long commands: a rich bar with rate and ETA on a terminal, periodic plain lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

log = logging.getLogger("pipeline.progress")


class BarProgress:
    """A rich progress bar on stderr: chunks done of total, rows, rows/s and ETA."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.rows = 0
        self.started = time.monotonic()
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]:,} rows, {task.fields[rate]:,.0f} rows/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task(label, total=None, rows=0, rate=0.0)

    def start(self, total: int, done: int, unit: str) -> None:
        self._bar.update(self._task, total=total, completed=done, description=f"{self.label} ({unit})")
        self._bar.start()

    def advance(self, chunks: int, rows: int) -> None:
        self.rows += rows
        rate = self.rows / max(time.monotonic() - self.started, 1e-9)
        self._bar.update(self._task, advance=chunks, rows=self.rows, rate=rate)

    def stop(self) -> None:
        self._bar.stop()


class LineProgress:
    """One log line every ``every`` seconds: done/total, rows, rows/s, ETA."""

    def __init__(self, label: str, every: float = 10.0) -> None:
        self.label, self.every = label, every
        self.total = self.done = self.rows = 0
        self.unit = "chunks"
        self.started = self.last = time.monotonic()
        self._first = 0

    def start(self, total: int, done: int, unit: str) -> None:
        self.total, self.done, self._first, self.unit = total, done, done, unit
        self.started = self.last = time.monotonic()
        log.info("%s: %d of %d %s to do", self.label, total - done, total, unit)

    def advance(self, chunks: int, rows: int) -> None:
        self.done += chunks
        self.rows += rows
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        worked = self.done - self._first
        eta = (self.total - self.done) * elapsed / worked if worked else float("nan")
        return (
            f"{self.label}: {self.done}/{self.total} {self.unit}, {self.rows:,} rows, "
            f"{self.rows / elapsed:,.0f} rows/s, ETA {eta:,.0f}s"
        )

    def stop(self) -> None:
        if self.done:
            log.info("%s", self.line(time.monotonic()))


def make_progress(label: str) -> BarProgress | LineProgress:
    return BarProgress(label) if sys.stderr.isatty() else LineProgress(label)
