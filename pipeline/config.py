"""Settings: behaviour from ``config.yaml`` (the API keys come from the environment: :mod:`pipeline.keys`).

The file is parsed once into frozen, validated models. Any problem becomes a one-line
:class:`~pipeline.errors.ConfigError` that starts with the key path, e.g.
``sources.airkorea.concurrency: must be >= 1 (got -2)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError
from pipeline.extract.airkorea import MAX_ROWS_PER_PAGE, NATIONWIDE
from pipeline.redaction import redact
from pipeline.timetable import validate_cron

DEFAULT_CONFIG_PATH = Path("config.yaml")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/pipeline.db"
DEFAULT_TMDB_BASE_URL = "https://api.themoviedb.org/3"
DEFAULT_AIRKOREA_BASE_URL = "https://apis.data.go.kr/B552584"
DEFAULT_ARCHIVE_KEEP = 400 * 86400.0  # past a year: what the API's three-month window can never give back
DEFAULT_DETAILS_TTL = 86400.0  # a day: runtime, budget, genres and release dates change rarely

Sido = Literal[
    "전국", "서울", "부산", "대구", "인천", "광주", "대전", "울산", "경기", "강원",
    "충북", "충남", "전북", "전남", "경북", "경남", "제주", "세종",
]  # fmt: skip  # a table of names: packed, not one per line
SIDOS: tuple[Sido, ...] = (
    "서울", "부산", "대구", "인천", "광주", "대전", "울산", "경기", "강원",
    "충북", "충남", "전북", "전남", "경북", "경남", "제주", "세종",
)  # fmt: skip  # a table of names: packed, not one per line
DataTerm = Literal["DAILY", "MONTH", "3MONTH"]
AirKoreaVersion = Literal["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"]

SUPPORTED_URL_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_CRON_DOW = {"0": "sun", "1": "mon", "2": "tue", "3": "wed", "4": "thu", "5": "fri", "6": "sat", "7": "sun"}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``90s``, ``15m``, ``2h``, ``1d``."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"not a duration such as 90, '15m' or '2h': {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL such as {DEFAULT_TMDB_BASE_URL!r} (got {value!r})")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment (keys come from the environment)")
    return value.rstrip("/")


class SourceSettings(_Model):
    enabled: bool = True
    base_url: str
    concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    rate_limit: Annotated[float, Field(gt=0, le=1000)] = 10.0
    """Smooth request rate limit for the source, requests per second."""
    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    """Seconds for one request (connect + send + read the whole body)."""
    attempts: Annotated[int, Field(ge=1, le=10)] = 4
    """Tries per request, the first included, for transient failures."""
    max_retry_time: Annotated[float, Field(gt=0, le=3600)] = 120.0
    """Upper bound in seconds on the time one request may spend retrying."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_http_url(value)


class TmdbSettings(SourceSettings):
    base_url: str = DEFAULT_TMDB_BASE_URL
    language: Annotated[str, Field(pattern=r"^[a-z]{2}-[A-Z]{2}$")] = "ko-KR"
    region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "KR"
    max_pages: Annotated[int, Field(ge=1, le=500)] = 10
    details_ttl: Duration = DEFAULT_DETAILS_TTL
    """A movie's details are fetched again once older than this (``0``: at every run); list items, with rank,
    popularity and votes, are read at every run."""
    concurrency: Annotated[int, Field(ge=1, le=20)] = 8
    rate_limit: Annotated[float, Field(gt=0, le=40)] = 35.0


class AirKoreaSettings(SourceSettings):
    base_url: str = DEFAULT_AIRKOREA_BASE_URL
    sidos: tuple[Sido, ...] = (NATIONWIDE,)  # one call for the country; the provinces are the fallback
    stations: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()
    """Watch-list: stations whose series is fetched every run of the station job, holes or not."""
    data_term: DataTerm = "DAILY"
    heal_budget: Annotated[int, Field(ge=0, le=10_000)] = 24
    """Station-series calls per KST day that self-healing may spend on holes (0 turns healing off)."""
    late_poll: Annotated[Duration, Field(le=3600)] = 600.0
    """When a poll finds the newest hour not yet published, poll again this long after (0: do not)."""
    ver: AirKoreaVersion = "1.5"
    num_of_rows: Annotated[int, Field(ge=1, le=MAX_ROWS_PER_PAGE)] = 1000
    concurrency: Annotated[int, Field(ge=1, le=16)] = 4
    rate_limit: Annotated[float, Field(gt=0, le=50)] = 10.0
    daily_quota: Annotated[int, Field(ge=1)] = 500
    """data.go.kr calls allowed per operation per KST day (500 on a development key)."""

    @field_validator("sidos")
    @classmethod
    def _unique_sidos(cls, value: tuple[Sido, ...]) -> tuple[Sido, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists a province twice")
        if NATIONWIDE in value and len(value) > 1:
            raise ValueError(f"{NATIONWIDE} already covers every province; list it alone")
        return value

    @field_validator("stations")
    @classmethod
    def _clean_stations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(s.strip() for s in value)
        if any(not s for s in cleaned):
            raise ValueError("a station name is empty")
        return tuple(dict.fromkeys(cleaned))


class Sources(_Model):
    tmdb: TmdbSettings = TmdbSettings()
    airkorea: AirKoreaSettings = AirKoreaSettings()


class DatabaseSettings(_Model):
    url: str = DEFAULT_DATABASE_URL
    chunk_size: Annotated[int, Field(ge=100, le=100_000)] = 5000
    """Rows per upsert statement batch; each chunk is one short transaction."""

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in SUPPORTED_URL_SCHEMES:
            allowed = ", ".join(f"{s}://" for s in SUPPORTED_URL_SCHEMES)
            raise ValueError(f"must start with one of {allowed} (got {value!r})")
        return value


# --- schedule ------------------------------------------------------------------------------------------

JobName = Literal["tmdb", "airkorea_sido", "airkorea_stations"]


def cron_fields(expression: str) -> dict[str, str]:
    """A standard 5-field cron expression as CronTrigger keyword arguments.

    Numeric days of the week are translated to names, because APScheduler 3 reads ``0`` as Monday while
    cron reads it as Sunday.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day month day-of-week), got {expression!r}")
    minute, hour, day, month, dow = fields
    dow = re.sub(r"(?<![/\d])[0-7](?!\d)", lambda m: _CRON_DOW[m.group(0)], dow)
    return {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": dow}


class JobSchedule(_Model):
    enabled: bool = True
    cron: str | None = None
    """5-field cron expression, evaluated in ``schedule.timezone``."""
    interval: Duration | None = None
    """Alternative to ``cron``: run every so many seconds (or '15m', '2h')."""
    jitter: Annotated[Duration, Field(le=3600)] = 0.0
    """Random delay of up to so many seconds added to each run (spreads load)."""
    freshness: Duration | None = None
    """Age of the last success beyond which ``pipeline status`` calls the job stale (default: 2 periods)."""

    @model_validator(mode="after")
    def _one_trigger(self) -> JobSchedule:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        if self.interval is not None and self.interval < 1:
            raise ValueError("interval must be at least 1 second")
        if self.cron is not None:
            try:
                validate_cron(self.cron)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from None
        return self


def _default_jobs() -> dict[JobName, JobSchedule]:
    return {
        # TMDB refreshes its lists daily: four looks a day follow popularity without waste
        "tmdb": JobSchedule(cron="10 0,6,12,18 * * *", jitter=120),
        # AirKorea publishes each hour after extract.airkorea.PUBLISH_DELAY: poll after that (a test holds it)
        "airkorea_sido": JobSchedule(cron="20 * * * *", jitter=60),
        "airkorea_stations": JobSchedule(cron="25 * * * *", jitter=60),
    }


class ScheduleSettings(_Model):
    timezone: str = "Asia/Seoul"
    misfire_grace_time: Duration = 900.0
    """A run that could not start on time still starts if it is at most this late (seconds)."""
    shutdown_grace: Duration = 120.0
    """On SIGTERM/SIGINT, how long the in-flight run may take to finish before it is cancelled."""
    jobs: dict[JobName, JobSchedule] = Field(default_factory=_default_jobs)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Asia/Seoul')") from None
        return value

    @field_validator("jobs", mode="before")
    @classmethod
    def _merge_defaults(cls, value: object) -> object:
        if isinstance(value, dict):
            merged: dict[str, object] = {name: job for name, job in _default_jobs().items()}
            for name, job in value.items():
                if isinstance(job, dict) and "cron" not in job and "interval" not in job and name in merged:
                    default = merged[name]
                    assert isinstance(default, JobSchedule)
                    job = {**default.model_dump(exclude_none=True), **job}
                elif isinstance(job, dict) and ("cron" in job) != ("interval" in job):
                    job = {"cron": None, "interval": None, **job}
                merged[name] = job
            return merged
        return value


class ArchiveSettings(_Model):
    enabled: bool = True
    """Keep every response body the extract layer receives (compressed, secrets removed from its request)."""
    keep: Duration = DEFAULT_ARCHIVE_KEEP
    """How long bodies are kept; the daemon prunes older ones (``0``: forever)."""
    max_error_bytes: Annotated[int, Field(ge=0, le=10_000_000)] = 65_536
    """An error answer (HTTP status other than 200) is kept up to this many bytes."""


class WebSettings(_Model):
    enabled: bool = False
    """Whether the daemon (``pipeline run``) serves ``/healthz``, ``/metrics`` and the dashboard."""
    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    """Address to listen on. Anything but a loopback address exposes the dashboard and the metrics (read-only,
    no secrets) to whoever can reach it: an explicit choice (docs/web.md)."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """Port to listen on."""
    request_timeout: Annotated[Duration, Field(gt=0, le=120)] = 10.0
    """A request that takes longer is answered 503 (its queries are cancelled)."""


class Settings(_Model):
    database: DatabaseSettings = DatabaseSettings()
    sources: Sources = Sources()
    schedule: ScheduleSettings = ScheduleSettings()
    archive: ArchiveSettings = ArchiveSettings()
    web: WebSettings = WebSettings()

    @model_validator(mode="after")
    def _something_enabled(self) -> Settings:
        if not (self.sources.tmdb.enabled or self.sources.airkorea.enabled):
            raise ValueError("sources: every source is disabled; enable tmdb or airkorea")
        return self

    def with_base_urls(self, tmdb: str, airkorea: str) -> Settings:
        """A copy whose sources point at other hosts (the built-in simulator)."""
        sources = self.sources.model_copy(
            update={
                "tmdb": self.sources.tmdb.model_copy(update={"base_url": tmdb}),
                "airkorea": self.sources.airkorea.model_copy(update={"base_url": airkorea}),
            }
        )
        return self.model_copy(update={"sources": sources})


# --- loading -------------------------------------------------------------------------------------------


def config_path(explicit: str | Path | None, env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """Where the config lives, and whether the user named it (then it must exist)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if explicit:
        return Path(explicit), True
    if environ.get("PIPELINE_CONFIG"):
        return Path(environ["PIPELINE_CONFIG"]), True
    return DEFAULT_CONFIG_PATH, False


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "config"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "literal_error" or first["type"].startswith(
        ("greater", "less", "int_", "float_", "string_", "bool_")
    ):
        message = f"{message} (got {first['input']!r})"
    message = message.removeprefix("Value error, ")
    more = len(error.errors()) - 1
    return f"{where}: {message}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def parse_settings(data: Any, source: str = "config") -> Settings:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(redact(_describe(exc))) from None


def load_settings(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    path, required = config_path(explicit, env)
    if not path.is_file():
        if required:
            raise ConfigError(f"config file not found: {path}")
        return Settings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: malformed YAML{where}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_settings(data, str(path))
