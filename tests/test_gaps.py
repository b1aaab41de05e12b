"""``pipeline gaps``: the ledger per station and KST day, its JSON, its exit codes, its bad input."""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.load.coverage import expect_hours, upsert_coverage
from pipeline.load.db import create_engine, migrate
from pipeline.load.upsert import upsert_air_stations
from pipeline.load.writer import Writer
from pipeline.transform.airkorea import AirStation
from pipeline.transform.common import KST
from pipeline.transform.coverage import FULL_DAY, CoverageRow, hour_end

TODAY = datetime.now(UTC).astimezone(KST).date()
RECENT = TODAY - timedelta(days=2)  # inside the API's window
OLD = TODAY - timedelta(days=200)  # past it


async def fill(url: str, *, recent_hole: bool, old_hole: bool) -> None:
    await migrate(url)
    engine = create_engine(url)
    writer = Writer(engine)
    now = datetime.now(UTC)
    await upsert_air_stations(
        writer, [AirStation("종로구", "서울", "111123", None), AirStation("해운대구", "부산", None, None)], now
    )
    for day in (OLD, RECENT):
        await expect_hours(writer, hour_end(day, 0), hour_end(day, 23), now)  # every station, the whole day
        for station in ("종로구", "해운대구"):
            received = FULL_DAY
            if station == "종로구" and ((day == RECENT and recent_hole) or (day == OLD and old_hole)):
                received &= ~((1 << 23) | (1 << 2))  # 03:00 and 24:00 missing
            flagged = 1 << 5 if station == "해운대구" else 0
            await upsert_coverage(writer, [CoverageRow(day, station, received & ~flagged, flagged)], now)
    await engine.dispose()


def run_gaps(tmp_path: Path, *args: str) -> tuple[int, str]:
    """``pipeline gaps`` through the entry point (errors included); stdout and stderr together."""
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'g.db'}\n", encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = main(["gaps", "--config", str(config), *args])
    return code, out.getvalue()


def url_of(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"


def test_a_repairable_hole_exits_1_and_json_names_its_hours(tmp_path: Path) -> None:
    asyncio.run(fill(url_of(tmp_path), recent_hole=True, old_hole=False))
    code, out = run_gaps(tmp_path, "--json")
    assert code == 1
    (day,) = json.loads(out)
    assert (day["station_name"], day["sido_name"], day["kst_date"]) == ("종로구", "서울", RECENT.isoformat())
    assert (day["expected"], day["received"], day["flagged"], day["missing"]) == (24, 22, 0, 2)
    assert day["missing_hours"] == ["03:00", "24:00"] and day["repairable"] == 2 and day["past_window"] == 0
    assert day["completeness"] == round(100 * 22 / 24, 2)
    code, text = run_gaps(tmp_path)
    assert code == 1
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["station", "province", "KST"]
    assert lines[1].split()[:7] == ["종로구", "서울", RECENT.isoformat(), "24", "22", "0", "2"]
    assert lines[1].endswith("03:00 24:00")
    # totals over every station-day: 4 days of 24 hours, 2 missing, 2 flagged (해운대구's 06:00 each day)
    assert lines[2].startswith("total: 2 stations, 4 station-days; 96 hours expected, 92 received, 2 flagged")
    assert "2 missing hours can still be fetched" in lines[3]


def test_only_holes_past_the_window_exit_0_and_say_so(tmp_path: Path) -> None:
    asyncio.run(fill(url_of(tmp_path), recent_hole=False, old_hole=True))
    code, out = run_gaps(tmp_path, "--json")
    assert code == 0
    (day,) = json.loads(out)
    assert day["kst_date"] == OLD.isoformat() and day["repairable"] == 0 and day["past_window"] == 2
    code, text = run_gaps(tmp_path)
    assert code == 0 and "(past the window)" in text and "nothing repairable is missing" in text


def test_selections_narrow_the_report(tmp_path: Path) -> None:
    asyncio.run(fill(url_of(tmp_path), recent_hole=True, old_hole=True))
    assert run_gaps(tmp_path, "--json")[0] == 1
    assert len(json.loads(run_gaps(tmp_path, "--json")[1])) == 2
    code, out = run_gaps(tmp_path, "--json", "--until", (OLD + timedelta(days=1)).isoformat())
    assert code == 0 and [d["kst_date"] for d in json.loads(out)] == [OLD.isoformat()]
    code, out = run_gaps(tmp_path, "--json", "--sido", "부산")
    assert code == 0 and json.loads(out) == []
    code, out = run_gaps(tmp_path, "--json", "--station", "해운대구", "--all")
    assert code == 0 and [(d["kst_date"], d["flagged"], d["missing"]) for d in json.loads(out)] == [
        (OLD.isoformat(), 1, 0), (RECENT.isoformat(), 1, 0)
    ]  # fmt: skip
    code, out = run_gaps(tmp_path, "--json", "--since", RECENT.isoformat(), "--station", "종로구")
    assert code == 1 and len(json.loads(out)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-13-01"], "--since"),
        (["--since", "2026-11-02", "--until", "2026-11-01"], "is after --until"),
        (["--sido", "화성"], "--sido"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    asyncio.run(fill(url_of(tmp_path), recent_hole=False, old_hole=False))
    code, out = run_gaps(tmp_path, *args)
    assert code == 2 and message in out and "Traceback" not in out


def test_a_missing_database_is_one_line(tmp_path: Path) -> None:
    code, out = run_gaps(tmp_path)
    assert code == 2 and "does not exist yet" in out and out.count("\n") == 1


def test_a_database_before_the_ledger_says_to_migrate(tmp_path: Path) -> None:
    from pipeline.load.db import upgrade_sync

    upgrade_sync(url_of(tmp_path), "0004")
    code, out = run_gaps(tmp_path)
    assert code == 2 and "run 'pipeline migrate'" in out and out.count("\n") == 1


def test_a_hole_a_series_already_lacked_past_the_late_window_is_not_repairable(tmp_path: Path) -> None:
    from pipeline.load.coverage import HoleMark, mark_holes

    url = url_of(tmp_path)
    asyncio.run(fill(url, recent_hole=True, old_hole=False))

    async def tried() -> None:  # the station job's series lacked 03:00; it gives it up at its next run
        engine = create_engine(url)
        try:
            await mark_holes(Writer(engine), [HoleMark(RECENT, "종로구", 1 << 2, 0)], datetime.now(UTC))
        finally:
            await engine.dispose()

    asyncio.run(tried())
    code, out = run_gaps(tmp_path, "--json")
    (day,) = json.loads(out)
    assert code == 1 and day["missing_hours"] == ["03:00", "24:00"] and day["repairable"] == 1


def test_the_view_agrees_with_the_command(tmp_path: Path) -> None:
    asyncio.run(fill(url_of(tmp_path), recent_hole=True, old_hole=True))
    import sqlite3

    with sqlite3.connect(tmp_path / "g.db") as conn:
        rows = conn.execute(
            "SELECT station_name, kst_date, expected, received, flagged, missing, missing_mask FROM air_completeness "
            "WHERE missing > 0 ORDER BY kst_date"
        ).fetchall()
    assert rows == [("종로구", str(d), 24, 22, 0, 2, (1 << 23) | (1 << 2)) for d in (OLD, RECENT)]


def test_the_totals_equal_the_views_sums(tmp_path: Path) -> None:
    """The command sums the days without a hole in SQL, the others in Python; the view counts every row."""
    from pipeline.gaps import Selection, find_gaps

    url = url_of(tmp_path)
    asyncio.run(fill(url, recent_hole=True, old_hole=True))

    async def both() -> tuple[object, ...]:
        engine = create_engine(url)
        try:
            now = datetime.now(UTC)
            report = await find_gaps(engine, Selection(), now)
            listed = await find_gaps(engine, Selection(), now, every_day=True)
        finally:
            await engine.dispose()
        return report.totals, listed.totals, report.station_days, listed.station_days, len(listed.days)

    import sqlite3

    totals, every, days, every_days, listed = asyncio.run(both())
    with sqlite3.connect(tmp_path / "g.db") as conn:
        view = conn.execute(
            "SELECT sum(expected), sum(received), sum(flagged), sum(not_published), sum(missing), count(*) "
            "FROM air_completeness"
        ).fetchone()
    assert totals == every
    assert (totals.expected, totals.received, totals.flagged, totals.unpublished, totals.missing, days) == view  # type: ignore[attr-defined]
    assert days == every_days == listed == 4
