"""Small pure parsers shared by both sources: missing values, numbers, times. No I/O here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.errors import RecordError
from pipeline.redaction import redact

KST = ZoneInfo("Asia/Seoul")

#: What the APIs write for "no value".
MISSING = frozenset({"", "-", "--", "null", "NULL", "None"})

_DATA_TIME = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::00)?\s*$")


@dataclass(frozen=True, slots=True)
class Reject:
    """A raw record that could not be normalised, with the reason; stored in ``rejects``."""

    source: str
    reason: str
    record: str  # JSON of the raw record, secrets removed


def make_reject(source: str, reason: str, raw: Any) -> Reject:
    try:
        text = json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(raw)
    return Reject(source=source, reason=redact(reason), record=redact(text))


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in MISSING)


def to_text(value: object) -> str | None:
    """``None``, ``""`` and ``"-"`` become ``None``; other text is stripped."""
    if is_missing(value):
        return None
    if not isinstance(value, str):
        raise RecordError(f"expected text, got {type(value).__name__} {value!r}")
    return value.strip()


def to_float(value: object, field: str) -> float | None:
    if is_missing(value):
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field}: not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            number = float(text)  # also takes AirKorea statistics' ".048"
        except ValueError:
            raise RecordError(f"{field}: not a number: {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise RecordError(f"{field}: not a finite number: {value!r}")
        return number
    raise RecordError(f"{field}: not a number: {value!r}")


def to_int(value: object, field: str) -> int | None:
    number = to_float(value, field)
    if number is None:
        return None
    if not number.is_integer():
        raise RecordError(f"{field}: not a whole number: {value!r}")
    return int(number)


def to_grade(value: object, field: str) -> int | None:
    """AirKorea grades ``"1"``…``"4"`` (좋음, 보통, 나쁨, 매우나쁨); missing → ``None``."""
    grade = to_int(value, field)
    if grade is not None and not 1 <= grade <= 4:
        raise RecordError(f"{field}: grade outside 1-4: {value!r}")
    return grade


def kst_label_to_utc(value: object) -> datetime:
    """AirKorea's ``dataTime`` (KST, ``YYYY-MM-DD HH:MM``) as an aware UTC datetime.

    AirKorea labels each hourly value with the end of its hour, so midnight is written ``24:00`` of the
    previous day: ``"2026-11-27 24:00"`` is 2026-11-28 00:00 KST, i.e. 2026-11-27 15:00 UTC.
    """
    if not isinstance(value, str):
        raise RecordError(f"dataTime missing or not text: {value!r}")
    match = _DATA_TIME.match(value)
    if match is None:
        raise RecordError(f"dataTime not 'YYYY-MM-DD HH:MM': {value!r}")
    year, month, day, hour, minute = (int(g) for g in match.groups())
    try:
        base = datetime(year, month, day, tzinfo=KST)
    except ValueError:
        raise RecordError(f"dataTime is not a real date: {value!r}") from None
    if minute != 0 or hour > 24:
        raise RecordError(f"dataTime is not an hour label: {value!r}")
    return (base + timedelta(hours=hour)).astimezone(UTC)


def to_date(value: object, field: str) -> date | None:
    """``YYYY-MM-DD``; TMDB's ``""`` (no date yet) → ``None``."""
    if is_missing(value):
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field}: not a date: {value!r}")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise RecordError(f"{field}: not a YYYY-MM-DD date: {value!r}") from None


def json_list(values: list[Any]) -> str | None:
    """A list as compact JSON text for a TEXT column (query it with ``json_each``); empty → ``None``."""
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")) if values else None
