"""Mutable simulator state: credentials, clock, latency, counters, scripted faults and daily quotas.

The app reads the state on every request, so tests (or the ``/_sim/*`` admin routes) can change it live.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

from pipeline.simulator.world import kst_day

# Placeholder credentials the simulator accepts by default. The read token is shaped like a TMDB v4 JWT
# (``eyJ...``) but every segment is short, so secret scanners do not flag it.
SIM_TMDB_API_KEY: Final = "5ba1d1a7e4c0f00d5ba1d1a7e4c0f00d"
SIM_TMDB_READ_TOKEN: Final = "eyJhbGciOiJub25lIn0.eyJzaW0iOjF9.c2ltdWxhdG9y"  # noqa: S105 (placeholder)
# The *decoded* data.go.kr key; it contains + / = on purpose, to exercise the double-encoding trap.
SIM_DATA_GO_KEY: Final = "SimKey+0123456789/abcdefABCDEF=="

TMDB_OPERATIONS: Final = ("now_playing", "movie", "discover")
AIRKOREA_OPERATIONS: Final = ("getCtprvnRltmMesureDnsty", "getMsrstnAcctoRltmMesureDnsty")
OPERATIONS: Final = TMDB_OPERATIONS + AIRKOREA_OPERATIONS

FAULT_KINDS: Final = frozenset(
    {"429", "500", "503_html", "504_html", "reset", "truncated", "gateway", "401", "403", "slow"}
)

# data.go.kr gateway result codes -> returnAuthMsg (shared/reference/airkorea.md §7).
GATEWAY_MESSAGES: Final[dict[str, str]] = {
    "01": "APPLICATION_ERROR",
    "02": "DB_ERROR",
    "03": "NODATA_ERROR",
    "04": "HTTP_ERROR",
    "05": "SERVICETIMEOUT_ERROR",
    "10": "INVALID_REQUEST_PARAMETER_ERROR",
    "11": "NO_MANDATORY_REQUEST_PARAMETERS_ERROR",
    "12": "NO_OPENAPI_SERVICE_ERROR",
    "20": "SERVICE_ACCESS_DENIED_ERROR",
    "21": "TEMPORARILY_DISABLE_THE_SERVICEKEY_ERROR",
    "22": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
    "30": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
    "31": "DEADLINE_HAS_EXPIRED_ERROR",
    "32": "UNREGISTERED_IP_ERROR",
    "33": "UNSIGNED_CALL_ERROR",
    "99": "UNKNOWN_ERROR",
}


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted failure for the next ``times`` requests of ``operation`` (``"*"`` = any operation)."""

    operation: str
    kind: str
    times: int = 1
    retry_after: float | None = None
    code: str = "05"
    fmt: str = "xml"
    delay: float = 0.0

    def matches(self, operation: str) -> bool:
        return self.operation in ("*", operation)


DEFAULT_REVISION_DELAY: Final = timedelta(hours=3)
DEFAULT_LATE_TITLE_DELAY: Final = timedelta(days=3)


def _check_share(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_delay(name: str, value: object) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ValueError(f"{name} must be a timedelta >= 0, got {value!r}")


def check_aware(name: str, moment: datetime) -> datetime:
    """``moment`` if it is timezone-aware; the moments of the quirks' sets and dicts are checked where used."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must hold timezone-aware datetimes, got {moment!r}")
    return moment


@dataclass(slots=True)
class Quirks:
    """Real AirKorea answers that a client must not trust, all off by default (airkorea.md: recorded bodies of
    other projects). Hours are given by their end (an aware datetime, as ``dataTime`` labels them).

    Revisions: real-time values are preliminary (airkorea.md §8), so a station-hour of ``filled_later`` or
    ``corrected`` is served provisionally until the clock reaches its end + ``revision_delay``, the same in the
    province answer and in the station's series, and with its final values from then on. ``revision_share`` does
    the same to that share of all station-hours (a hash of station and hour, half of them each way). Assigning a
    share outside [0, 1] or a negative delay raises ValueError.
    """

    under_report_total: bool = False  # province answers say totalCount 0, whatever they hold
    short_answers: int = 0  # the next N province answers hold a third fewer items than their totalCount
    items_as_string: bool = False  # an empty answer writes "items": "" (JSON)
    late_hours: dict[datetime, int] = field(default_factory=dict)  # hour → minutes past it that it is published
    missing: set[tuple[str, datetime]] = field(default_factory=set)  # (station, hour): absent from its province's
    # answer for that hour, though present in its own series
    never_published: set[tuple[str, datetime]] = field(default_factory=set)  # (station, hour): absent from its
    # province's answer and from its own series: an hour the API never fills
    filled_later: set[tuple[str, datetime]] = field(default_factory=set)  # (station, hour): first served in full
    # 통신장애 (every value "-", every grade null, every flag 통신장애), its real values once revision_delay is over
    corrected: set[tuple[str, datetime]] = field(default_factory=set)  # (station, hour): first served with PM10 /
    # PM2.5 (1-hour and 24-hour) a few µg/m³ high (airkorea_data.CORRECTION_PM10 / _PM25), exact afterwards
    revision_delay: timedelta = DEFAULT_REVISION_DELAY  # how long after its end an hour stays provisional
    revision_share: float = 0.0  # share of all station-hours treated as filled_later (half) or corrected (half)

    def __setattr__(self, name: str, value: object) -> None:
        # Validated on every assignment (the constructor's included): tests and the CLI set these live.
        if name == "revision_delay":
            _check_delay("Quirks.revision_delay", value)
        elif name == "revision_share":
            _check_share("Quirks.revision_share", value)
        object.__setattr__(self, name, value)


@dataclass(slots=True)
class TmdbQuirks:
    """TMDB data that changes after it is first served, all off by default.

    A movie whose Korean title arrives late is served, in ``ko-KR`` (lists and details alike), as TMDB serves
    an untranslated movie: its ``original_title`` (tmdb.md §4); from the given moment on, its Korean title. Only
    the title is late: overview and tagline are translated independently. Assigning a share outside [0, 1] or a
    negative delay raises ValueError.
    """

    late_titles: dict[int, datetime] = field(default_factory=dict)  # movie id → moment its Korean title arrives
    late_title_share: float = 0.0  # that share of movies (a hash of the id) get their Korean title only
    # late_title_delay after the KST midnight that starts their release day (Korean, else primary)
    late_title_delay: timedelta = DEFAULT_LATE_TITLE_DELAY
    late_runtimes: dict[int, datetime] = field(default_factory=dict)  # movie id → moment its details' runtime
    # arrives; before it they say 0, as TMDB does for a runtime nobody has entered yet

    def __setattr__(self, name: str, value: object) -> None:
        if name == "late_title_delay":
            _check_delay("TmdbQuirks.late_title_delay", value)
        elif name == "late_title_share":
            _check_share("TmdbQuirks.late_title_share", value)
        object.__setattr__(self, name, value)


@dataclass(slots=True)
class SimulatorState:
    tmdb_api_key: str = SIM_TMDB_API_KEY
    tmdb_read_token: str = SIM_TMDB_READ_TOKEN
    data_go_key: str = SIM_DATA_GO_KEY
    clock: datetime | None = None
    latency: float = 0.0
    counters: collections.Counter[str] = field(default_factory=collections.Counter)
    in_flight: collections.Counter[str] = field(default_factory=collections.Counter)  # requests being answered
    peak_in_flight: collections.Counter[str] = field(default_factory=collections.Counter)  # the most at once
    faults: list[Fault] = field(default_factory=list)
    daily_quota: dict[str, int] = field(default_factory=dict)
    quirks: Quirks = field(default_factory=Quirks)
    tmdb_quirks: TmdbQuirks = field(default_factory=TmdbQuirks)
    quota_used: collections.Counter[tuple[str, date]] = field(default_factory=collections.Counter)

    def now(self) -> datetime:
        """The simulator's current time, aware UTC (the fixed ``clock`` if set, else the real time)."""
        if self.clock is None:
            return datetime.now(UTC)
        if self.clock.tzinfo is None or self.clock.utcoffset() is None:
            raise ValueError("SimulatorState.clock must be timezone-aware")
        return self.clock.astimezone(UTC)

    def add_fault(
        self,
        operation: str,
        kind: str,
        times: int = 1,
        *,
        retry_after: float | None = None,
        code: str = "05",
        fmt: str = "xml",
        delay: float = 0.0,
    ) -> None:
        """Script ``kind`` for the next ``times`` requests of ``operation``; faults fire in the order added."""
        if operation != "*" and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; expected '*' or one of {OPERATIONS}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if code not in GATEWAY_MESSAGES:
            raise ValueError(f"unknown gateway code {code!r}; expected one of {sorted(GATEWAY_MESSAGES)}")
        if fmt not in ("xml", "json"):
            raise ValueError("fmt must be 'xml' or 'json'")
        if delay < 0 or (retry_after is not None and retry_after < 0):
            raise ValueError("delay and retry_after must be >= 0")
        self.faults.append(Fault(operation, kind, times, retry_after, code, fmt, delay))

    def take_fault(self, operation: str) -> Fault | None:
        """Consume one firing of the first fault matching ``operation``, if any."""
        for position, fault in enumerate(self.faults):
            if fault.matches(operation):
                if fault.times <= 1:
                    del self.faults[position]
                else:
                    self.faults[position] = replace(fault, times=fault.times - 1)
                return fault
        return None

    def use_quota(self, operation: str) -> bool:
        """Record one call against ``operation``'s quota for the current KST day; False once it is exceeded."""
        limit = self.daily_quota.get(operation)
        if limit is None:
            return True
        key = (operation, kst_day(self.now()))
        self.quota_used[key] += 1
        return self.quota_used[key] <= limit

    def reset(self) -> None:
        """Clear counters, faults and quota usage (credentials, clock, latency and quotas stay)."""
        self.counters.clear()
        self.peak_in_flight.clear()
        self.faults.clear()
        self.quota_used.clear()
