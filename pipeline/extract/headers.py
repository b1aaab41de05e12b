"""Pure readers of HTTP response headers, shared by the sources' classifiers (no I/O, no aiohttp)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_RETRY_AFTER_CAP = 300.0


def retry_after_seconds(value: str | None, cap: float = DEFAULT_RETRY_AFTER_CAP) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), clamped to ``[0, cap]``."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, min(seconds, cap))
