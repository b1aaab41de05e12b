"""Station-hours as bits of a KST day (the completeness ledger's unit): pure, no database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipeline.transform.airkorea import to_air_batch
from pipeline.transform.common import kst_label_to_utc
from pipeline.transform.coverage import (
    FULL_DAY,
    DayCounts,
    DayCoverage,
    coverage_of,
    hour_end,
    hour_label,
    hour_slot,
    masks_between,
)

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("label", "day", "bit"),
    [
        ("2026-11-27 01:00", date(2026, 11, 27), 0),
        ("2026-11-27 09:00", date(2026, 11, 27), 8),
        ("2026-11-27 23:00", date(2026, 11, 27), 22),
        ("2026-11-27 24:00", date(2026, 11, 27), 23),  # midnight belongs to the day it ends
        ("2026-11-28 00:00", date(2026, 11, 27), 23),  # the same instant, written the other way
        ("2026-11-28 01:00", date(2026, 11, 28), 0),
    ],
)
def test_an_hour_label_is_a_bit_of_its_kst_day(label: str, day: date, bit: int) -> None:
    moment = kst_label_to_utc(label)
    assert hour_slot(moment) == (day, bit)
    assert hour_end(day, bit) == moment
    assert hour_label(bit) == ("24:00" if bit == 23 else label[-5:])


def test_masks_between_cross_midnight() -> None:
    first, last = kst_label_to_utc("2026-11-27 23:00"), kst_label_to_utc("2026-11-28 02:00")
    assert masks_between(first, last) == {date(2026, 11, 27): 0b11 << 22, date(2026, 11, 28): 0b11}
    assert masks_between(first, first) == {date(2026, 11, 27): 1 << 22}
    assert masks_between(last, first) == {}
    whole = masks_between(kst_label_to_utc("2026-11-27 01:00"), kst_label_to_utc("2026-11-27 24:00"))
    assert whole == {date(2026, 11, 27): FULL_DAY}


def test_a_reading_without_any_measured_value_is_flagged_not_received() -> None:
    items = [
        {"stationName": "A", "dataTime": "2026-11-27 24:00", "pm10Value": "31", "so2Value": "-"},
        {"stationName": "A", "dataTime": "2026-11-27 23:00", "pm10Value": "-", "pm25Value": "-",
         "pm10Flag": "통신장애", "khaiValue": "-"},
        {"stationName": "B", "dataTime": "2026-11-28 01:00", "o3Value": "0.031"},
    ]  # fmt: skip
    rows = {(r.kst_date, r.station_name): (r.received, r.flagged) for r in coverage_of(to_air_batch(items))}
    assert rows == {(date(2026, 11, 27), "A"): (1 << 23, 1 << 22), (date(2026, 11, 28), "B"): (1, 0)}


def test_a_day_counts_its_states_and_names_its_missing_hours() -> None:
    day = DayCoverage("A", date(2026, 11, 27), FULL_DAY, received=FULL_DAY & ~(0b111 << 21) & ~1,
                      flagged=1, unpublished=1 << 21)  # fmt: skip
    assert day.counts() == DayCounts(expected=24, received=20, flagged=1, unpublished=1, missing=2)
    assert day.missing_labels() == ["23:00", "24:00"]
    assert day.missing_hours() == [kst_label_to_utc("2026-11-27 23:00"), kst_label_to_utc("2026-11-27 24:00")]
    summed = day.counts() + DayCounts(expected=24, received=24)
    assert summed.expected == 48 and summed.published == 47 and summed.completeness == pytest.approx(45 / 47)
    assert DayCounts().completeness is None
