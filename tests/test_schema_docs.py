"""The schema page (docs/schema.md) is generated from a freshly migrated database and must be current."""

from __future__ import annotations

from pathlib import Path

from pipeline.schema_docs import END, PAGE, START, main, render_schema, splice

SCHEMA_PAGE = Path(__file__).resolve().parents[1] / PAGE


def test_schema_page_is_up_to_date() -> None:
    assert main([str(SCHEMA_PAGE), "--check"]) == 0, f"run: python -m pipeline.schema_docs --write {PAGE}"


def test_every_table_and_column_is_documented_with_a_meaning() -> None:
    text = render_schema()
    for table in ("runs", "movies", "movie_snapshots", "air_stations", "air_readings", "rejects", "daemon_jobs"):
        assert f"### `{table}`" in text
    assert "| `measured_at` | DATETIME (UTC text) | no | key; UTC end of the measured hour |" in text
    assert "| `pm25` | INTEGER | yes | µg/m³ |" in text


def test_check_fails_when_out_of_date(tmp_path: Path) -> None:
    stale = tmp_path / "schema.md"
    stale.write_text(f"# x\n{START}\nold\n{END}\n", encoding="utf-8")
    assert main([str(stale), "--check"]) == 1
    assert main([str(stale), "--write"]) == 0
    assert main([str(stale), "--check"]) == 0
    assert splice(stale.read_text(encoding="utf-8"), "new\n").count("new") == 1
