"""`pipeline bench --quick`: a smoke test of the harness. It checks that every figure is produced and sane,
not that targets are met (speed is measured by the benchmark, never by a timed test)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.bench import SECTIONS, Line, Sizes, format_line, loader, synthetic_readings
from pipeline.bench.loader import Timed, loader_lines, loads, unexpected
from pipeline.load.rows import encode_readings
from pipeline.load.tables import air_readings
from pipeline.load.writer import Writer
from pipeline.transform.airkorea import AirBatch


@pytest.mark.slow
def test_quick_bench_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "pipeline", "bench", "--quick", "--json", str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["quick"] is True and payload["machine"]["cpus"] >= 1
    lines = payload["lines"]
    assert {line["section"] for line in lines} == set(SECTIONS)
    for line in lines:
        if line["value"] is None:  # an optional peer (dlt) that is not installed says so
            assert "not installed" in line["note"]
            continue
        assert math.isfinite(line["value"]) and line["value"] >= 0, line
        if line["ratio"] is not None:
            assert math.isfinite(line["ratio"]) and line["ratio"] > 0, line
        if line["target"] and line["target"] != "report":
            assert isinstance(line["passed"], bool), line
    by_name = {(line["section"], line["name"].split(",")[0]): line for line in lines}
    extract = next(line for line in lines if line["section"] == "extract" and line["unit"] == "s")
    assert extract["baseline"] == pytest.approx(0.2)  # ceil(100 / 10) × 20 ms
    assert extract["value"] >= extract["baseline"]  # nothing beats the ideal bound
    check_loader_lines(lines, Sizes.quick().loader_rows)
    backfill = next(line for line in lines if line["section"] == "backfill" and line["unit"] == "rows/s")
    assert backfill["value"] > 0 and "rows" in backfill["name"]
    (archived,) = [line for line in lines if line["name"].startswith("archive on / off: the backfill")]
    assert archived["value"] == backfill["value"] and archived["baseline"] > 0  # the same trials, and those off
    assert archived["baseline_name"] == "archive off" and isinstance(archived["passed"], bool)
    assert "MB stored" in archived["note"]
    (replayed,) = [line for line in lines if line["name"].startswith("replay of the backfill's archive")]
    assert replayed["value"] > 0 and replayed["baseline"] == backfill["value"]  # beside the same run's backfill
    assert replayed["ratio"] == pytest.approx(replayed["value"] / backfill["value"])
    cycle, cpu = [line for line in lines if line["section"] == "archive"]
    assert cycle["unit"] == cpu["unit"] == "s" and cycle["baseline_name"] == cpu["baseline_name"] == "archive off"
    assert 0 < cycle["value"] < 60 and 0 < cycle["baseline"] < 60 and isinstance(cycle["passed"], bool)
    assert "archived" in cycle["note"] and "ms a response" in cpu["note"]
    assert any(line["section"] == "daemon" and line["unit"] == "MB" and 10 < line["value"] < 2000 for line in lines)
    (web_rss,) = [line for line in lines if line["name"].startswith("RSS of the idle daemon with the web surface")]
    assert web_rss["baseline"] > 10 and web_rss["value"] > 10 and isinstance(web_rss["passed"], bool)
    web = [line for line in lines if line["section"] == "web"]
    assert [line["name"].split(" server time")[0] for line in web] == [
        "Collection (/)", "Air (/air)", "Air, one station (/air?station=…)", "Movies (/movies)",
        "Movies, one movie (/movies?movie=…)", "/metrics", "/healthz",
    ]  # fmt: skip
    assert all(line["unit"] == "ms" and "UNEXPECTED" not in line["note"] for line in web), web
    assert len([line for line in lines if line["section"] == "queries"]) == 3
    assert by_name  # every line printed too
    assert result.stdout.count("\n") >= len(lines)


@pytest.mark.slow
def test_quick_simulated_day_beside_the_old_default(tmp_path: Path) -> None:
    out = tmp_path / "day.json"
    result = subprocess.run([sys.executable, "-m", "pipeline", "bench", "--quick", "--only", "day", "--json", str(out)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = json.loads(out.read_text(encoding="utf-8"))["lines"]
    assert {line["section"] for line in lines} == {"day"}
    for line in lines:  # what the whole quick bench asserts of every line
        assert math.isfinite(line["value"]) and line["value"] >= 0, line
        if line["ratio"] is not None:
            assert math.isfinite(line["ratio"]) and line["ratio"] > 0, line
        if line["target"] and line["target"] != "report":
            assert isinstance(line["passed"], bool), line

    def named(start: str) -> dict[str, Any]:
        (found,) = [line for line in lines if line["name"].startswith(start)]
        return found

    calls, tmdb = named("AirKorea calls/"), named("TMDB requests/")
    assert 0 < calls["value"] < calls["baseline"] and calls["baseline_name"] == "old default"
    assert 0 < tmdb["value"] <= tmdb["baseline"]  # the one TMDB run of 6 hours fetches every movie's details
    completeness = named("completeness")
    assert completeness["value"] >= 99 and completeness["baseline"] < completeness["value"]  # old: the late hour
    assert named("station-hours missing per `gaps`")["value"] == 0
    gaps = named("gaps on ")
    assert gaps["unit"] == "ms" and gaps["value"] > 0
    assert named("gaps --json")["value"] > 0 and named("gaps --station")["value"] > 0
    archive = named("archive: bytes per 6 hours")
    assert archive["unit"] == "MB" and 0 < archive["value"] < 2 and archive["baseline"] > 0  # both archive
    assert archive["target"] == "report" and "MB received" in archive["note"]
    assert result.stdout.count("\n") >= len(lines)


def test_format_line_and_synthetic_rows() -> None:
    text = format_line(Line("loader", "x", 1234.5, "rows/s", 1000.0, "raw", 1.2345, "≥ 0.80", True))
    assert "1,234" in text and "PASS" in text and "1.234" in text
    rows = synthetic_readings(1000, stations=10)
    assert len(rows) == 1000 and len({r.station_name for r in rows}) == 10
    assert len({(r.station_name, r.measured_at) for r in rows}) == 1000  # unique keys: a fair upsert load


UPSERTS = ("fresh", "again, unchanged", "again, 5 % changed")


def check_loader_lines(lines: list[dict[str, Any]], n: int) -> None:
    """The loader section's SQLite lines: three upserts of ``n`` readings beside raw executemany of the
    unconditional upsert, each verified by the database's counts, then dlt's lines (or why there are none)."""
    section = [line for line in lines if line["section"] == "loader" and not line["name"].startswith("PostgreSQL")]
    upserts = [line for line in section if line["name"].startswith("upsert ")]
    assert [line["name"] for line in upserts] == [f"upsert {n:,} readings, {label}" for label in UPSERTS]
    assert [line["target"] for line in upserts] == ["≥ 0.80", "≥ 1.50", "≥ 0.80"]
    for line in upserts:
        assert line["baseline_name"] == "raw sqlite3 executemany (rows/s)", line
        assert line["value"] > 1000 and line["baseline"] > 1000, line
        assert line["ratio"] == pytest.approx(line["value"] / line["baseline"]), line
        assert "UNEXPECTED" not in line["note"] and "the same schema and revision trigger" in line["note"], line
        # the counts were as expected, so only the speed decides
        assert line["passed"] is (line["ratio"] >= float(line["target"].removeprefix("≥ "))), line
    fresh, unchanged, changed = upserts
    assert "the first chunk's pre-read" in fresh["note"]
    assert f"ours: 0 written, 0 revisions; raw rewrites all {n:,} rows (0 revisions)" in unchanged["note"]
    revised = math.ceil(n / 20)
    assert f"ours: {revised:,} written (5 %), {revised:,} revisions; raw rewrites all {n:,} rows ({revised:,} " \
        "revisions)" in changed["note"]  # fmt: skip
    peers = [line["name"] for line in section if line not in upserts]
    assert peers in (["dlt (sqlalchemy destination, merge)"], ["ours vs dlt merge, fresh", "ours vs dlt merge, again"])


def test_loader_lines_counted_and_beside_raw_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_dlt", lambda rows, workdir: None)  # dlt's merge alone takes a minute
    lines = loader_lines(replace(Sizes.quick(), loader_rows=12_000), repeats=1)  # three chunks a load
    check_loader_lines([asdict(line) for line in lines], 12_000)


def test_loader_line_fails_when_ours_writes_unchanged_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unconditional(writer: Writer, batch: AirBatch, run_id: int, now: datetime) -> int:
        prepared = writer.prepare(air_readings)  # today's statement: rewrites every row
        return await writer.write_encoded(prepared, encode_readings(prepared.codec, batch, run_id, now))

    monkeypatch.setattr(loader, "_dlt", lambda rows, workdir: None)
    monkeypatch.setattr(loader, "upsert_air_readings", unconditional)
    fresh, unchanged, changed, _dlt = loader_lines(replace(Sizes.quick(), loader_rows=2000), repeats=1)
    assert fresh.passed is (fresh.ratio is not None and fresh.ratio >= 0.8) and "UNEXPECTED" not in fresh.note
    assert unchanged.passed is False
    assert unchanged.note.startswith("UNEXPECTED: ours returned 2,000, wrote 2,000, recorded 0 revisions "
                                     "(expected 0, 0, 0); median of 1")  # fmt: skip
    assert changed.passed is False
    assert changed.note.startswith("UNEXPECTED: ours returned 2,000, wrote 2,000, recorded 100 revisions "
                                   "(expected 100, 100, 100)")  # fmt: skip


def test_loader_loads_and_their_expected_counts() -> None:
    rows = synthetic_readings(100, stations=5)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    fresh, unchanged, changed = loads(rows, start)
    assert [load.label for load in (fresh, unchanged, changed)] == list(UPSERTS)
    assert [load.run_id for load in (fresh, unchanged, changed)] == [1, 2, 3]
    assert fresh.now == start < unchanged.now < changed.now  # each a later write
    assert fresh.readings is unchanged.readings is rows
    assert [(load.written, load.revised) for load in (fresh, unchanged, changed)] == [(100, 0), (0, 0), (5, 5)]
    differ = [i for i, (old, new) in enumerate(zip(rows, changed.readings, strict=True)) if old != new]
    assert differ == [0, 20, 40, 60, 80]
    assert all(changed.readings[i] == replace(rows[i], pm10=(rows[i].pm10 or 0) + 1) for i in differ)
    # what the bench checks after each load
    assert unexpected(unchanged, [Timed(1.0, 0, 0, 0)], [Timed(1.0, 100, 0)]) == ""
    assert unexpected(changed, [Timed(1.0, 5, 5, 5)], [Timed(1.0, 100, 5)]) == ""
    assert unexpected(unchanged, [Timed(1.0, 3, 0, 3)], [Timed(1.0, 100, 0)]) == (
        "ours returned 3, wrote 3, recorded 0 revisions (expected 0, 0, 0)"
    )
    assert unexpected(changed, [Timed(1.0, 5, 4, 5)], []) != ""  # a revision the trigger did not record
    assert unexpected(changed, [], [Timed(1.0, 100, 0)], "COPY") == (
        "COPY wrote 100, recorded 0 revisions (expected 100, 5)"
    )
    assert unexpected(fresh, [Timed(1.0, 100, 0, 100)] * 2, [Timed(1.0, 99, 0)] * 2).count("raw wrote 99") == 1
