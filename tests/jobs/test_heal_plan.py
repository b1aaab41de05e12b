"""The heal planner: which stations' series to fetch, with which window, within the budget. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.extract.airkorea import late_publication_limit as late_limit
from pipeline.jobs.stations import plan_heals
from pipeline.transform.coverage import DayCoverage, hour_slot

HOUR = timedelta(hours=1)

NOW = datetime(2026, 11, 28, 0, 25, tzinfo=UTC)  # the newest published hour ends 00:00 UTC (09:00 KST)


def hole(station: str, hours_ago: int, *, tried: bool = False) -> DayCoverage:
    moment = NOW.replace(minute=0) - hours_ago * HOUR
    day, bit = hour_slot(moment)
    return DayCoverage(station, day, 1 << bit, 0, 0, 0, (1 << bit) if tried else 0)


def test_the_planner_takes_the_smallest_window_oldest_hole_first_within_the_budget() -> None:
    days = [hole("young", 0), hole("two-days", 48), hole("ten-weeks", 24 * 70), hole("past", 24 * 100)]
    plan = plan_heals(days, NOW, rows=1000, budget=10)
    assert [(c.station, c.window.term, c.calls) for c in plan.chosen] == [
        ("ten-weeks", "3MONTH", 3), ("two-days", "MONTH", 1), ("young", "DAILY", 1)
    ]  # fmt: skip  # "past" is beyond the largest window: nothing can repair it
    tight = plan_heals(days, NOW, rows=1000, budget=2)
    assert [c.station for c in tight.chosen] == ["two-days", "young"]  # 3MONTH costs 3: it waits
    assert [c.station for c in tight.deferred] == ["ten-weeks"]
    assert plan_heals(days, NOW, rows=1000, budget=0).chosen == []


def test_tried_holes_are_retried_while_young_then_given_up() -> None:
    young, old = hole("A", 2, tried=True), hole("B", 30, tried=True)
    assert old.missing_hours()[0] < late_limit(NOW) <= young.missing_hours()[0]
    plan = plan_heals([young, old, hole("C", 5)], NOW, rows=1000, budget=10)
    assert [c.station for c in plan.chosen] == ["C", "A"]  # fresh holes before retries
    ((mark),) = plan.give_up
    assert (mark.station_name, mark.tried, mark.unpublished) == ("B", old.expected, old.expected)


def test_the_watch_list_and_back_off_skip_stations() -> None:
    days = [hole("watched", 3), hole("watched-old", 48), hole("silent", 1)]
    plan = plan_heals(days, NOW, rows=1000, budget=10, fetched={"watched": "DAILY", "watched-old": "DAILY"},
                      waiting=frozenset({"silent"}))  # fmt: skip
    assert [c.station for c in plan.chosen] == ["watched-old"]  # its hole is older than the DAILY it got
    assert plan.waiting == 1


def test_a_station_whose_heals_fill_nothing_backs_off_longer_each_time() -> None:
    from pipeline.jobs.stations import BACKOFF, MAX_BACKOFF, backing_off

    def waits(*ages_and_fills: tuple[timedelta, int]) -> bool:  # newest first; a fill of 0 lacked its hole
        return "A" in backing_off([("A", NOW - age, filled, 0 if filled else 1) for age, filled in ages_and_fills], NOW)

    assert not waits()  # never healed
    assert waits((HOUR, 0)) and not waits((BACKOFF, 0))  # one fruitless heal: 6 h
    assert waits((BACKOFF, 0), (2 * BACKOFF, 0))  # two in a row: 12 h
    assert not waits((2 * BACKOFF, 0), (3 * BACKOFF, 0))
    assert not waits((HOUR, 3), (2 * HOUR, 0))  # the last one filled holes: no back-off
    assert waits((HOUR, 0), (2 * HOUR, 2), (3 * HOUR, 0))  # only the streak since the last success counts
    many = [(MAX_BACKOFF - HOUR, 0)] + [(MAX_BACKOFF + k * HOUR, 0) for k in range(10)]
    assert waits(*many) and not waits((MAX_BACKOFF, 0), *many[1:])  # capped at MAX_BACKOFF
    # a heal whose holes were newer than its series (a late hour) proves nothing either way
    inconclusive = ("A", NOW - HOUR, 0, 0)
    assert backing_off([inconclusive], NOW) == frozenset()
    assert backing_off([inconclusive, ("A", NOW - 2 * HOUR, 0, 1)], NOW) == frozenset({"A"})
