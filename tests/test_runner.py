"""pipeline/runner.py against the simulator on 127.0.0.1, on both backends: one recorded run of concurrent jobs,
its status from the jobs' (success, partial, failed), its totals and details, quota deferral, cancellation,
auth refusals once per source, and ``run_once``'s table counts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.config import SIDOS as ALL_SIDOS
from pipeline.config import Settings, parse_settings
from pipeline.jobs import JOB_NAMES
from pipeline.keys import Secrets
from pipeline.load.runs import RunTotals
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.runner import RunReport, run_jobs, run_once
from pipeline.simulator import SimulatorState
from tests.backends import fetch_async, wait_until

FIXED = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 09:30 KST
NP, MOVIE, SIDO, STATION = "now_playing", "movie", "getCtprvnRltmMesureDnsty", "getMsrstnAcctoRltmMesureDnsty"
SIDOS = ["서울", "세종"]
STATIONS = ["종로구", "중구"]
RUN_COLUMNS = "status, error, requests, rows_fetched, rows_upserted, rows_rejected, details, finished_at, job, trigger"


def settings_for(url: str, airkorea: dict[str, Any] | None = None, schedule: dict[str, Any] | None = None) -> Settings:
    """A small cycle: one TMDB page (20 movies), two provinces, two stations."""
    air = {"rate_limit": 50, "sidos": SIDOS, "stations": STATIONS, **(airkorea or {})}
    data: dict[str, Any] = {
        "database": {"url": url},
        "sources": {"tmdb": {"rate_limit": 40, "max_pages": 1}, "airkorea": air},
    }
    if schedule:
        data["schedule"] = {"jobs": schedule}
    return parse_settings(data)


async def run_row(url: str, run_id: int) -> dict[str, Any]:
    (row,) = await fetch_async(url, f"SELECT {RUN_COLUMNS} FROM runs WHERE id = :id", {"id": run_id})
    found = dict(zip([c.strip() for c in RUN_COLUMNS.split(",")], row, strict=True))
    found["details"] = json.loads(found["details"]) if found["details"] else None
    return found


async def count(url: str, table: str) -> int:
    return int((await fetch_async(url, f"SELECT count(*) FROM {table}"))[0][0])


def jobs_by_name(report: RunReport) -> dict[str, Any]:
    return {job.job: job for job in report.jobs}


async def test_every_enabled_job_runs_and_the_run_row_sums_the_jobs(db_url: str, writer: Writer) -> None:
    settings = settings_for(db_url)
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, simulator):
        report = await run_jobs(local, secrets, writer, trigger="schedule")
        sent = sum(simulator.state.counters.values())
    assert [job.job for job in report.jobs] == list(JOB_NAMES)
    assert report.status == "success" and all(job.status == "success" for job in report.jobs)
    expected = RunTotals(
        requests=sum(job.requests for job in report.jobs),
        rows_fetched=sum(job.fetched for job in report.jobs),
        rows_upserted=sum(job.upserted for job in report.jobs),
        rows_rejected=sum(job.rejected for job in report.jobs),
    )
    assert report.totals == expected
    assert expected.requests == sent == 1 + 20 + len(SIDOS) + len(STATIONS)  # every request the API saw, counted
    row = await run_row(db_url, report.run_id)
    assert (row["job"], row["trigger"], row["status"], row["error"]) == ("cycle", "schedule", "success", None)
    assert row["finished_at"] is not None
    assert (row["requests"], row["rows_fetched"], row["rows_upserted"], row["rows_rejected"]) == (
        expected.requests, expected.rows_fetched, expected.rows_upserted, expected.rows_rejected
    )  # fmt: skip
    # one entry of details per job, what its report says
    assert row["details"] == {job.job: json.loads(json.dumps(job.as_dict())) for job in report.jobs}
    jobs = jobs_by_name(report)
    assert jobs["tmdb"].rows == {"movies": 20, "movie_snapshots": 20}
    assert row["details"]["airkorea_stations"]["requests"] == {STATION: len(STATIONS)}
    for name, job in jobs.items():  # the job's own time, and its requests' time per stage beside it
        entry = row["details"][name]
        assert entry["seconds"] == round(job.seconds, 3) and job.seconds > 0
        assert set(entry["stage_seconds"]) == {"fetch", "parse"}
    assert await count(db_url, "movies") == 20 and await count(db_url, "movie_snapshots") == 20


async def test_the_default_selection_skips_a_disabled_job(db_url: str, writer: Writer) -> None:
    settings = settings_for(db_url, schedule={"tmdb": {"enabled": False}})
    async with simulated(settings, SimulatorState(clock=FIXED)) as (local, secrets, simulator):
        report = await run_jobs(local, secrets, writer)
        requests = dict(simulator.state.counters)
    assert [job.job for job in report.jobs] == ["airkorea_sido", "airkorea_stations"]
    assert report.status == "success"
    assert requests == {SIDO: len(SIDOS), STATION: len(STATIONS)}  # not a single TMDB request
    assert set((await run_row(db_url, report.run_id))["details"]) == {"airkorea_sido", "airkorea_stations"}


@pytest.mark.parametrize(
    ("fault", "failing", "working", "message"),
    [
        pytest.param(
            dict(operation=SIDO, kind="gateway", code="10", times=len(SIDOS)),
            "airkorea_sido",
            "tmdb",
            "code 10",
            id="airkorea code 10 on every province",
        ),
        pytest.param(dict(operation=NP, kind="401"), "tmdb", "airkorea_sido", "TMDB rejected", id="tmdb 401"),
    ],
)
async def test_one_failing_source_does_not_stop_the_other(
    db_url: str, writer: Writer, fault: dict[str, Any], failing: str, working: str, message: str
) -> None:
    state = SimulatorState(clock=FIXED)
    state.add_fault(**fault)
    settings = settings_for(db_url)
    async with simulated(settings, state) as (local, secrets, _sim):
        report = await run_jobs(local, secrets, writer, ["tmdb", "airkorea_sido"])
    jobs = jobs_by_name(report)
    assert report.status == "partial"
    assert (jobs[failing].status, jobs[working].status) == ("failed", "success")
    assert jobs[failing].upserted == 0 and jobs[working].upserted > 0
    row = await run_row(db_url, report.run_id)
    assert row["status"] == "partial" and message in row["error"]
    assert row["details"][failing]["status"] == "failed" and row["details"][working]["status"] == "success"
    assert row["rows_upserted"] == jobs[working].upserted
    if working == "tmdb":
        assert (await count(db_url, "movies"), await count(db_url, "air_readings")) == (20, 0)
        assert state.counters[SIDO] == len(SIDOS)  # each province asked once: a refused request is not retried
    else:
        assert await count(db_url, "movies") == 0
        assert await count(db_url, "air_readings") == jobs["airkorea_sido"].rows["air_readings"] > 0
        assert (state.counters[NP], state.counters[MOVIE]) == (1, 0)


async def test_a_run_where_no_job_succeeds_is_failed(db_url: str, writer: Writer) -> None:
    state = SimulatorState(clock=FIXED, tmdb_read_token="not-this", tmdb_api_key="nor-this", data_go_key="wrong")
    async with simulated(settings_for(db_url), state) as (local, secrets, _sim):
        report = await run_jobs(local, secrets, writer)
    assert report.status == "failed" and {job.status for job in report.jobs} == {"failed"}
    assert set(report.auth_errors) == {"tmdb", "airkorea"}
    row = await run_row(db_url, report.run_id)
    assert row["status"] == "failed" and row["finished_at"] is not None
    assert "TMDB rejected" in row["error"] and "data.go.kr refused the key" in row["error"]
    assert (row["rows_fetched"], row["rows_upserted"]) == (0, 0)
    for table in ("movies", "air_readings", "air_stations"):
        assert await count(db_url, table) == 0


async def test_auth_errors_hold_one_refusal_per_source_however_many_jobs_it_stopped(
    db_url: str, writer: Writer
) -> None:
    state = SimulatorState(clock=FIXED, data_go_key="not-the-simulators-key")
    settings = settings_for(db_url)
    async with simulated(settings, state) as (local, secrets, _sim):
        report = await run_jobs(local, secrets, writer)
    jobs = jobs_by_name(report)
    assert report.status == "partial" and jobs["tmdb"].status == "success"
    assert jobs["airkorea_sido"].status == jobs["airkorea_stations"].status == "failed"
    # both AirKorea jobs were stopped by the refusal, and both say so in their own details ...
    refusal = jobs["airkorea_sido"].auth["airkorea"]
    assert "code 30" in refusal and jobs["airkorea_stations"].auth == {"airkorea": refusal}
    # ... but the run names the source's refusal once
    assert report.auth_errors == {"airkorea": refusal}
    assert report.error == refusal
    row = await run_row(db_url, report.run_id)
    assert row["error"] == refusal and row["error"].count("refused the key") == 1
    assert row["details"]["airkorea_sido"]["errors"] == row["details"]["airkorea_stations"]["errors"] == [refusal]
    # the source was stopped: no request per province and station, at most one per request slot in flight
    assert state.counters[SIDO] + state.counters[STATION] <= local.sources.airkorea.concurrency


@pytest.mark.backends("sqlite")
async def test_the_recorded_error_keeps_every_refusal_as_reported(db_url: str, writer: Writer) -> None:
    state = SimulatorState(clock=FIXED, tmdb_read_token="not-this", tmdb_api_key="nor-this", data_go_key="wrong")
    async with simulated(settings_for(db_url), state) as (local, secrets, _sim):
        report = await run_jobs(local, secrets, writer, ["tmdb", "airkorea_sido"])
    assert report.error == "; ".join(report.auth_errors.values())
    assert (await run_row(db_url, report.run_id))["error"] == report.error  # no secret in it: nothing to mask


async def test_a_job_whose_plan_does_not_fit_todays_quota_is_deferred(db_url: str, writer: Writer) -> None:
    # 17 provinces need 17 calls, more than the 5 a day; two stations need 2
    settings = settings_for(db_url, airkorea={"daily_quota": 5, "sidos": list(ALL_SIDOS)})
    state = SimulatorState(clock=FIXED)
    async with simulated(settings, state) as (local, secrets, _sim):
        report = await run_jobs(local, secrets, writer, ["airkorea_sido", "airkorea_stations"])
    jobs = jobs_by_name(report)
    assert state.counters[SIDO] == 0 and state.counters[STATION] == len(STATIONS)
    assert jobs["airkorea_sido"].status == "failed" and jobs["airkorea_stations"].status == "success"
    assert jobs["airkorea_sido"].stats.actions == {"quota:deferred": 1}
    assert report.status == "partial"
    row = await run_row(db_url, report.run_id)
    assert row["details"]["airkorea_sido"]["actions"] == {"quota:deferred": 1}
    assert row["details"]["airkorea_sido"]["requests"] == {}
    assert "deferred" in row["error"] and "needs 17 getCtprvnRltmMesureDnsty calls but only 5" in row["error"]
    assert "quota:deferred" not in row["details"]["airkorea_stations"]["actions"]
    # the ledger counted the calls that were made, none for the deferred job
    ledger = await fetch_async(db_url, "SELECT operation, calls FROM api_calls ORDER BY operation")
    assert ledger == [(STATION, len(STATIONS))]


async def test_cancelling_run_jobs_records_the_run_as_failed(db_url: str, writer: Writer) -> None:
    state = SimulatorState(clock=FIXED, latency=30.0)  # every request hangs: the run is cancelled mid-request
    async with simulated(settings_for(db_url), state) as (local, secrets, _sim):
        task = asyncio.create_task(run_jobs(local, secrets, writer, ["airkorea_sido"], run_name="airkorea_sido"))

        async def in_flight() -> bool:
            assert not task.done(), task
            return sum(state.in_flight.values()) > 0

        await wait_until(in_flight, limit=20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
    ((run_id, status, error, finished),) = await fetch_async(db_url, "SELECT id, status, error, finished_at FROM runs")
    assert (status, error) == ("failed", "cancelled (shutdown)") and finished is not None
    details = (await run_row(db_url, run_id))["details"]
    assert details is None  # cancelled before any job reported


async def test_run_once_migrates_and_returns_the_table_counts(db_url: str) -> None:
    settings = settings_for(db_url)
    report, counts = await run_once(settings, Secrets(), ["airkorea_stations"], simulate=True)
    assert report.status == "success"
    assert set(counts) == {"runs", "movies", "movie_snapshots", "air_stations", "air_readings", "rejects"}
    assert counts == {table: await count(db_url, table) for table in counts}
    assert counts["runs"] == 1 and counts["movies"] == 0
    assert counts["air_readings"] == report.jobs[0].rows["air_readings"] > 0
    assert counts["air_stations"] == len(STATIONS)


async def test_a_page_that_stays_short_is_a_warning_of_the_run_with_its_counts(
    db_url: str, writer: Writer, aiohttp_server: Any
) -> None:
    """A province page with fewer items than totalCount promises, twice: kept, and said in runs.details."""
    from aiohttp import web

    from pipeline.simulator import airkorea_data

    station = airkorea_data.stations_by_sido()["세종"][0]
    item = {"stationName": station.name, "sidoName": "세종", "dataTime": "2026-11-28 09:00", "pm10Value": "20"}
    fetched: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        fetched.append(request.query["pageNo"])
        body = {"totalCount": 3, "items": [item], "pageNo": 1, "numOfRows": 10}
        return web.json_response({"response": {"body": body, "header": {"resultCode": "00", "resultMsg": "OK"}}})

    app = web.Application()
    app.router.add_get("/B552584/ArpltnInforInqireSvc/getCtprvnRltmMesureDnsty", handle)
    server = await aiohttp_server(app)
    settings = settings_for(db_url, {"sidos": ["세종"], "base_url": str(server.make_url("/B552584"))})
    report = await run_jobs(settings, Secrets(data_go_api_key="k"), writer, ["airkorea_sido"], now=lambda: FIXED)
    assert fetched == ["1", "1"]  # fetched once more, still short
    assert report.status == "success" and report.jobs[0].rows["air_readings"] == 1  # the row is kept
    warning = (await run_row(db_url, report.run_id))["details"]["airkorea_sido"]["warnings"]
    assert warning == [
        "province 세종: page 1 held 1 of the 3 items its totalCount (3) promises, also when fetched again; kept what came"
    ]
