"""Cron timetables without APScheduler: validate expressions, compute fire times, periods and freshness.

The daemon's cron syntax is this subset of standard 5-field cron (minute hour day-of-month month day-of-week):
numbers, ``*``, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists ``a,b,c``, month names jan–dec and day names
sun–sat (any case), and days of the week 0–7 where 0 and 7 are Sunday. Anything else is refused (``L``, ``?``,
``#``, ``a/n``, ``@daily``…), and so are the forms that APScheduler 3 misreads once ``config.cron_fields`` has
translated them: steps and multi-digit numbers in day-of-week (``*/2`` would count from Monday, ``1-5/2`` would
lose its step, ``01`` would be Tuesday), day-of-week ranges starting at Sunday as 0 (``0-7`` would be Sunday
alone: write ``1-7`` or ``0,1-5``), steps on month names and ranges mixing a name and a number (``jan-3`` would
be January alone). A day of the month that no listed month has (``30 2``) is refused too: it would never fire.

Fire times are those of APScheduler 3.11's ``CronTrigger(**cron_fields(expression), timezone=zone)``, since that
is what fires: in particular day-of-month and day-of-week are ANDed when both are restricted (cron ORs them:
``0 0 1-7 * mon`` is the first Monday of the month here, not every Monday and every 1st–7th). Times are wall
times in the job's zone. Where a DST change repeats an hour, its times fire twice (both folds), as in APScheduler;
where it skips one, a skipped time fires when the clock has gone forward (02:30 becomes 03:30), at most once per
instant. APScheduler does that only for some expressions (``30 2 * * *`` but not ``30 1,2 * * *``), and it
misses some runs at 00:xx just after a spring-forward change (in Europe/Berlin ``0 0 * * *`` fires on 29 March
2026, then 31 March; ``0 0 1 * *`` never on 1 April): with DST the two can disagree on those. Zones without DST
(Asia/Seoul, UTC) always agree.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config imports this module for validation
    from pipeline.config import JobSchedule

PERIOD_FIRE_TIMES = 30
"""How many next fire times :func:`period` looks at."""

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _WEEKDAYS),
)
_ITEM = re.compile(
    r"(?:(?P<star>\*)|(?P<first>[0-9]+|[a-z]+)(?:-(?P<last>[0-9]+|[a-z]+))?)(?:/(?P<step>[0-9]+))?", re.IGNORECASE
)
_LONGEST_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed expression: the allowed values of each field, ascending (weekdays as ``date.weekday()``)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]


def _value(text: str, field: str, names: Mapping[str, int], *, last: bool) -> int:
    if text.isdigit():
        return int(text)
    if not names:
        raise ValueError(f"{field} field: {text!r} is not a number")
    if text.lower() not in names:
        raise ValueError(f"{field} field: {text!r} is not a name ({', '.join(names)})")
    number = names[text.lower()]
    return 7 if last and field == "day-of-week" and number == 0 else number  # mon-sun is 1-7


def _parse_field(text: str, field: str, low: int, high: int, names: Mapping[str, int]) -> tuple[int, ...]:
    weekday = field == "day-of-week"
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None or not item.isascii():
            raise ValueError(f"{field} field: {item!r} is not a number, name, *, range a-b, step */n or a-b/n")
        step = int(match["step"]) if match["step"] is not None else None
        if weekday and step is not None:
            raise ValueError(f"{field} field: {item!r}: APScheduler 3 misreads steps here; list the days")
        if match["star"]:
            first, last = low, high
        else:
            first_text, last_text = match["first"], match["last"]
            if step is not None and last_text is None:
                raise ValueError(f"{field} field: {item!r}: a step needs * or a range ({first_text}-{high}/{step})")
            if last_text is not None and first_text.isdigit() != last_text.isdigit():
                raise ValueError(f"{field} field: {item!r} mixes a name and a number")
            first = _value(first_text, field, names, last=False)
            last = first if last_text is None else _value(last_text, field, names, last=True)
            for number, number_text in ((first, first_text), (last, last_text or first_text)):
                if not low <= number <= high:
                    raise ValueError(f"{field} field: {number} is outside {low}-{high}")
                if weekday and number_text.isdigit() and len(number_text) > 1:
                    raise ValueError(f"{field} field: {number_text!r}: write a day as one digit 0-7 or a name")
            if first > last:
                raise ValueError(f"{field} field: the range {item!r} runs backwards")
            if weekday and first == 0 and last > 0:
                instead = "1-7" if last == 7 else f"0,1-{last}"
                raise ValueError(f"{field} field: {item!r}: APScheduler 3 misreads ranges from 0; write {instead}")
        if step is not None:
            if not (match["star"] or match["first"].isdigit()):
                raise ValueError(f"{field} field: {item!r}: a step needs numbers, not names")
            if not 1 <= step <= last - first:
                raise ValueError(f"{field} field: {item!r}: the step must be from 1 to {last - first}")
        values.update(range(first, last + 1, step or 1))
    if weekday:
        values = {(day - 1) % 7 for day in values}  # cron's 0/7 = Sunday … 6 = Saturday, as date.weekday()
    return tuple(sorted(values))


def parse_cron(expression: str) -> Cron:
    """The expression's fields; ValueError (naming the field) for anything outside the supported subset."""
    parts = expression.split()
    if len(parts) != len(_FIELDS):
        fields = "minute hour day-of-month month day-of-week"
        raise ValueError(f"a cron expression has 5 fields ({fields}), got {len(parts)}: {expression!r}")
    cron = Cron(*(_parse_field(text, *spec) for text, spec in zip(parts, _FIELDS, strict=True)))
    if cron.days[0] > max(_LONGEST_MONTH[month] for month in cron.months):
        months = ",".join(_MONTH_NAMES[month - 1] for month in cron.months)
        raise ValueError(f"day-of-month field: day {cron.days[0]} never occurs in {months}: the job would never run")
    return cron


def validate_cron(expression: str) -> None:
    """Raise ValueError, naming the field, unless the expression is in the daemon's cron syntax."""
    parse_cron(expression)


def _days(cron: Cron, first: date) -> Iterator[date]:
    for year in range(first.year, MAXYEAR + 1):
        for month in cron.months:
            if (year, month) < (first.year, first.month):
                continue
            length = calendar.monthrange(year, month)[1]
            for day in cron.days:
                if day > length:
                    break
                candidate = date(year, month, day)
                if candidate >= first and candidate.weekday() in cron.weekdays:
                    yield candidate


def _exists(wall: datetime) -> bool:
    return wall.astimezone(UTC).astimezone(wall.tzinfo).replace(tzinfo=None) == wall.replace(tzinfo=None)


def fire_times(cron: Cron | str, timezone: tzinfo, start: datetime) -> Iterator[datetime]:
    """Fire times at or after ``start`` (aware), earliest first, as aware datetimes in ``timezone``."""
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    cron = parse_cron(cron) if isinstance(cron, str) else cron
    earliest = start.astimezone(UTC)
    latest: datetime | None = None
    for day in _days(cron, start.astimezone(timezone).date()):
        instants: list[datetime] = []
        for hour, minute in itertools.product(cron.hours, cron.minutes):
            wall = datetime.combine(day, time(hour, minute), tzinfo=timezone)
            # both folds of a repeated time; the first fold of a skipped one (its offset from before the change)
            instants += [t.astimezone(UTC) for t in (wall, wall.replace(fold=1)) if t.fold == 0 or _exists(t)]
        for instant in sorted(instants):
            if instant >= earliest and (latest is None or instant > latest):
                latest = instant
                yield instant.astimezone(timezone)


def period(schedule: JobSchedule, timezone: tzinfo, now: datetime | None = None) -> timedelta:
    """The job's nominal period: the interval, or the longest gap between the cron's next fire times.

    Gaps are elapsed time; ``scheduler.period`` subtracts wall times, so the two differ (by the DST change)
    when the next 30 fire times span one.
    """
    if schedule.interval is not None:
        return timedelta(seconds=schedule.interval)
    assert schedule.cron is not None
    times = list(itertools.islice(fire_times(schedule.cron, timezone, now or datetime.now(UTC)), PERIOD_FIRE_TIMES))
    gaps = [b.astimezone(UTC) - a.astimezone(UTC) for a, b in itertools.pairwise(times)]
    return max(gaps) if gaps else timedelta(days=1)


def freshness_limit(schedule: JobSchedule, timezone: tzinfo) -> timedelta:
    """How old the last success may be before the job counts as stale (default: two periods)."""
    if schedule.freshness is not None:
        return timedelta(seconds=schedule.freshness)
    return 2 * period(schedule, timezone)
