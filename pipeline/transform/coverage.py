"""Station-hours as bits of a KST day: what the completeness ledger (``air_coverage``) stores. Pure.

A KST day holds the 24 values AirKorea labels ``01:00`` … ``24:00`` (``24:00`` is midnight at the end of the
day). Hour label ``h`` is bit ``h - 1`` of a day's mask, so a day is a 24-bit integer per state:

* ``expected``: hours the collection should hold — from the first time it saw the station up to the newest
  hour the API has published;
* ``received``: stored with at least one measured value; ``flagged``: stored with every measured value
  missing (통신장애 and the like: the station reported, the instrument did not);
* ``unpublished``: a hole the API never filled — the station's own series lacked it too, and it has left the
  window in which AirKorea still publishes late hours; it is no longer retried;
* ``tried``: a hole a series covering it lacked (retried while the hour is young, see ``unpublished``).

An hour is in at most one of received, flagged and unpublished; *missing* is expected and in none of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pipeline.transform.airkorea import AirBatch
from pipeline.transform.common import KST

HOURS = 24
FULL_DAY = (1 << HOURS) - 1
#: the measured values: a reading with none of them is *flagged* (the instrument did not measure)
MEASURED = ("so2", "co", "o3", "no2", "pm10", "pm25")
_MEASURED_INDEXES = (0, 1, 2, 3, 4, 5)  # their places in AirBatch.values (AirReading's field order)
_HOUR = timedelta(hours=1)
_SLOTS: dict[datetime, tuple[date, int]] = {}  # hour end → (KST day, its bit as a mask)


def hour_slot(measured_at: datetime) -> tuple[date, int]:
    """The KST day and bit of the hour ending at ``measured_at`` (aware): ``24:00`` is bit 23 of its day."""
    start = measured_at.astimezone(KST) - _HOUR
    return start.date(), start.hour


def hour_end(kst_date: date, bit: int) -> datetime:
    """The UTC end of the hour labelled ``bit + 1``:00 on ``kst_date`` (the inverse of :func:`hour_slot`)."""
    return (datetime.combine(kst_date, time(), KST) + timedelta(hours=bit + 1)).astimezone(UTC)


def hour_label(bit: int) -> str:
    """How AirKorea writes the hour: ``01:00`` … ``24:00``."""
    return f"{bit + 1:02d}:00"


def bits(mask: int) -> Iterator[int]:
    """The set bits of a day mask, earliest hour first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def masks_between(first: datetime, last: datetime) -> dict[date, int]:
    """Per KST day, the mask of the hours ending from ``first`` to ``last``, both included."""
    days: dict[date, int] = {}
    if last < first:
        return days
    day, bit = hour_slot(first)
    end_day, end_bit = hour_slot(last)
    while day <= end_day:
        top = end_bit if day == end_day else HOURS - 1
        days[day] = ((1 << (top + 1)) - 1) & ~((1 << bit) - 1)
        day, bit = day + timedelta(days=1), 0
    return days


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """What one page says of one station-day: the hours it carried with values, and with none."""

    kst_date: date
    station_name: str
    received: int
    flagged: int


def coverage_of(batch: AirBatch) -> list[CoverageRow]:
    """The station-days a normalised page covers (pure; a worker process runs it beside the encoding)."""
    slots: dict[tuple[date, str], list[int]] = {}
    so2, co, o3, no2, pm10, pm25 = (batch.values[i] for i in _MEASURED_INDEXES)
    held = [
        not (a is None and b is None and c is None and d is None and e is None and f is None)
        for a, b, c, d, e, f in zip(so2, co, o3, no2, pm10, pm25, strict=True)
    ]
    try:  # the same hours recur page after page: one C-level pass
        found = list(map(_SLOTS.__getitem__, batch.measured_at))
    except KeyError:
        if len(_SLOTS) > 100_000:
            _SLOTS.clear()
        for moment in set(batch.measured_at).difference(_SLOTS):
            day, bit = hour_slot(moment)
            _SLOTS[moment] = (day, 1 << bit)
        found = list(map(_SLOTS.__getitem__, batch.measured_at))
    for station, (day, bit), value in zip(batch.station_names, found, held, strict=True):
        entry = slots.get((day, station))
        if entry is None:
            entry = slots[(day, station)] = [0, 0]
        entry[0 if value else 1] |= bit
    return [CoverageRow(day, station, received, flagged) for (day, station), (received, flagged) in slots.items()]


@dataclass(frozen=True, slots=True)
class DayCoverage:
    """One station-day of the ledger, as stored."""

    station_name: str
    kst_date: date
    expected: int
    received: int
    flagged: int
    unpublished: int
    tried: int = 0

    @property
    def missing_mask(self) -> int:
        return self.expected & ~(self.received | self.flagged | self.unpublished)

    def missing_hours(self) -> list[datetime]:
        """The missing hours (UTC ends), earliest first."""
        return [hour_end(self.kst_date, bit) for bit in bits(self.missing_mask)]

    def missing_labels(self) -> list[str]:
        return [hour_label(bit) for bit in bits(self.missing_mask)]

    def counts(self) -> DayCounts:
        expected = self.expected.bit_count()
        received = (self.received & self.expected).bit_count()
        flagged = (self.flagged & self.expected).bit_count()
        unpublished = (self.unpublished & self.expected).bit_count()
        return DayCounts(expected, received, flagged, unpublished, self.missing_mask.bit_count())


@dataclass(frozen=True, slots=True)
class DayCounts:
    """Hours of a station-day (or a sum of them) per state."""

    expected: int = 0
    received: int = 0
    flagged: int = 0
    unpublished: int = 0
    missing: int = 0

    def __add__(self, other: DayCounts) -> DayCounts:
        return DayCounts(
            self.expected + other.expected,
            self.received + other.received,
            self.flagged + other.flagged,
            self.unpublished + other.unpublished,
            self.missing + other.missing,
        )

    @property
    def published(self) -> int:
        """Expected hours the API published (so could be collected): every one but those it never filled."""
        return self.expected - self.unpublished

    @property
    def completeness(self) -> float | None:
        """Received or flagged hours as a share of the published ones (``None``: nothing was expected)."""
        return (self.received + self.flagged) / self.published if self.published else None


def as_masks(rows: Sequence[Any]) -> list[DayCoverage]:
    """Rows of ``air_coverage`` (named columns) as :class:`DayCoverage`."""
    return [
        DayCoverage(r.station_name, r.kst_date, r.expected, r.received, r.flagged, r.unpublished, r.tried) for r in rows
    ]
