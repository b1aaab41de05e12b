"""`pipeline bench --quick`: a smoke test of the harness. It checks that every figure is produced and sane,
not that targets are met (speed is measured by the benchmark, never by a timed test)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.bench import SECTIONS, Line, format_line, synthetic_readings


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
    loader = [line for line in lines if line["section"] == "loader" and line["baseline"]]
    assert len(loader) >= 2 and all(line["value"] > 1000 for line in loader)
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
