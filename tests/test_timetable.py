"""pipeline.timetable against APScheduler's CronTrigger (what actually fires) and the periods the scheduler
computed with it before (kept here as the oracle)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from pipeline import timetable
from pipeline.config import JobSchedule, Settings, cron_fields

SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")
ZULU = ZoneInfo("UTC")

EXPRESSIONS = [
    # the defaults
    "10 0,6,12,18 * * *",
    "20 * * * *",
    "25 * * * *",
    # minutes and hours: steps, ranges, lists
    "* * * * *",
    "*/5 * * * *",
    "*/7 * * * *",
    "0-30/10 * * * *",
    "0,15,30,45 * * * *",
    "1-5 0 * * *",
    "0 */2 * * *",
    "15 */5 * * *",
    "5-55/25 1-22/3 * * *",
    "0 9-17 * * *",
    "59 23 * * *",
    # days of the week: 0 and 7 are Sunday, names in any case, ranges ending at Sunday
    "0 9 * * 1-5",
    "30 9-17 * * mon-fri",
    "0 9 * * 0",
    "0 9 * * 7",
    "0 9 * * 0,7",
    "0 9 * * SUN",
    "0 9 * * sat,sun",
    "0 9 * * 6-7",
    "0 9 * * Fri-Sun",
    "0 6 * * 1,3,5",
    "0 0 * * 0,3",
    # months: names, ranges, steps
    "0 0 * JAN,jul *",
    "0 0 1 jan-mar *",
    "0 0 1 */3 *",
    "0 0 * 2 *",
    "0 0 1 1 *",
    "59 23 31 12 *",
    # days of the month: month ends, leap days
    "0 0 31 * *",
    "0 0 30 * *",
    "0 0 29 2 *",
    "0 0 28-31 * *",
    "0 0 31 1-12/2 *",
    "0 12 */10 * *",
    "0 0 1,15 * *",
    # both day fields restricted: APScheduler ANDs them
    "0 0 1-7 * mon",
    "0 4 8-14 * 2",
    "0 0 13 * fri",
    "0 0 1,15 * 3",
    "0 0 29 feb mon",
    "0 0 31 * 0",
]

STARTS = [
    datetime(2026, 1, 1, 0, 0, tzinfo=SEOUL),
    datetime(2026, 6, 15, 0, 10, tzinfo=SEOUL),  # on a fire time of the tmdb default
    datetime(2026, 2, 27, 23, 59, 59, 500_000, tzinfo=UTC),
    datetime(2027, 12, 31, 23, 30, tzinfo=UTC),
    datetime(2028, 2, 28, 12, 0, tzinfo=SEOUL),  # a leap year
    datetime(2026, 11, 30, 7, 13, 42, 123_456, tzinfo=UTC),
]


def apscheduler_period(schedule: JobSchedule, timezone: ZoneInfo, now: datetime | None = None) -> timedelta:
    """scheduler.period as it was before timetable.py: APScheduler's next fire times, wall-time gaps."""
    if schedule.interval is not None:
        return timedelta(seconds=schedule.interval)
    assert schedule.cron is not None
    trigger = CronTrigger(**cron_fields(schedule.cron), timezone=timezone)
    at = (now or datetime.now(UTC)).astimezone(timezone)
    times: list[datetime] = []
    previous: datetime | None = None
    for _ in range(30):
        fire = trigger.get_next_fire_time(previous, at)
        if fire is None:
            break
        times.append(fire)
        previous, at = fire, fire + timedelta(microseconds=1)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return max(gaps) if gaps else timedelta(days=1)


def apscheduler_freshness_limit(schedule: JobSchedule, timezone: ZoneInfo) -> timedelta:
    """How old the last success may be before the job counts as stale (default: two periods)."""
    if schedule.freshness is not None:
        return timedelta(seconds=schedule.freshness)
    return 2 * apscheduler_period(schedule, timezone)


def apscheduler_times(expression: str, zone: ZoneInfo, start: datetime, count: int = 30) -> list[datetime]:
    trigger = CronTrigger(**cron_fields(expression), timezone=zone)
    times: list[datetime] = []
    at = start
    while len(times) < count and (fire := trigger.get_next_fire_time(None, at)) is not None:
        times.append(fire)
        at = fire.astimezone(UTC) + timedelta(microseconds=1)  # in UTC: wall-clock arithmetic would lose the fold
    return times


def timetable_times(expression: str, zone: ZoneInfo, start: datetime, count: int = 30) -> list[datetime]:
    return list(itertools.islice(timetable.fire_times(expression, zone, start), count))


@pytest.mark.parametrize("zone", [SEOUL, ZULU], ids=str)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_fire_times_match_apscheduler(expression: str, zone: ZoneInfo) -> None:
    timetable.validate_cron(expression)
    for start in STARTS:
        expected = apscheduler_times(expression, zone, start)
        assert len(expected) == 30
        # isoformat: the wall time and its offset
        assert [t.isoformat() for t in timetable_times(expression, zone, start)] == [t.isoformat() for t in expected]


def test_both_day_fields_are_anded_like_apscheduler() -> None:
    first_mondays = timetable_times("0 0 1-7 * mon", SEOUL, datetime(2026, 1, 1, tzinfo=SEOUL), 3)
    assert [t.date().isoformat() for t in first_mondays] == ["2026-01-05", "2026-02-02", "2026-03-02"]
    leap_mondays = timetable_times("0 0 29 2 mon", SEOUL, datetime(2026, 1, 1, tzinfo=SEOUL), 2)
    assert [t.year for t in leap_mondays] == [2044, 2072]


# Across Europe/Berlin's 2026 changes (29 March, 25 October), for expressions where APScheduler and the module agree
BERLIN_EXPRESSIONS = [
    "10 0,6,12,18 * * *",
    "20 * * * *",
    "*/15 * * * *",
    "0 2 * * *",
    "30 2 * * *",  # 29 March: 02:30 does not exist, fires at 03:30 CEST; 25 October: fires twice
    "0 3 * * *",
    "0 2-3 * * *",
    "30 1-3 * * *",
    "15 2,3 * * *",
    "59 1 * * *",
    "0 12 * * *",
    "0 3 * * sun",
]


@pytest.mark.parametrize("expression", BERLIN_EXPRESSIONS)
@pytest.mark.parametrize("start", [datetime(2026, 3, 28, 12, tzinfo=BERLIN), datetime(2026, 10, 24, 12, tzinfo=BERLIN)])
def test_fire_times_across_dst_match_apscheduler(expression: str, start: datetime) -> None:
    expected = [t.astimezone(UTC) for t in apscheduler_times(expression, BERLIN, start, 60)]
    assert [t.astimezone(UTC) for t in timetable_times(expression, BERLIN, start, 60)] == expected


def test_dst_cases_where_apscheduler_differs() -> None:
    # APScheduler 3.11 skips 30 March after the 29 March 00:00 run (its day increment lands at 01:00 CEST)
    start = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    assert [t.day for t in apscheduler_times("0 0 * * *", BERLIN, start, 3)] == [29, 31, 1]
    assert [t.day for t in timetable_times("0 0 * * *", BERLIN, start, 3)] == [29, 30, 31]
    assert [t.month for t in apscheduler_times("0 0 1 * *", BERLIN, start, 2)] == [5, 6]  # never 1 April
    assert [t.month for t in timetable_times("0 0 1 * *", BERLIN, start, 2)] == [4, 5]
    # a time in the skipped hour fires once the clock has gone forward; APScheduler only for some expressions
    assert timetable_times("30 1,2 * * *", BERLIN, start, 3)[1].isoformat() == "2026-03-29T03:30:00+02:00"
    assert apscheduler_times("30 1,2 * * *", BERLIN, start, 3)[1].isoformat() == "2026-03-30T01:30:00+02:00"
    repeated = timetable_times("30 2 * * *", BERLIN, datetime(2026, 10, 25, tzinfo=BERLIN), 2)
    assert [t.isoformat() for t in repeated] == ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute field: 61 is outside 0-59"),
        ("* 24 * * *", "hour field: 24 is outside 0-23"),
        ("0 0 0 * *", "day-of-month field: 0 is outside 1-31"),
        ("0 0 * 13 *", "month field: 13 is outside 1-12"),
        ("0 0 * * 8", "day-of-week field: 8 is outside 0-7"),
        ("0 0 * * 07", "day-of-week field: '07'"),
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("@daily", "5 fields"),
        ("*/0 * * * *", "minute field: '*/0': the step must be from 1 to 59"),
        ("*/60 * * * *", "minute field: '*/60'"),
        ("0 10-10/2 * * *", "hour field: '10-10/2'"),
        ("30-10 * * * *", "minute field: the range '30-10' runs backwards"),
        ("5/10 * * * *", "minute field: '5/10': a step needs * or a range (5-59/10)"),
        ("1,,2 * * * *", "minute field: ''"),
        ("١ * * * *", "minute field"),
        ("0 0 L * *", "day-of-month field: 'L' is not a number"),
        ("0 0 last * *", "day-of-month field"),
        ("0 0 ? * *", "day-of-month field"),
        ("0 0 jan * *", "day-of-month field"),
        ("0 0 * foo *", "month field: 'foo' is not a name"),
        ("0 0 * jan-3 *", "month field: 'jan-3' mixes a name and a number"),
        ("0 0 * jan-jun/2 *", "month field: 'jan-jun/2': a step needs numbers"),
        ("0 0 * * monday", "day-of-week field: 'monday' is not a name"),
        ("0 0 * * 1#2", "day-of-week field"),
        ("0 0 * * */2", "day-of-week field: '*/2': APScheduler 3 misreads steps"),
        ("0 0 * * 1-5/2", "day-of-week field: '1-5/2'"),
        ("0 0 * * 0-5", "day-of-week field: '0-5': APScheduler 3 misreads ranges from 0; write 0,1-5"),
        ("0 0 * * 0-7", "write 1-7"),
        ("0 0 * * sun-sat", "write 0,1-6"),
        ("0 0 * * 5-1", "day-of-week field: the range '5-1' runs backwards"),
        ("0 0 30 2 *", "day-of-month field: day 30 never occurs in feb"),
        ("0 0 31 4,6,9,11 *", "day 31 never occurs in apr,jun,sep,nov"),
    ],
)
def test_validation_names_the_field(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        timetable.validate_cron(expression)
    assert message in str(error.value)


def test_refused_forms_are_misread_by_apscheduler() -> None:
    """Why the subset refuses some cron forms that CronTrigger accepts: they would fire on other days."""
    thursday = datetime(2026, 1, 1, tzinfo=SEOUL)  # cron's */2 (Sun, Tue, Thu, Sat) would fire at once
    assert apscheduler_times("0 0 * * */2", SEOUL, thursday, 1)[0].strftime("%a") == "Fri"
    assert {t.strftime("%a") for t in apscheduler_times("0 0 * * 0-7", SEOUL, thursday, 7)} == {"Sun"}
    assert len({t.strftime("%a") for t in apscheduler_times("0 0 * * 1-5/2", SEOUL, thursday, 10)}) == 5
    assert apscheduler_times("0 0 30 2 *", SEOUL, thursday, 1) == []  # never


SCHEDULES = [
    *Settings().schedule.jobs.values(),
    JobSchedule(interval="15m"),
    JobSchedule(cron="*/7 * * * *"),
    JobSchedule(cron="0 9 * * 1-5"),
    JobSchedule(cron="0 0 1 * *"),
    JobSchedule(cron="0 0 29 2 *"),
    JobSchedule(cron="0 0 1-7 * mon", freshness="40d"),
    JobSchedule(cron="10 0,6,12,18 * * *", freshness="1d"),
]


@pytest.mark.parametrize("zone", [SEOUL, ZULU], ids=str)
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s.cron or f"every {s.interval}s")
def test_period_and_freshness_match_scheduler(schedule: JobSchedule, zone: ZoneInfo) -> None:
    for now in [None, *STARTS]:
        assert timetable.period(schedule, zone, now) == apscheduler_period(schedule, zone, now)
    assert timetable.freshness_limit(schedule, zone) == apscheduler_freshness_limit(schedule, zone)


def test_period_of_the_defaults() -> None:
    jobs = Settings().schedule.jobs
    assert timetable.period(jobs["airkorea_sido"], SEOUL) == timedelta(hours=1)
    assert timetable.period(jobs["tmdb"], SEOUL) == timedelta(hours=6)
    assert timetable.freshness_limit(jobs["airkorea_stations"], SEOUL) == timedelta(hours=2)
    assert timetable.period(JobSchedule(cron="0 0 29 2 *"), SEOUL, STARTS[0]) == timedelta(days=8 * 365 + 1)


def test_period_is_elapsed_time_across_dst() -> None:
    hourly, daily = JobSchedule(cron="20 * * * *"), JobSchedule(cron="0 12 * * *")
    summer = datetime(2026, 6, 1, tzinfo=BERLIN)
    assert timetable.period(hourly, BERLIN, summer) == apscheduler_period(hourly, BERLIN, summer) == timedelta(hours=1)
    assert timetable.period(daily, BERLIN, summer) == apscheduler_period(daily, BERLIN, summer) == timedelta(days=1)
    # scheduler.period subtracts wall times: 01:20 CET to 03:20 CEST is "2 h"; it is one hour
    spring = datetime(2026, 3, 29, tzinfo=BERLIN)
    assert timetable.period(hourly, BERLIN, spring) == timedelta(hours=1)
    assert apscheduler_period(hourly, BERLIN, spring) == timedelta(hours=2)
    assert timetable.period(daily, BERLIN, datetime(2026, 10, 20, tzinfo=BERLIN)) == timedelta(hours=25)


def test_fire_times_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        next(timetable.fire_times("* * * * *", SEOUL, datetime(2026, 1, 1)))


def test_importing_the_module_imports_neither_apscheduler_nor_config() -> None:
    code = (
        "import sys, pipeline.timetable\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('apscheduler', 'aiohttp', 'pydantic')]\n"
        "loaded += [m for m in sys.modules if m == 'pipeline.config']\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
