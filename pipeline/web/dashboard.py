"""The dashboard: three server-rendered views, their parameters, and the files they load.

* ``GET /`` — Collection: each job's freshness (:func:`pipeline.status.collect_status`, the rule of
  ``pipeline status`` and ``/healthz``), the last runs, today's quota per data.go.kr operation, the rejects of
  the last 7 days by reason, the completeness of the last 24 published hours and a province × KST-day heatmap
  of the last 14 days of the ledger, what the raw archive took in over 24 hours, revisions, the database size.
* ``GET /air[?station=NAME]`` — the newest PM10 and PM2.5 per province and per station with their Korean
  grade bands (:mod:`.grades`), and one station's last 24 hours and last 30 KST days.
* ``GET /movies[?movie=TMDB_ID]`` — the newest now-playing ranking, and one movie's popularity and rank
  over the list runs.
* ``GET /static/{name}`` — the stylesheet, the script and the icon, from memory, with their content types.

Threat model: every string from an API (titles, overviews, station names, reject reasons, run errors) is
data. Jinja2 autoescapes every template; the charts escape their own text (:mod:`.charts`); the JSON the
script reads is embedded with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped (:func:`json_for_script`). No
page has inline script or style, or a URL of another origin (no poster is loaded: it would leave the host).
Parameters are checked before any query and bound to it; an unknown station or movie is a 400 of one line;
parameters the views do not know are ignored, as on any GET form. Every list is limited (:mod:`.queries`).

Time: every page reads only keys and indexes (:mod:`.queries`), and ``collect_status`` is asked without its
table counts (``totals=False``): no page counts or scans ``air_readings``.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from multidict import MultiMapping

from pipeline.config import SIDOS
from pipeline.status import StatusReport, collect_status
from pipeline.transform.common import KST
from pipeline.transform.coverage import hour_slot
from pipeline.web import charts, grades
from pipeline.web import queries as q
from pipeline.web.app import BadParameter, context

HOUR: Final = timedelta(hours=1)
HOURS_SHOWN: Final = 24
DAYS_SHOWN: Final = 30
HEATMAP_DAYS: Final = 14
REJECT_DAYS: Final = 7
TOP_MOVIES_CHARTED: Final = 20
VALID_DAY_HOURS: Final = 18  # a daily mean of fewer valid hours is drawn lighter (docs/sql-recipes.md)
MAX_ECHO: Final = 40  # characters of a bad parameter echoed in the 400 line
MAX_MOVIE_ID: Final = 2**31 - 1  # movies.tmdb_id is an INTEGER
OVERVIEW_CHARS: Final = 600
SERIES_COLOUR: Final = "#24292f"

#: the files under /static/: name → content type (nothing else is served)
STATIC_FILES: Final = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}


def add_routes(app: web.Application) -> None:
    """``GET /``, ``/air``, ``/movies`` and ``/static/{name}`` (each answers ``HEAD`` too)."""
    app.router.add_get("/", collection_view, name="collection")
    app.router.add_get("/air", air_view, name="air")
    app.router.add_get("/movies", movies_view, name="movies")
    app.router.add_get("/static/{name}", static_file, name="static")


# --- rendering --------------------------------------------------------------------------------------------


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pipeline.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["kst"] = kst_text
    env.filters["num"] = number_text
    env.filters["size"] = size_text
    env.filters["span"] = span_text
    env.filters["iso"] = iso_text
    return env


_JSON_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_UNSAFE: Final = re.compile("[<>&\u2028\u2029]")


def json_for_script(data: Any) -> Markup:
    """``data`` as JSON that is safe inside ``<script type="application/json">``: no ``</script>``, no
    comment opener, no HTML entity, no JavaScript line terminator can appear in it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    # S704: the only characters HTML gives meaning inside a script element are escaped just here
    return Markup(_JSON_UNSAFE.sub(lambda m: _JSON_ESCAPES[m.group()], text))  # noqa: S704


@dataclass(slots=True)
class Page:
    """What the layout needs besides the view's own context."""

    name: str
    title: str
    air_hour: datetime | None = None
    list_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)  # id → JSON for dashboard.js


def render(page: Page, template: str, **values: Any) -> web.Response:
    blocks = [(key, json_for_script(value)) for key, value in page.data.items()]
    html = environment().get_template(template).render(page=page, data_blocks=blocks, now=datetime.now(UTC), **values)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def kst_text(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(KST).strftime(fmt) if moment is not None else "—"


def iso_text(moment: datetime | date | None) -> str:
    """A machine-readable time for data attributes: UTC ISO 8601 (dates as they are)."""
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).isoformat()
    return moment.isoformat()


def number_text(value: float | None, digits: int = 1) -> str:
    """A count as a whole number, any other value with ``digits`` decimals; ``—`` for none."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def size_text(count: int | None) -> str:
    if count is None:
        return "—"
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover - the loop returns


def span_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60)} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


# --- parameters -------------------------------------------------------------------------------------------


def echo(value: str) -> str:
    """A parameter as the 400 line may show it: printable, one line, short, quoted."""
    shown = "".join(ch if unicodedata.category(ch)[0] not in "CZ" or ch == " " else "?" for ch in value)
    if len(shown) > MAX_ECHO:
        shown = shown[: MAX_ECHO - 1] + "…"
    return "'" + shown.replace("'", "\\'") + "'"


def single(query: MultiMapping[str], name: str) -> str | None:
    """The one value of ``name``; empty (a form's blank choice) is none; twice is a 400."""
    given = query.getall(name, [])
    if len(given) > 1:
        raise BadParameter(f"{name}: give it once, not {len(given)} times")
    value = given[0].strip() if given else ""
    return value or None


def movie_id(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", value) or not 0 < int(value) <= MAX_MOVIE_ID:
        raise BadParameter(f"movie: {echo(value)} is not a positive TMDB id")
    return int(value)


# --- Collection -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeatmapRow:
    sido: str
    cells: list[q.ProvinceDay | None]


async def collection_view(request: web.Request) -> web.Response:
    ctx = context(request)
    now = datetime.now(UTC)

    async def reads() -> dict[str, Any]:
        async with ctx.engine.connect() as conn:
            newest = await q.newest_published(conn)
            listed = await q.newest_list_run(conn)
            last_day = hour_slot(newest)[0] if newest is not None else now.astimezone(KST).date()
            first_day = last_day - timedelta(days=HEATMAP_DAYS - 1)
            return {
                "newest": newest,
                "listed": listed,
                "days": [first_day + timedelta(days=i) for i in range(HEATMAP_DAYS)],
                "province_days": await q.province_days(conn, first_day, last_day),
                "runs": await q.recent_runs(conn),
                "rejects": await q.reject_reasons(conn, now - timedelta(days=REJECT_DAYS)),
                "archive": await q.archive_since(conn, now - timedelta(days=1)),
                "database_bytes": await q.database_bytes(conn),
                "revisions": await q.revision_counts(conn, now),
            }

    # the status report reads through connections of its own: both run at once. Without the row counts of
    # every table (count(*) of air_readings: ~100 ms on a year), which the page does not show
    status = collect_status(ctx.settings, now=now, engine=ctx.engine, totals=False)
    report, found = await asyncio.gather(status, reads())
    page = Page("collection", "Collection", found["newest"], found["listed"][1] if found["listed"] else None)
    days: list[date] = found["days"]
    rows = heatmap_rows(found["province_days"], days)
    columns = [day.strftime("%m-%d") for day in days]
    cells: dict[tuple[int, int], charts.Cell] = {}
    for i, row in enumerate(rows):
        for j, cell in enumerate(row.cells):
            percent = cell.percent if cell is not None else None
            if cell is not None and percent is not None:
                cells[(i, j)] = charts.Cell(
                    percent, f"{row.sido} {days[j].isoformat()}: {percent:.2f} % ({cell.held} of {cell.published})"
                )
    heatmap = charts.heatmap(
        [row.sido for row in rows],
        columns,
        cells,
        title=f"Completeness per province and KST day, {days[0].isoformat()} … {days[-1].isoformat()}",
        chart_id="heatmap",
    )
    gauges = [
        (
            usage,
            charts.gauge(
                usage.calls,
                usage.limit,
                exhausted=usage.exhausted,
                title=f"{usage.operation}: {usage.calls} of {usage.limit} calls today (KST)",
                chart_id=f"quota-{usage.operation}",
            ),
        )
        for usage in report.quota
    ]
    return render(
        page,
        "collection.html",
        report=report,
        jobs=job_rows(report),
        heatmap=heatmap,
        heatmap_rows=rows,
        days=days,
        gauges=gauges,
        **{k: found[k] for k in ("runs", "rejects", "archive", "database_bytes", "revisions")},
        reject_days=REJECT_DAYS,
    )


def heatmap_rows(found: Sequence[q.ProvinceDay], days: Sequence[date]) -> list[HeatmapRow]:
    """Provinces in their usual order (then any other name, then stations of no known province)."""
    index = {day: i for i, day in enumerate(days)}
    by_sido: dict[str, list[q.ProvinceDay | None]] = {}
    for entry in found:
        name = entry.sido_name or "?"
        row = by_sido.setdefault(name, [None] * len(days))
        if entry.kst_date in index:
            row[index[entry.kst_date]] = entry
    return [HeatmapRow(name, by_sido[name]) for name in province_order(by_sido)]


def province_order(names: Iterable[str]) -> list[str]:
    """Provinces in their usual order (:data:`pipeline.config.SIDOS`), then other names, then ``?``."""
    order: dict[str, int] = {name: i for i, name in enumerate(SIDOS)}
    return sorted(names, key=lambda n: (n == "?", order.get(n, len(order)), n))


@dataclass(frozen=True, slots=True)
class JobRow:
    job: str
    state: str
    last_status: str | None
    last_started_at: datetime | None
    last_success_at: datetime | None
    age_seconds: float | None
    freshness_seconds: float
    running: bool
    next_run_at: datetime | None
    last_error: str | None


def job_rows(report: StatusReport) -> list[JobRow]:
    return [
        JobRow(j.job, j.state, j.last_status, j.last_started_at, j.last_success_at, j.age_seconds,
               j.freshness_seconds, j.running, j.next_run_at, first_line(j.last_error))
        for j in report.jobs
    ]  # fmt: skip


def first_line(text: str | None, limit: int = 300) -> str | None:
    if not text:
        return None
    line = text.splitlines()[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --- Air --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Graded:
    """A value with its band, or the flag that stands for it."""

    value: float | None
    band: grades.Band | None
    flag: str | None = None


def graded(pollutant: grades.Pollutant, value: float | None, flag: str | None = None) -> Graded:
    return Graded(value, grades.band(pollutant, value), flag)


@lru_cache(maxsize=8192)
def graded_html(value: Graded, digits: int = 0) -> Markup:
    """A value, its band's word on its colour, and its flag: the cells of every Air table.

    Built here rather than by a template macro, and cached (values and flags recur): the stations table has
    670 rows, and a macro call per cell took most of the page's time. Every text is escaped here.
    """
    parts = []
    if value.value is not None:
        parts.append(f'<span class="value">{escape(number_text(value.value, digits))}</span>')
        if value.band is not None:
            parts.append(f'<span class="grade {escape(value.band.css)}">{escape(value.band.word)}</span>')
    if value.flag:
        parts.append(f'<span class="flag">{escape(value.flag)}</span>')
    # S704: every variable part above went through escape()
    return Markup(" ".join(parts) if parts else '<span class="none">—</span>')  # noqa: S704


@dataclass(frozen=True, slots=True)
class StationView:
    """A row of the stations table, every text ready (the template only escapes and places them)."""

    name: str
    query: str  # the name percent-encoded for the link's query string
    sido: str
    network: str
    hour: str  # KST
    iso: str  # UTC, for data-measured-at
    pm10: str  # the value as stored, for data-pm10 ("" when none)
    pm25: str
    pm10_cell: Markup
    pm25_cell: Markup


@lru_cache(maxsize=4096)
def station_view(s: q.StationReading) -> StationView:
    """Cached: the rows repeat from one request to the next until the next poll (quoting 670 Korean names
    and formatting their hours cost more than the query)."""
    return StationView(
        s.station_name,
        quote(s.station_name, safe=""),
        s.sido_name or "",
        s.mang_name or "",
        kst_text(s.measured_at),
        iso_text(s.measured_at),
        "" if s.pm10 is None else str(s.pm10),
        "" if s.pm25 is None else str(s.pm25),
        graded_html(graded("pm10", s.pm10, s.pm10_flag)),
        graded_html(graded("pm25", s.pm25, s.pm25_flag)),
    )


@dataclass(frozen=True, slots=True)
class ProvinceView:
    sido: str
    measured_at: datetime | None
    stations: int  # stations of the province
    at_hour: int  # of them, with a reading at the province's newest hour
    pm10_stations: int  # of those, with a PM10 value
    pm25_stations: int
    pm10: Graded
    pm25: Graded


def provinces(stations: Sequence[q.StationReading]) -> list[ProvinceView]:
    """Per province, the mean of its stations' values at its newest hour (a station whose newest reading is
    older is not in the mean: it is listed below with its own hour)."""
    by_sido: dict[str, list[q.StationReading]] = defaultdict(list)
    for reading in stations:
        by_sido[reading.sido_name or "?"].append(reading)
    views = []
    for sido in province_order(by_sido):
        members = by_sido[sido]
        hours = [r.measured_at for r in members if r.measured_at is not None]
        newest = max(hours, default=None)
        current = [r for r in members if newest is not None and r.measured_at == newest]
        pm10 = [r.pm10 for r in current if r.pm10 is not None]
        pm25 = [r.pm25 for r in current if r.pm25 is not None]
        mean10 = sum(pm10) / len(pm10) if pm10 else None
        mean25 = sum(pm25) / len(pm25) if pm25 else None
        views.append(
            ProvinceView(sido, newest, len(members), len(current), len(pm10), len(pm25),
                         graded("pm10", mean10), graded("pm25", mean25))
        )  # fmt: skip
    return views


@dataclass(frozen=True, slots=True)
class HourView:
    measured_at: datetime
    reading: q.HourReading | None  # None: missing
    pm10: Graded
    pm25: Graded


@dataclass(frozen=True, slots=True)
class DayView:
    kst_date: date
    means: q.DayMeans | None
    pm10: Graded
    pm25: Graded


async def air_view(request: web.Request) -> web.Response:
    ctx = context(request)
    wanted = single(request.query, "station")
    if wanted is not None and len(wanted) > 200:
        raise BadParameter(f"station: no station named {echo(wanted)}")
    async with ctx.engine.connect() as conn:
        if wanted is not None and not await q.known_station(conn, wanted):
            raise BadParameter(f"station: no station named {echo(wanted)}")
        stations = await q.newest_readings(conn)
        newest = await q.newest_published(conn)
        listed = await q.newest_list_run(conn)
        chosen = wanted or default_station(stations, ctx.settings.sources.airkorea.stations)
        reading = next((s for s in stations if s.station_name == chosen), None)
        hours: list[HourView] = []
        days: list[DayView] = []
        if chosen is not None:
            end = newest
            own = reading.measured_at if reading is not None else None
            if own is not None and (end is None or own > end):
                end = own
            if end is not None:
                first = end - (HOURS_SHOWN - 1) * HOUR
                held = {h.measured_at: h for h in await q.station_hours(conn, chosen, first, end)}
                for k in range(HOURS_SHOWN):
                    at = first + k * HOUR
                    h = held.get(at)
                    hours.append(
                        HourView(at, h, graded("pm10", h.pm10 if h else None, h.pm10_flag if h else None),
                                 graded("pm25", h.pm25 if h else None, h.pm25_flag if h else None))
                    )  # fmt: skip
                last_day = hour_slot(end)[0]
                first_day = last_day - timedelta(days=DAYS_SHOWN - 1)
                means = {d.kst_date: d for d in await q.station_days(conn, chosen, first_day, last_day)}
                for k in range(DAYS_SHOWN):
                    day = first_day + timedelta(days=k)
                    m = means.get(day)
                    days.append(DayView(day, m, graded("pm10", m.pm10_mean if m else None),
                                        graded("pm25", m.pm25_mean if m else None)))  # fmt: skip
    page = Page("air", "Air", newest, listed[1] if listed else None)
    views = [station_view(s) for s in stations]
    regions = provinces(stations)
    station_charts = air_charts(page, chosen, hours, days)
    province_charts = {
        pollutant: charts.hbar_chart(
            [
                charts.Bar(
                    p.sido,
                    getattr(p, pollutant).value,
                    province_tip(p, pollutant),
                    getattr(p, pollutant).band.colour if getattr(p, pollutant).band else charts.MISSING_MARK,
                    key=p.sido,
                )
                for p in regions
            ],
            title=f"{grades.NAMES[pollutant]} per province: mean of the stations at the newest hour (µg/m³)",
            chart_id=f"province-{pollutant}",
            unit="µg/m³",
            label_width=60,
        )
        for pollutant in ("pm10", "pm25")
    }
    return render(
        page,
        "air.html",
        stations=views,
        regions=regions,
        chosen=chosen,
        reading=reading,
        hours=hours,
        days=days,
        station_charts=station_charts,
        province_charts=province_charts,
        bands={p: grades.bands(p) for p in ("pm10", "pm25")},
        names=grades.NAMES,
        graded=graded_html,
        valid_day_hours=VALID_DAY_HOURS,
        pickable=picker_groups(stations),
    )


def default_station(stations: Sequence[q.StationReading], watched: Sequence[str]) -> str | None:
    """The first watch-listed station the collection knows, else the first station listed."""
    names = {s.station_name for s in stations}
    for name in watched:
        if name in names:
            return name
    return stations[0].station_name if stations else None


def picker_groups(stations: Sequence[q.StationReading]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for s in stations:
        groups[s.sido_name or "?"].append(s.station_name)
    return [(sido, groups[sido]) for sido in province_order(groups)]


def province_tip(p: ProvinceView, pollutant: grades.Pollutant) -> str:
    value: Graded = getattr(p, pollutant)
    counted = p.pm10_stations if pollutant == "pm10" else p.pm25_stations
    shown = f"{value.value:.1f} µg/m³ {value.band.word}" if value.value is not None and value.band else "no value"
    at = kst_text(p.measured_at)
    return f"{p.sido} {grades.NAMES[pollutant]}: {shown}, {counted} of {p.stations} stations, {at} KST"


def air_charts(
    page: Page, station: str | None, hours: Sequence[HourView], days: Sequence[DayView]
) -> dict[str, Markup]:
    """The station's hourly lines and daily bars, and the JSON the script shows on hover."""
    made: dict[str, Markup] = {}
    if station is None:
        return made
    for pollutant in ("pm10", "pm25"):
        name = grades.NAMES[pollutant]
        points = []
        readout: dict[str, str] = {}
        for h in hours:
            value: Graded = getattr(h, pollutant)
            key = h.measured_at.isoformat()
            label = kst_text(h.measured_at, "%m-%d %H:%M")
            points.append(charts.Point(h.measured_at, value.value, label, value.flag, key))
            readout[key] = f"{station} {kst_text(h.measured_at)} KST {name}: " + graded_text(value, h.reading is None)
        chart_id = f"hours-{pollutant}"
        made[chart_id] = charts.line_chart(
            [charts.Series(name, pollutant, points, SERIES_COLOUR, "µg/m³")],
            title=f"{station}: {name}, last {HOURS_SHOWN} hours (KST, µg/m³)",
            chart_id=chart_id,
            step=HOUR,
            bands=band_areas(pollutant),
        )
        page.data[chart_id] = readout
        bars = []
        readout = {}
        for d in days:
            value = getattr(d, pollutant)
            valid = (d.means.pm10_hours if pollutant == "pm10" else d.means.pm25_hours) if d.means else 0
            key = d.kst_date.isoformat()
            text = (
                f"{key} {name}: mean {value.value:.1f} µg/m³ {value.band.word if value.band else ''}, "
                f"{valid} valid hours"
                if value.value is not None
                else f"{key} {name}: no valid hour"
            )
            bars.append(
                charts.Bar(d.kst_date.strftime("%m-%d"), value.value, text,
                           value.band.colour if value.band else charts.MISSING_MARK, key=key,
                           partial=value.value is not None and valid < VALID_DAY_HOURS)
            )  # fmt: skip
            readout[key] = f"{station} {text}"
        chart_id = f"days-{pollutant}"
        made[chart_id] = charts.bar_chart(
            bars, title=f"{station}: {name}, daily means of the last {DAYS_SHOWN} KST days", chart_id=chart_id,
            unit="µg/m³",
        )  # fmt: skip
        page.data[chart_id] = readout
    return made


def band_areas(pollutant: grades.Pollutant) -> list[charts.Band]:
    """The grade bands behind a line: each from the half below its first whole µg/m³ (values are graded
    rounded, halves up), so that they tile the axis."""
    return [
        charts.Band(max(0.0, b.low - 0.5), None if b.high is None else b.high + 0.5, b.colour,
                    f"{b.word} ({b.range_text} µg/m³)")
        for b in grades.bands(pollutant)
    ]  # fmt: skip


def graded_text(value: Graded, missing: bool) -> str:
    if missing:
        return "missing"
    parts = []
    if value.value is not None:
        parts.append(f"{value.value:g} µg/m³ {value.band.word if value.band else ''}".strip())
    if value.flag:
        parts.append(f"flag {value.flag}")
    return ", ".join(parts) or "no value"


# --- Movies -----------------------------------------------------------------------------------------------


async def movies_view(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = single(request.query, "movie")
    wanted = movie_id(raw) if raw is not None else None
    async with ctx.engine.connect() as conn:
        chosen: q.Movie | None = None
        if wanted is not None:
            chosen = await q.movie(conn, wanted)
            if chosen is None:
                raise BadParameter(f"movie: no movie with TMDB id {wanted}")
        newest = await q.newest_published(conn)
        listed = await q.newest_list_run(conn)
        ranked, total = await q.ranking(conn, listed[0]) if listed else ([], 0)
        if chosen is None and ranked:
            chosen = await q.movie(conn, ranked[0].tmdb_id)
        history = await q.movie_history(conn, chosen.tmdb_id) if chosen else []
    page = Page("movies", "Movies", newest, listed[1] if listed else None)
    top = ranked[:TOP_MOVIES_CHARTED]
    ranking_chart = charts.hbar_chart(
        [
            charts.Bar(f"{r.position}. {r.title or r.original_title or r.tmdb_id}", r.popularity,
                       f"#{r.position} {r.title or ''} ({r.original_title or ''}): popularity "
                       f"{number_text(r.popularity, 3)}", "#6639ba", key=str(r.tmdb_id))
            for r in top
        ],
        title=f"TMDB popularity of the top {len(top)} now playing",
        chart_id="ranking",
        label_width=260,
    )  # fmt: skip
    page.data["ranking"] = {
        str(r.tmdb_id): f"#{r.position} {r.title or ''} ({r.original_title or ''}), popularity "
        f"{number_text(r.popularity, 3)}, votes {number_text(r.vote_average, 1)}"
        for r in top
    }
    movie_charts: dict[str, Markup] = {}
    if chosen is not None:
        name = chosen.title or chosen.original_title or str(chosen.tmdb_id)
        readout = {}
        popularity, rank = [], []
        for s in history:
            key = f"run-{s.run_id}"
            label = kst_text(s.captured_at, "%m-%d %H:%M")
            popularity.append(charts.Point(s.captured_at, s.popularity, label, None, key))
            rank.append(charts.Point(s.captured_at, float(s.position) if s.position else None, label, None, key))
            readout[key] = (
                f"{name}, {kst_text(s.captured_at)} KST: rank {s.position}, popularity {number_text(s.popularity, 3)}"
                if s.position
                else f"{name}, {kst_text(s.captured_at)} KST: not listed"
            )
        page.data["movie-popularity"] = readout
        page.data["movie-rank"] = readout
        movie_charts["movie-popularity"] = charts.line_chart(
            [charts.Series("popularity", "popularity", popularity, "#6639ba")],
            title=f"{name}: TMDB popularity per now-playing list run (gaps: not listed)",
            chart_id="movie-popularity",
            missing_word="not listed",
        )
        movie_charts["movie-rank"] = charts.line_chart(
            [charts.Series("rank", "rank", rank, "#0969da")],
            title=f"{name}: rank in the now-playing list (1 on top; gaps: not listed)",
            chart_id="movie-rank",
            invert=True,
            missing_word="not listed",
        )
    overview = chosen.overview if chosen and chosen.overview else None
    if overview and len(overview) > OVERVIEW_CHARS:
        overview = overview[: OVERVIEW_CHARS - 1] + "…"
    return render(
        page,
        "movies.html",
        ranked=ranked,
        total=total,
        listed=listed,
        chosen=chosen,
        overview=overview,
        history=list(reversed(history)),
        ranking_chart=ranking_chart,
        movie_charts=movie_charts,
    )


# --- static files -----------------------------------------------------------------------------------------


@cache
def static_body(name: str) -> bytes:
    return resources.files("pipeline.web").joinpath("static", name).read_bytes()


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    charset = None if content_type.startswith("image/") else "utf-8"
    response = web.Response(body=static_body(name), content_type=content_type, charset=charset)
    response.headers["Cache-Control"] = "no-cache"
    return response
