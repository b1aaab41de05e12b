"""``pipeline status``: backfill and replay runs are shown beside the jobs, and the health check loads neither
the HTTP client nor the scheduler (it serves as a container or systemd health check)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config import parse_settings
from pipeline.load.db import create_engine, migrate
from pipeline.load.runs import RunTotals, finish_run, start_run
from pipeline.load.writer import Writer
from pipeline.status import collect_status

NOW = datetime(2026, 11, 28, 3, tzinfo=UTC)


def heavy_modules_after(args: list[str], cwd: Path) -> tuple[int, list[str], str]:
    """Run the CLI with ``args`` in a fresh interpreter; which of aiohttp and APScheduler did it import?"""
    code = (
        "import sys\n"
        "from pipeline.cli import main\n"
        f"code = main({args!r})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'apscheduler'}))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"')), result.stdout


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f'database: {{url: "sqlite+aiosqlite:///{tmp_path / "s.db"}"}}\n', encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pipeline", "migrate", "--config", str(config)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    return config


@pytest.mark.parametrize(
    "args",
    [["status"], ["status", "--json"], ["sql", "SELECT count(*) FROM runs"], ["sql", "--tables"], ["gaps"]],
    ids=" ".join,
)
def test_status_and_sql_import_neither_aiohttp_nor_apscheduler(args: list[str], migrated: Path) -> None:
    code, heavy, output = heavy_modules_after([*args, "--config", str(migrated)], migrated.parent)
    assert code in (0, 1), output  # status: 1 = stale (nothing ran yet)
    assert heavy == [], f"{' '.join(args)} imported {heavy}"


def test_the_daemon_does_import_them(migrated: Path) -> None:
    """The check above can fail: the scheduler module brings both."""
    code = "import sys, pipeline.scheduler; print(sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'apscheduler'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['aiohttp', 'apscheduler']"


async def test_backfill_and_replay_runs_are_shown_beside_the_jobs(db_url: str) -> None:
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        writer = Writer(engine)
        done = await start_run(writer, "backfill_airkorea", "backfill", NOW - timedelta(hours=2))
        await finish_run(writer, done, "partial", RunTotals(), error="paused by the daily quota")
        running = await start_run(writer, "backfill_tmdb", "backfill", NOW - timedelta(minutes=1))
        replayed = await start_run(writer, "replay", "replay", NOW - timedelta(hours=1))
        await finish_run(writer, replayed, "success", RunTotals())
        cycle = await start_run(writer, "cycle", "manual", NOW - timedelta(minutes=5))
        await finish_run(writer, cycle, "success", RunTotals(), details={"tmdb": {"status": "success"}})
    finally:
        await engine.dispose()
    report = await collect_status(parse_settings({"database": {"url": db_url}}), NOW)
    shown = {(r.name, r.last_run_id, r.last_status, r.running) for r in report.others}
    assert shown == {
        ("backfill_airkorea", done, "partial", False),
        ("backfill_tmdb", running, "running", True),
        ("replay", replayed, "success", False),
    }
    assert [j.job for j in report.jobs] == ["tmdb", "airkorea_sido", "airkorea_stations"]  # cycles fold into jobs
    assert {r["name"] for r in report.as_dict()["other_runs"]} == {"backfill_airkorea", "backfill_tmdb", "replay"}
    assert not report.healthy  # the backfills do not count: only the jobs (two never ran) do


def test_status_prints_the_backfills(tmp_path: Path, migrated: Path) -> None:
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"

    async def record() -> None:
        engine = create_engine(url)
        try:
            run_id = await start_run(Writer(engine), "backfill_airkorea", "backfill")
            await finish_run(Writer(engine), run_id, "success", RunTotals())
        finally:
            await engine.dispose()

    asyncio.run(record())
    result = subprocess.run([sys.executable, "-m", "pipeline", "status", "--config", str(migrated)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1  # the jobs never ran: stale
    assert any(line.startswith("backfill_airkorea") and "#1 success" in line for line in result.stdout.splitlines())


async def test_status_shows_the_completeness_of_the_last_24_published_hours(db_url: str) -> None:
    from pipeline.load.coverage import expect_hours, record_published, upsert_coverage
    from pipeline.load.upsert import upsert_air_stations
    from pipeline.transform.airkorea import AirStation
    from pipeline.transform.coverage import CoverageRow, hour_slot

    newest = NOW.replace(minute=0) - timedelta(hours=1)
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        writer = Writer(engine)
        await upsert_air_stations(
            writer, [AirStation("A", "서울", None, None), AirStation("B", "서울", None, None)], NOW
        )
        await expect_hours(writer, newest - timedelta(hours=47), newest, NOW)  # two days expected of both
        run_id = await start_run(writer, "airkorea_sido", "schedule", NOW)
        await record_published(writer, newest, 2, run_id, NOW)
        rows = []
        for back in range(48):
            hour = newest - timedelta(hours=back)
            day, bit = hour_slot(hour)
            if back == 3:  # B misses one hour of the last 24, A one of the day before (outside the window)
                rows.append(CoverageRow(day, "A", 1 << bit, 0))
            elif back == 30:
                rows.append(CoverageRow(day, "B", 1 << bit, 0))
            elif back == 5:
                rows += [CoverageRow(day, "A", 0, 1 << bit), CoverageRow(day, "B", 1 << bit, 0)]
            else:
                rows += [CoverageRow(day, name, 1 << bit, 0) for name in ("A", "B")]
        await upsert_coverage(writer, rows, NOW)
    finally:
        await engine.dispose()
    report = await collect_status(parse_settings({"database": {"url": db_url}}), NOW)
    assert report.newest_hour == newest and report.completeness is not None
    done = report.completeness
    assert (done.expected, done.received, done.flagged, done.missing) == (48, 46, 1, 1)
    assert report.as_dict()["completeness_24h"]["completeness"] == 47 / 48
