"""``pipeline replay``: the tables rebuilt from the raw archive alone, exactly, idempotently, without a request."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from pipeline.cli import main
from pipeline.config import parse_settings
from pipeline.keys import Secrets
from pipeline.lifecycle import Opened
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.replay import ReplaySelection, replay
from pipeline.runner import run_jobs
from pipeline.simulator import SimulatorState
from tests.backends import plain_rows

FIXED = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
#: the data tables a replay rebuilds, children first (the order they are emptied in)
DATA_TABLES = ("rejects", "movie_revisions", "movie_snapshots", "movies", "air_coverage", "air_reading_revisions",
               "air_readings", "air_published_hours", "air_stations")  # fmt: skip
#: when a row was written: the replay writes it again, later (every other column must be equal)
WRITTEN_AT = {"updated_at", "first_seen_at", "created_at", "details_fetched_at", "revised_at", "previous_at"}


def settings_for(url: str) -> Any:
    return parse_settings(
        {
            "database": {"url": url},
            "sources": {"tmdb": {"rate_limit": 40, "max_pages": 2},
                        "airkorea": {"rate_limit": 50, "stations": ["종로구"]}},
        }
    )  # fmt: skip


async def tables(writer: Writer) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with writer.engine.connect() as conn:
        for table in DATA_TABLES:
            result = await conn.execute(text(f"SELECT * FROM {table}"))
            keep = [i for i, name in enumerate(result.keys()) if name not in WRITTEN_AT and name != "id"]
            rows = plain_rows([tuple(row[i] for i in keep) for row in result.all()])
            found[table] = sorted(rows, key=repr)
    return found


async def empty(writer: Writer) -> None:
    async with writer.transaction() as conn:
        for table in DATA_TABLES:
            await conn.execute(text(f"DELETE FROM {table}"))


async def test_replay_into_emptied_tables_reproduces_them_and_twice_changes_nothing(
    db_url: str, writer: Writer
) -> None:
    settings = settings_for(db_url)
    state = SimulatorState(clock=FIXED)
    async with simulated(settings, state) as (local, secrets, sim):
        for hour in range(3):  # three cycles: the ledger's expected hours, a watch-list, snapshots per run
            state.clock = FIXED + hour * HOUR
            state.quirks.missing = {("중구", FIXED.replace(minute=0) + HOUR)} if hour == 1 else set()
            assert (await run_jobs(local, secrets, writer)).status == "success"
        requests = sum(sim.state.counters.values())
    live = await tables(writer)
    assert live["movie_snapshots"] and live["air_readings"] and live["air_coverage"] and live["air_published_hours"]
    await empty(writer)
    opened = Opened(settings, Secrets(), writer.engine, writer)  # no keys, no simulator: the archive only
    report = await replay(opened, ReplaySelection())
    assert report.status == "success" and report.skipped == 0 and report.runs == 3
    assert report.bodies == requests
    assert await tables(writer) == live
    again = await replay(opened, ReplaySelection())
    assert again.bodies == requests and await tables(writer) == live
    async with writer.engine.connect() as conn:
        replays = (await conn.execute(text("SELECT job, trigger, status FROM runs WHERE trigger = 'replay'"))).all()
    assert [tuple(r) for r in replays] == [("replay", "replay", "success")] * 2


async def test_a_body_the_transform_rejected_replays_once_the_transform_accepts_it(
    db_url: str, writer: Writer, monkeypatch: Any
) -> None:
    from pipeline.transform import airkorea as transform

    settings = settings_for(db_url)
    real = transform.to_air_batch

    def rejecting(items: Any, station_name: Any = None) -> Any:  # a transform that cannot read these pages
        batch = real(items, station_name)
        return transform.AirBatch([], [], [[] for _ in batch.values], batch.stations, [])

    monkeypatch.setattr("pipeline.jobs.airkorea.to_air_batch", rejecting)
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, _sim):
        await run_jobs(local, secrets, writer, ["airkorea_sido"])
    async with writer.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM air_readings"))).scalar_one() == 0
        assert (await conn.execute(text("SELECT count(*) FROM raw_responses"))).scalar_one() == 1
    monkeypatch.setattr("pipeline.jobs.airkorea.to_air_batch", real)  # the transform fixed
    report = await replay(Opened(settings, Secrets(), writer.engine, writer), ReplaySelection(source="airkorea"))
    assert report.rows["air_readings"] > 600
    async with writer.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM air_readings"))).scalar_one() == report.rows[
            "air_readings"
        ]


def test_the_command_dry_run_and_bad_arguments(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'r.db'}\n", encoding="utf-8")

    def run(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(out):
            code = main([*args, "--config", str(config)])
        return code, out.getvalue()

    assert run("run", "--once", "--simulate", "--job", "airkorea_sido")[0] == 0
    code, out = run("replay", "--dry-run")
    assert code == 0 and "1 airkorea getCtprvnRltmMesureDnsty" in out and "records" in out
    code, out = run("replay", "--source", "airkorea")
    # into the tables the run filled: the same rows, so nothing is written again (write-nothing upserts)
    assert code == 0 and "replay run 2: success" in out and "wrote 0 air_readings" in out
    code, out = run("archive", "--json")
    assert code == 0 and json.loads(out)["responses"] == 1
    code, out = run("replay", "--since", "2026-11-02", "--until", "2026-11-01")
    assert code == 2 and "is after --until" in out
    code, out = run("replay", "--source", "weather")
    assert code == 2 and "--source" in out


async def test_a_tmdb_backfill_replays_to_the_same_snapshots_and_movies(db_url: str, writer: Writer) -> None:
    from datetime import date

    from pipeline import backfill as bf

    settings = settings_for(db_url)
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, _sim):
        days = bf.DayRange(date(2026, 9, 1), date(2026, 9, 30))
        assert (await bf.backfill_tmdb(local, secrets, writer, days, region="KR")).status == "done"
    live = await tables(writer)
    assert len(live["movie_snapshots"]) > 20
    await empty(writer)
    report = await replay(Opened(settings, Secrets(), writer.engine, writer), ReplaySelection(source="tmdb"))
    assert report.status == "success" and report.skipped == 0
    assert await tables(writer) == live


async def test_an_airkorea_backfill_replays_to_the_range_it_kept(db_url: str, writer: Writer) -> None:
    from datetime import date

    from pipeline import backfill as bf

    settings = settings_for(db_url)
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, _sim):
        days = bf.DayRange(date(2026, 11, 25), date(2026, 11, 26))
        plan = await bf.plan_airkorea(local, writer, days, now=FIXED, stations=["종로구", "중구"])
        report = await bf.backfill_airkorea(local, secrets, writer, plan, now=lambda: FIXED)
        assert report.status == "done" and report.rows_out_of_range > 0  # the MONTH series reached further back
    live = await tables(writer)
    assert len(live["air_readings"]) == 2 * 48
    await empty(writer)
    replayed = await replay(Opened(settings, Secrets(), writer.engine, writer), ReplaySelection(source="airkorea"))
    assert replayed.status == "success"
    assert await tables(writer) == live  # only the range, as the backfill kept it


async def test_bodies_an_earlier_version_stored_with_zlib_replay_as_well(db_url: str, writer: Writer) -> None:
    """Bodies archived before 2026-12-02 are zlib (``encoding = 'zlib'``); new ones are zstd: both replay."""
    import zlib

    from pipeline.load.archive import body_of

    settings = settings_for(db_url)
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, _sim):
        assert (await run_jobs(local, secrets, writer)).status == "success"
    live = await tables(writer)
    async with writer.engine.connect() as conn:
        hashes = [h for (h,) in (await conn.execute(text("SELECT hash FROM raw_bodies ORDER BY hash"))).all()]
        encodings = {e for (e,) in (await conn.execute(text("SELECT DISTINCT encoding FROM raw_bodies"))).all()}
    assert encodings == {"zstd"} and len(hashes) > 3
    bodies = {h: await body_of(writer, h) for h in hashes}
    async with writer.transaction() as conn:  # as the earlier version stored them
        for digest in hashes[::2]:
            old = zlib.compress(bodies[digest], 6)
            await conn.execute(text("UPDATE raw_bodies SET encoding = 'zlib', body = :b, stored_size = :n WHERE hash = :h"),
                               {"b": old, "n": len(old), "h": digest})  # fmt: skip
    assert {h: await body_of(writer, h) for h in hashes} == bodies
    await empty(writer)
    report = await replay(Opened(settings, Secrets(), writer.engine, writer), ReplaySelection())
    assert report.status == "success" and report.skipped == 0
    assert await tables(writer) == live
