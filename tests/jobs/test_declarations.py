"""pipeline/jobs/__init__.py: the job declarations the runner, the scheduler and the CLI ask — when each job is
enabled, what one run of it costs in data.go.kr calls, which one catches up after a gap, and their order."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from pipeline.config import SIDOS, JobName, Settings, parse_settings
from pipeline.jobs import JOB_NAMES, JOBS, enabled_jobs
from pipeline.jobs import airkorea as airkorea_jobs
from pipeline.jobs import stations as station_jobs
from pipeline.jobs import tmdb as tmdb_jobs

SIDO, STATION = "getCtprvnRltmMesureDnsty", "getMsrstnAcctoRltmMesureDnsty"


def settings(**sections: Any) -> Settings:
    return parse_settings(sections)


def enabled(config: Settings) -> dict[str, bool]:
    return {name: JOBS[name].enabled(config) for name in JOB_NAMES}


def test_job_names_and_their_order() -> None:
    assert JOB_NAMES == ("tmdb", "airkorea_sido", "airkorea_stations") == get_args(JobName)
    assert tuple(JOBS) == JOB_NAMES and all(JOBS[name].name == name for name in JOB_NAMES)
    assert tuple(Settings().schedule.jobs) == JOB_NAMES  # every job has a default schedule entry
    assert [JOBS[name].source for name in JOB_NAMES] == ["tmdb", "airkorea", "airkorea"]
    assert (JOBS["tmdb"].collect, JOBS["airkorea_sido"].collect, JOBS["airkorea_stations"].collect) == (
        tmdb_jobs.collect_now_playing, airkorea_jobs.collect_sido, station_jobs.collect_stations
    )  # fmt: skip


def test_each_job_asks_its_own_source_settings() -> None:
    config = settings(sources={"tmdb": {"max_pages": 3}, "airkorea": {"num_of_rows": 100}})
    assert JOBS["tmdb"].source_settings(config) is config.sources.tmdb
    assert JOBS["airkorea_sido"].source_settings(config) is config.sources.airkorea
    assert JOBS["airkorea_stations"].source_settings(config) is config.sources.airkorea


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        pytest.param({}, {"tmdb": True, "airkorea_sido": True, "airkorea_stations": True}, id="defaults"),
        pytest.param({"sources": {"tmdb": {"enabled": False}}},
                     {"tmdb": False, "airkorea_sido": True, "airkorea_stations": True}, id="tmdb disabled"),
        pytest.param({"sources": {"airkorea": {"enabled": False}}},
                     {"tmdb": True, "airkorea_sido": False, "airkorea_stations": False}, id="airkorea disabled"),
        # an empty watch list is valid with the source disabled: the station job is off either way
        pytest.param({"sources": {"airkorea": {"enabled": False, "stations": []}}},
                     {"tmdb": True, "airkorea_sido": False, "airkorea_stations": False},
                     id="airkorea disabled, no stations"),
        pytest.param({"schedule": {"jobs": {"airkorea_sido": {"enabled": False}}}},
                     {"tmdb": True, "airkorea_sido": False, "airkorea_stations": True}, id="sido entry disabled"),
        pytest.param({"schedule": {"jobs": {"tmdb": {"enabled": False}}}},
                     {"tmdb": False, "airkorea_sido": True, "airkorea_stations": True}, id="tmdb entry disabled"),
        pytest.param({"sources": {"airkorea": {"stations": []}},
                      "schedule": {"jobs": {"airkorea_stations": {"enabled": False}}}},
                     {"tmdb": True, "airkorea_sido": True, "airkorea_stations": False},
                     id="no stations, station entry disabled"),
    ],
)  # fmt: skip
def test_a_job_is_enabled_when_its_source_and_schedule_entry_are(
    sections: dict[str, Any], expected: dict[str, bool]
) -> None:
    config = settings(**sections)
    assert enabled(config) == expected
    assert [job.name for job in enabled_jobs(config)] == [name for name in JOB_NAMES if expected[name]]


def test_the_station_job_runs_without_a_watch_list() -> None:
    # an empty watch-list (the default) leaves the job its healing: it stays enabled and plans no watch calls
    config = Settings()
    assert config.sources.airkorea.stations == ()
    assert enabled(config) == {"tmdb": True, "airkorea_sido": True, "airkorea_stations": True}
    assert JOBS["airkorea_stations"].planned_calls(config, None) == {}
    assert all(job.ready(config) for job in JOBS.values())


def test_a_job_without_a_schedule_entry_is_not_enabled() -> None:
    config = Settings()
    jobs = {name: job for name, job in config.schedule.jobs.items() if name != "airkorea_sido"}
    without = config.model_copy(update={"schedule": config.schedule.model_copy(update={"jobs": jobs})})
    assert enabled(without) == {"tmdb": True, "airkorea_sido": False, "airkorea_stations": True}


@pytest.mark.parametrize("data_term", [None, "DAILY", "MONTH", "3MONTH"])
def test_tmdb_plans_no_calls(data_term: Any) -> None:
    """TMDB has a rate limit, not a daily quota: nothing to check against the ledger."""
    assert JOBS["tmdb"].planned_calls(settings(sources={"tmdb": {"max_pages": 500}}), data_term) == {}


@pytest.mark.parametrize(
    ("airkorea", "calls"),
    [
        pytest.param({}, 1, id="the default: 전국, one page"),
        pytest.param({"sidos": list(SIDOS)}, 17, id="17 provinces, one page each"),
        pytest.param({"sidos": ["서울"]}, 1, id="one province"),
        pytest.param({"sidos": ["서울", "부산"], "num_of_rows": 100}, 4, id="150 stations at 100 a page: 2 pages each"),
        pytest.param({"sidos": ["서울"], "num_of_rows": 150}, 1, id="150 stations fit one page of 150"),
        pytest.param({"sidos": ["전국"]}, 1, id="nationwide in one page of 1000"),
        pytest.param({"sidos": ["전국"], "num_of_rows": 100}, 7, id="nationwide: 700 stations at 100 a page"),
        pytest.param({"sidos": list(SIDOS), "num_of_rows": 1}, 17 * 150, id="a page per station"),
    ],
)
def test_the_sido_job_plans_one_call_per_province_page(airkorea: dict[str, Any], calls: int) -> None:
    config = settings(sources={"airkorea": airkorea})
    assert JOBS["airkorea_sido"].planned_calls(config, None) == {SIDO: calls}
    assert JOBS["airkorea_sido"].planned_calls(config, "3MONTH") == {SIDO: calls}  # no window: no override


@pytest.mark.parametrize(
    ("airkorea", "data_term", "calls"),
    [
        pytest.param({}, None, 3, id="3 stations, DAILY: 24 rows, one page each"),
        pytest.param({"stations": ["종로구"], "num_of_rows": 10}, None, 3, id="DAILY at 10 a page: 3 pages"),
        pytest.param({"data_term": "MONTH"}, None, 3, id="MONTH: 744 rows fit a page of 1000"),
        pytest.param({"data_term": "MONTH", "num_of_rows": 100}, None, 3 * 8, id="MONTH at 100 a page: 8 pages"),
        pytest.param({"data_term": "3MONTH"}, None, 3 * 3, id="3MONTH: 2232 rows, 3 pages of 1000"),
        pytest.param({"data_term": "3MONTH", "num_of_rows": 10000}, None, 3, id="3MONTH in one page of 10000"),
        pytest.param({"stations": ["종로구", "중구"]}, "3MONTH", 2 * 3, id="data_term override: 3MONTH"),
        pytest.param({"data_term": "3MONTH", "stations": ["종로구", "중구"]}, "DAILY", 2, id="override: DAILY"),
        pytest.param({"data_term": "DAILY", "num_of_rows": 100}, "MONTH", 3 * 8, id="override: MONTH"),
    ],
)
def test_the_station_job_plans_pages_per_window_times_stations(
    airkorea: dict[str, Any], data_term: Any, calls: int
) -> None:
    config = settings(sources={"airkorea": {"stations": ["종로구", "중구", "강남구"], **airkorea}})
    assert JOBS["airkorea_stations"].planned_calls(config, data_term) == {STATION: calls}


def test_in_a_cycle_the_station_job_comes_after_the_province_poll() -> None:
    assert JOBS["airkorea_stations"].after == ("airkorea_sido",)
    assert JOBS["tmdb"].after == () and JOBS["airkorea_sido"].after == ()
    assert all(set(job.after) <= set(JOBS) for job in JOBS.values())
