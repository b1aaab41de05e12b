"""What the simulator's two worlds (AirKorea's and TMDB's) share: Korea's clock and the integer hash.

Both ``airkorea_data`` and ``tmdb_data`` derive their data from ``mix32``; AirKorea labels its hours in KST, and
TMDB's now-playing window, like the daily call quotas of both APIs, turns over at KST midnight.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Final

KST: Final = timezone(timedelta(hours=9), "KST")

# ================================================================================================ hashing


def mix32(x: int) -> int:
    """Murmur3's 32-bit finaliser: a fast, well-spread integer hash."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x


# ================================================================================================ days


def kst_day(moment: datetime) -> date:
    return moment.astimezone(KST).date()
