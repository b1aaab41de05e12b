"""``GET /metrics``: every family is there with its type, every value equals the same question asked of the
database in SQL, a scrape folds only what is new (a run running at one scrape is counted when it finishes),
no secret reaches the text, and the handler answers in the Prometheus text format."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from pipeline.config import Settings, parse_settings
from pipeline.keys import load_secrets
from pipeline.load.archive import prune
from pipeline.load.db import create_engine, migrate
from pipeline.load.quota import kst_day
from pipeline.load.runs import RunTotals, finish_run, record_window, start_run
from pipeline.load.tables import air_reading_revisions, movie_revisions, raw_responses, rejects, runs
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.redaction import redact, secret_forms
from pipeline.runner import run_once
from pipeline.simulator import SimulatorState
from pipeline.status import collect_status
from pipeline.web import metrics
from pipeline.web.app import CONTEXT, WebContext
from pipeline.web.database import read_only_engine
from pipeline.web.metrics import cache_for, handle, render_metrics
from tests.backends import fetch_async

FIXED = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 09:30 KST: the simulator's clock, and the quota's day
OPERATIONS = ("getCtprvnRltmMesureDnsty", "getMsrstnAcctoRltmMesureDnsty")

TYPES = {
    "pipeline_runs": "counter",
    "pipeline_runs_in_progress": "gauge",
    "pipeline_job_runs": "counter",
    "pipeline_run_duration_seconds": "histogram",
    "pipeline_rows_written": "counter",
    "pipeline_rows_rejected": "counter",
    "pipeline_requests": "counter",
    "pipeline_request_failures": "counter",
    "pipeline_retries": "counter",
    "pipeline_airkorea_quota_calls": "gauge",
    "pipeline_airkorea_quota_limit": "gauge",
    "pipeline_airkorea_quota_left": "gauge",
    "pipeline_airkorea_quota_exhausted": "gauge",
    "pipeline_job_last_success_age_seconds": "gauge",
    "pipeline_job_last_success_timestamp_seconds": "gauge",
    "pipeline_job_freshness_limit_seconds": "gauge",
    "pipeline_job_fresh": "gauge",
    "pipeline_job_enabled": "gauge",
    "pipeline_healthy": "gauge",
    "pipeline_completeness_24h_ratio": "gauge",
    "pipeline_completeness_24h_station_hours": "gauge",
    "pipeline_completeness_24h_expected_station_hours": "gauge",
    "pipeline_newest_published_hour_timestamp_seconds": "gauge",
    "pipeline_archive_responses": "gauge",
    "pipeline_archive_bodies": "gauge",
    "pipeline_archive_received_bytes": "gauge",
    "pipeline_archive_stored_bytes": "gauge",
    "pipeline_revisions": "counter",
}

Labels = tuple[tuple[str, str], ...]


def settings_for(url: str, **sources: Any) -> Settings:
    return parse_settings(
        {"database": {"url": url},
         "sources": {"tmdb": {"rate_limit": 40, "max_pages": 1}, "airkorea": {"rate_limit": 50}, **sources}}
    )  # fmt: skip


def parse(text: bytes) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text.decode())}


def values(found: dict[str, Any], sample: str) -> dict[Labels, float]:
    """The samples named ``sample``, by their labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in found.values()
        for s in family.samples
        if s.name == sample
    }


def by(rows: list[tuple[Any, ...]], *names: str) -> dict[Labels, float]:
    """SQL rows ``(label values..., n)`` keyed like :func:`values`."""
    return {tuple(sorted(zip(names, map(str, row[:-1]), strict=True))): float(row[-1]) for row in rows}


def as_time(value: Any) -> datetime:
    """A timestamp as SQL returns it: aware on PostgreSQL, UTC text on SQLite."""
    if isinstance(value, datetime):
        return value
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


async def expect_database(found: dict[str, Any], url: str) -> None:
    """Every family fed by the database holds what SQL finds there."""
    sql = lambda query, **params: fetch_async(url, query, params)  # noqa: E731
    assert {name: family.type for name, family in found.items()} == TYPES
    finished = await sql("SELECT job, status, count(*) FROM runs WHERE status <> 'running' GROUP BY job, status")
    assert values(found, "pipeline_runs_total") == by(finished, "job", "status")
    running = await sql("SELECT job, count(*) FROM runs WHERE status = 'running' GROUP BY job")
    assert values(found, "pipeline_runs_in_progress") == by(running, "job")
    ran = await sql(
        "SELECT job, started_at, finished_at FROM runs WHERE status NOT IN ('running', 'missed', 'skipped')"
    )
    assert values(found, "pipeline_run_duration_seconds_count") == by(
        list(Counter(job for job, _s, _f in ran).items()), "job"
    )
    durations: dict[str, list[float]] = {}
    for job, started, ended in ran:
        durations.setdefault(job, []).append((as_time(ended) - as_time(started)).total_seconds())
    assert values(found, "pipeline_run_duration_seconds_sum") == pytest.approx(
        by([(job, sum(taken)) for job, taken in durations.items()], "job")
    )
    bounds = [*metrics.DURATION_BUCKETS, float("inf")]
    assert values(found, "pipeline_run_duration_seconds_bucket") == {
        (("job", job), ("le", "+Inf" if bound == float("inf") else repr(bound))): sum(t <= bound for t in taken)
        for job, taken in durations.items()
        for bound in bounds
    }
    # rows written per table: the sums of every job's `rows` in runs.details, and in all the runs' own totals
    written = Counter[str]()
    for (details,) in await sql("SELECT details FROM runs WHERE details IS NOT NULL"):
        for entry in json.loads(details).values():
            for table, n in (entry.get("rows") or {}).items() if isinstance(entry, dict) else ():
                written[table] += n
    assert values(found, "pipeline_rows_written_total") == by([(t, n) for t, n in written.items() if n], "table")
    [(upserted, requests)] = await sql("SELECT coalesce(sum(rows_upserted), 0), coalesce(sum(requests), 0) FROM runs")
    assert sum(values(found, "pipeline_rows_written_total").values()) == upserted
    assert sum(values(found, "pipeline_requests_total").values()) == requests
    assert values(found, "pipeline_rows_rejected_total") == by(
        await sql("SELECT source, count(*) FROM rejects GROUP BY source"), "source"
    )
    revisions = [
        (name, (await sql(f"SELECT count(*) FROM {name}"))[0][0])
        for name in ("air_reading_revisions", "movie_revisions")
    ]
    assert values(found, "pipeline_revisions_total") == by(revisions, "table")
    calls = dict(await sql("SELECT operation, calls FROM api_calls WHERE kst_date = :day", day=kst_day(FIXED)))
    assert values(found, "pipeline_airkorea_quota_calls") == by(
        [(op, calls.get(op, 0)) for op in OPERATIONS], "operation"
    )
    assert values(found, "pipeline_airkorea_quota_left") == by(
        [(op, 500 - calls.get(op, 0)) for op in OPERATIONS], "operation"
    )
    await expect_archive(found, url)


async def expect_archive(found: dict[str, Any], url: str) -> None:
    [(responses, received)] = await fetch_async(
        url,
        "SELECT count(*), coalesce(sum(b.size), 0) FROM raw_responses r JOIN raw_bodies b ON b.hash = r.body_hash",
    )
    [(bodies, stored)] = await fetch_async(url, "SELECT count(*), coalesce(sum(stored_size), 0) FROM raw_bodies")
    assert values(found, "pipeline_archive_responses") == {(): responses}
    assert values(found, "pipeline_archive_received_bytes") == {(): received}
    assert values(found, "pipeline_archive_bodies") == {(): bodies}
    assert values(found, "pipeline_archive_stored_bytes") == {(): stored}


def requests_per_operation(found: dict[str, Any]) -> Counter[str]:
    counted = Counter[str]()
    for labels, n in values(found, "pipeline_requests_total").items():
        counted[dict(labels)["operation"]] += int(n)
    return counted


async def add_rejects_and_revisions(writer: Writer, run_id: int, at: datetime) -> None:
    async with writer.transaction() as conn:
        await conn.execute(
            rejects.insert(),
            [{"run_id": run_id, "source": source, "reason": "no dataTime", "record": "{}", "created_at": at}
             for source in ("airkorea", "airkorea", "tmdb")],
        )  # fmt: skip
        await conn.execute(
            air_reading_revisions.insert(),
            [{"station_name": f"s{i}", "measured_at": at, "revised_at": at, "previous_at": at, "changed": " pm10 "}
             for i in range(3)],
        )  # fmt: skip
        await conn.execute(
            movie_revisions.insert(), [{"tmdb_id": 1, "revised_at": at, "previous_at": at, "changed": " title "}]
        )


@pytest.mark.parametrize("settle", [0.0, 3600.0], ids=["settled", "unsettled"])
async def test_values_equal_the_database_and_each_scrape_folds_only_what_is_new(
    db_url: str, settle: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``settled``: every row is settled at once, so the floor moves at each scrape (the running run waits
    below it); ``unsettled``: nothing settles, every row is told apart by the ids folded past the floor."""
    monkeypatch.setattr(metrics, "SETTLE_SECONDS", settle)
    monkeypatch.setattr(metrics, "ARCHIVE_BUCKET", 4)  # the prune below drops whole buckets and recounts two
    settings = settings_for(db_url)
    await migrate(db_url)
    writable = create_engine(db_url)
    writer = Writer(writable)
    engine = read_only_engine(db_url)
    try:
        async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, simulator):
            await run_once(local, secrets)
            first_cycle = Counter(simulator.state.counters)
            text = await render_metrics(settings, engine, now=FIXED)
            keys = secret_forms(secrets.tmdb_api_key or "") | secret_forms(secrets.data_go_api_key or "")
            assert keys and not [key for key in keys if key.encode() in text]  # the simulator's keys
            one = parse(text)
            await expect_database(one, db_url)
            assert requests_per_operation(one) == first_cycle
            assert values(one, "pipeline_airkorea_quota_calls")[(("operation", OPERATIONS[0]),)] == 1

            # a daemon run that is still running at the next scrape, a missed window, rejects and revisions
            running = await start_run(writer, "tmdb", "schedule")
            await record_window(writer, "airkorea_sido", "missed", FIXED, "the daemon was down")
            [(cycle_id,)] = await fetch_async(db_url, "SELECT min(id) FROM runs")
            await add_rejects_and_revisions(writer, cycle_id, FIXED)  # written long ago: the first count settles them
            two = parse(await render_metrics(settings, engine, now=FIXED))
            await expect_database(two, db_url)
            assert values(two, "pipeline_runs_in_progress") == {(("job", "tmdb"),): 1}
            assert values(two, "pipeline_rows_rejected_total") == {
                (("source", "airkorea"),): 2,
                (("source", "tmdb"),): 1,
            }
            assert values(two, "pipeline_revisions_total")[(("table", "air_reading_revisions"),)] == 3

            await add_rejects_and_revisions(writer, cycle_id, datetime.now(UTC))  # just written: counted in the tail
            await run_once(local, secrets)
            second_cycle = Counter(simulator.state.counters) - first_cycle
        manual = {"status": "success", "requests": {"now_playing": 2}, "failures": {"transient": 1}, "retries": 1,
                  "rows": {"movies": 5}}  # fmt: skip
        await finish_run(writer, running, "success", RunTotals(requests=2, rows_upserted=5), details={"tmdb": manual})
        three = parse(await render_metrics(settings, engine, now=FIXED))
        await expect_database(three, db_url)
        assert values(three, "pipeline_runs_in_progress") == {}
        # exactly what happened since the first scrape: the second cycle, the finished run, the missed window
        grown = Counter(values(three, "pipeline_runs_total"))
        grown.subtract(values(one, "pipeline_runs_total"))
        assert +grown == {
            (("job", "cycle"), ("status", "success")): 1,
            (("job", "tmdb"), ("status", "success")): 1,
            (("job", "airkorea_sido"), ("status", "missed")): 1,
        }
        assert requests_per_operation(three) - requests_per_operation(one) == second_cycle + Counter(now_playing=2)
        assert values(three, "pipeline_request_failures_total") == {
            (("error_class", "transient"), ("source", "tmdb")): 1
        }
        assert values(three, "pipeline_retries_total")[(("source", "tmdb"),)] == 1
        outcomes = values(three, "pipeline_job_runs_total")
        assert outcomes[(("job", "tmdb"), ("status", "success"))] == 3  # two cycles and the daemon's run
        assert outcomes[(("job", "airkorea_sido"), ("status", "missed"))] == 1
        # each finished run was parsed once, however many scrapes saw it
        [(finished,)] = await fetch_async(db_url, "SELECT count(*) FROM runs WHERE status <> 'running'")
        assert cache_for(engine).runs.parsed == finished == 4

        # retention deletes the oldest responses (the first cycle's, aged here) and the bodies nothing refers to
        # any more; a body the second cycle received again (the same now-playing page) stays
        [(last_of_first,)] = await fetch_async(db_url, f"SELECT max(id) FROM raw_responses WHERE run_id = {cycle_id}")
        [(old_responses,)] = await fetch_async(
            db_url, f"SELECT count(*) FROM raw_responses WHERE id <= {last_of_first}"
        )
        async with writer.transaction() as conn:
            aged = raw_responses.c.id <= last_of_first
            await conn.execute(update(raw_responses).where(aged).values(fetched_at=FIXED - timedelta(days=2)))
        pruned = await prune(writer, timedelta(days=1), FIXED)
        assert pruned.responses == old_responses and 0 < pruned.bodies < pruned.responses
        four = parse(await render_metrics(settings, engine, now=FIXED))
        await expect_database(four, db_url)
        assert cache_for(engine).runs.parsed == finished
    finally:
        await engine.dispose()
        await writable.dispose()


async def test_an_empty_database_gives_every_family_and_no_error(db_url: str) -> None:
    await migrate(db_url)
    engine = read_only_engine(db_url)
    try:
        found = parse(await render_metrics(settings_for(db_url, airkorea={"enabled": False}), engine, now=FIXED))
    finally:
        await engine.dispose()
    assert {name: family.type for name, family in found.items()} == TYPES
    assert values(found, "pipeline_runs_total") == {}
    assert values(found, "pipeline_airkorea_quota_calls") == {}  # the source is disabled
    assert values(found, "pipeline_archive_responses") == {(): 0}
    assert values(found, "pipeline_revisions_total") == {(("table", "air_reading_revisions"),): 0,
                                                         (("table", "movie_revisions"),): 0}  # fmt: skip
    assert values(found, "pipeline_job_fresh") == {(("job", "tmdb"),): 0}
    assert values(found, "pipeline_job_enabled")[(("job", "airkorea_sido"),)] == 0
    assert values(found, "pipeline_completeness_24h_ratio") == {}


@pytest.mark.backends("sqlite")
async def test_freshness_is_collect_status_verdict_whenever_it_would_change(db_url: str) -> None:
    """Between some scrapes only the clock moves (a limit passes, or a test goes back in time), between
    others a run finishes: every time, the gauges say what ``collect_status`` says at that moment."""
    await migrate(db_url)
    settings = settings_for(db_url)
    writable = create_engine(db_url)
    engine = read_only_engine(db_url)
    writer = Writer(writable)

    async def succeed(at: datetime, *jobs: str) -> None:
        run_id = await start_run(writer, "cycle", "manual", at)
        await finish_run(writer, run_id, "success", RunTotals(), details={job: {"status": "success"} for job in jobs})

    try:
        started = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
        await succeed(started, "tmdb", "airkorea_sido", "airkorea_stations")
        limits = {job.job: job.freshness_seconds for job in (await collect_status(settings, started, engine)).jobs}
        late = started + timedelta(seconds=limits["tmdb"] + 1)
        scrapes = [
            started + timedelta(seconds=limits["airkorea_sido"] - 1),  # all fresh
            started + timedelta(seconds=limits["airkorea_sido"] + 1),  # the AirKorea jobs stale: only the clock moved
            late,  # TMDB stale too
            late,  # TMDB succeeded again (below): fresh, at the same moment
            started + timedelta(seconds=10),  # back in time: every job fresh
        ]
        for step, now in enumerate(scrapes):
            if step == 3:
                await succeed(late - timedelta(minutes=1), "tmdb")
            found = parse(await render_metrics(settings, engine, now=now))
            report = await collect_status(settings, now, engine)
            assert values(found, "pipeline_job_fresh") == {(("job", j.job),): int(j.fresh) for j in report.jobs}
            assert values(found, "pipeline_healthy") == {(): int(report.healthy)}
            assert values(found, "pipeline_job_freshness_limit_seconds") == {
                (("job", j.job),): j.freshness_seconds for j in report.jobs
            }
            success = {j.job: j.last_success_at for j in report.jobs if j.last_success_at is not None}
            assert values(found, "pipeline_job_last_success_age_seconds") == {
                (("job", job),): (now - at).total_seconds() for job, at in success.items()
            }
            assert values(found, "pipeline_job_last_success_timestamp_seconds") == {
                (("job", job),): at.timestamp() for job, at in success.items()
            }
            fresh = {dict(labels)["job"] for labels, value in values(found, "pipeline_job_fresh").items() if value}
            assert fresh == [
                {"tmdb", "airkorea_sido", "airkorea_stations"}, {"tmdb"}, set(), {"tmdb"},
                {"tmdb", "airkorea_sido", "airkorea_stations"},
            ][step]  # fmt: skip
    finally:
        await engine.dispose()
        await writable.dispose()


@pytest.mark.backends("sqlite")
async def test_no_secret_reaches_the_text_and_the_handler_speaks_prometheus(
    db_url: str, aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmdb_key, data_go_key = "tmdbSECRET0123456789abcdef", "dataGo+SECRET/0123456789=="
    monkeypatch.setenv("TMDB_API_KEY", tmdb_key)
    monkeypatch.setenv("DATA_GO_API_KEY", data_go_key)
    secrets = load_secrets(dotenv_path=tmp_path / "absent.env")  # as the CLI does: registered with the redactor
    assert secrets.tmdb_api_key == tmdb_key
    await migrate(db_url)
    settings = settings_for(db_url)
    writable = create_engine(db_url)
    engine = read_only_engine(db_url)
    try:
        writer = Writer(writable)
        run_id = await start_run(writer, "tmdb", "schedule")
        await finish_run(writer, run_id, "failed", RunTotals())
        # what no writer of ours puts there (finish_run redacts): a key as a job, an operation, an error class
        leaked = {"tmdb": {"status": "failed", "requests": {f"now_playing?api_key={tmdb_key}": 1, data_go_key: 2},
                             "failures": {f"auth: {tmdb_key} refused": 1}, "rows": {tmdb_key: 3}}}  # fmt: skip
        async with writer.transaction() as conn:
            await conn.execute(update(runs).where(runs.c.id == run_id).values(job=tmdb_key, details=json.dumps(leaked)))
            await conn.execute(
                rejects.insert().values(run_id=run_id, source="x y", reason=tmdb_key, record="{}", created_at=FIXED)
            )
        app = web.Application()
        app[CONTEXT] = WebContext(settings, engine, datetime.now(UTC))
        app.router.add_get("/metrics", handle)
        # a name that only becomes a secret later (a key registered after the name was seen as a label)
        rotated = "rotatedKey0123456789"
        await finish_run(writer, await start_run(writer, rotated, "manual"), "success", RunTotals())
        client = await aiohttp_client(app)
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
        text = await response.text()
        redact.add(rotated)
        again = await (await client.get("/metrics")).text()
    finally:
        await engine.dispose()
        await writable.dispose()
    assert text.startswith("# HELP pipeline_")
    for secret in (tmdb_key, data_go_key, "dataGo SECRET"):
        for form in secret_forms(secret):
            assert form.lower() not in text.lower(), form
    assert "SECRET" not in text
    found = parse(text.encode())
    assert values(found, "pipeline_runs_total") == {
        (("job", "other"), ("status", "failed")): 1,
        (("job", rotated), ("status", "success")): 1,
    }
    assert values(found, "pipeline_rows_rejected_total") == {(("source", "other"),): 1}
    assert values(found, "pipeline_request_failures_total") == {(("error_class", "other"), ("source", "tmdb")): 1}
    assert set(values(found, "pipeline_requests_total")) == {(("operation", "other"), ("source", "tmdb"))}
    assert rotated not in again and 'job="***"' in again
