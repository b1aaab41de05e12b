"""The bench's harness: the lines it reports, the sizes of a run, the simulator process, the sections' registry.

Each section module registers its runner here with :func:`register`; ``pipeline.bench`` imports them all, so the
registry is complete wherever the harness is used, and the harness imports no section (no cycle).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.compiler import SQLCompiler

from pipeline.simulator import SIM_DATA_GO_KEY, SIM_TMDB_API_KEY

SECTIONS = ("extract", "loader", "backfill", "daemon", "queries", "day", "archive", "web")
ZONE_KST = ZoneInfo("Asia/Seoul")


@dataclass
class Line:
    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class Sizes:
    requests: int
    concurrency: int
    latency_ms: float
    loader_rows: int
    backfill_args: tuple[str, ...]
    idle_seconds: float
    query_days: int
    query_stations: int
    backfill_trials: int
    day_hours: int  # the simulated day: its hours (24, or a window around the late hour)
    gaps_stations: int  # the ledger `gaps` is timed on: stations × days
    gaps_days: int
    cycle_trials: int  # cycles with the archive on, and as many off

    @classmethod
    def full(cls) -> Sizes:
        return cls(500, 10, 50, 200_000, ("--all-stations",), 60, 365, 670, 3, 24, 670, 365, 5)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(100, 10, 20, 20_000, ("--sido", "서울"), 5, 30, 100, 1, 6, 100, 90, 1)


# --- helpers ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def simulator_process(latency_ms: float = 0.0, clock: str | None = None) -> Iterator[str]:
    """``pipeline simulate`` in its own process; yields its base URL."""
    with _simulator(latency_ms, clock) as (base, _pid):
        yield base


@contextmanager
def _simulator(latency_ms: float = 0.0, clock: str | None = None) -> Iterator[tuple[str, int]]:
    """``pipeline simulate`` in its own process; yields its base URL and process id."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "pipeline",
        "--log-level",
        "WARNING",
        "simulate",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
    ]
    if clock:
        args += ["--clock", clock]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PIPELINE_CONFIG",)}
    return env | {"TMDB_API_KEY": SIM_TMDB_API_KEY, "DATA_GO_API_KEY": SIM_DATA_GO_KEY}


def _config(path: Path, base: str, extra: str = "") -> Path:
    config = path / "config.yaml"
    config.write_text(
        f"""
database: {{url: "sqlite+aiosqlite:///{path / "bench.db"}"}}
sources:
  tmdb: {{base_url: "{base}/3", rate_limit: 40}}
  airkorea: {{base_url: "{base}/B552584", rate_limit: 50, concurrency: 4, daily_quota: 100000}}
{extra}""",
        encoding="utf-8",
    )
    return config


def _kst_clock() -> str:
    """A fixed simulator clock: this hour, 30 minutes past, in KST."""
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    return now.astimezone(ZONE_KST).isoformat()


def insert_sql(table: Table, *columns: str) -> str:
    """``INSERT INTO table (columns) VALUES (?, …)`` for raw ``sqlite3``, built from the schema
    (``pipeline/load/tables.py``), so that a renamed or dropped column fails here rather than drifting.

    ``columns`` come in the table's order, the order of the ``?``: a different order, or a column the statement
    would add (one with a default), is refused too.
    """
    missing = [name for name in columns if name not in table.c]
    if missing:
        raise KeyError(f"{table.name} has no column {', '.join(missing)}")
    compiled = table.insert().compile(dialect=sqlite.dialect(), column_keys=list(columns))
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup != list(columns):
        order = getattr(compiled, "positiontup", None)
        raise ValueError(f"INSERT INTO {table.name}: the placeholders are {order}, not {list(columns)}")
    return str(compiled)


# --- the sections' registry and the run ------------------------------------------------------------------

Runner = Callable[[Sizes], list[Line]]
PostgresRunner = Callable[[Sizes, str], list[Line]]

RUNNERS: dict[str, Runner] = {}
"""Each section's runner, registered by its module (``pipeline.bench`` imports every section module)."""
POSTGRES_RUNNERS: dict[str, PostgresRunner] = {}
"""The lines a section adds when the config's database is PostgreSQL (its URL the second argument)."""


def register(section: str) -> Callable[[Runner], Runner]:
    """Make the decorated function the runner of ``section``."""

    def decorate(runner: Runner) -> Runner:
        RUNNERS[section] = runner
        return runner

    return decorate


def register_postgres(section: str) -> Callable[[PostgresRunner], PostgresRunner]:
    """Make the decorated function the PostgreSQL lines of ``section``."""

    def decorate(runner: PostgresRunner) -> PostgresRunner:
        POSTGRES_RUNNERS[section] = runner
        return runner

    return decorate


def run(sections: list[str], quick: bool, report: Callable[[Line], None], postgres: str | None = None) -> list[Line]:
    """Run ``sections``; with ``postgres`` (the config's PostgreSQL URL) the loader is measured there too."""
    sizes = Sizes.quick() if quick else Sizes.full()
    lines: list[Line] = []
    for section in sections:
        found = RUNNERS[section](sizes)
        if postgres and section in POSTGRES_RUNNERS:
            found += POSTGRES_RUNNERS[section](sizes, postgres)
        for line in found:
            lines.append(line)
            report(line)
    return lines


def format_line(line: Line) -> str:
    def num(value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"

    verdict = {True: "PASS", False: "FAIL", None: ""}[line.passed]
    baseline = f"{num(line.baseline)} {line.baseline_name}" if line.baseline is not None else "-"
    ratio = num(line.ratio) if line.ratio is not None else "-"
    text = (
        f"{line.section:<9} {line.name:<62} {num(line.value):>12} {line.unit:<12} baseline {baseline:<40} "
        f"ratio {ratio:<8} target {line.target:<14} {verdict}"
    )
    return text + (f"  ({line.note})" if line.note else "")


def write_json(lines: list[Line], path: Path, quick: bool) -> None:
    payload = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version},
        "lines": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(line).items()}
            for line in lines
        ],
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
