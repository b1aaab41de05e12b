"""The dashboard (pipeline/web/dashboard.py) on SQLite and PostgreSQL: what each view shows equals the same
SQL on the database, API text is escaped everywhere, the pages carry no inline code and no foreign URL, and
bad parameters are one-line 400s.

The database is filled once per backend by three simulated cycles at fixed clocks (two days apart, then three
hours apart), with a watch-listed station (a 24-hour series), and with hostile movie titles and overviews
that come through the data path: the simulator serves them, the pipeline stores them as it would any title.
A hostile station name, a run error and a reject reason are written with a connection of their own.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pipeline.config import Settings, parse_settings
from pipeline.load.db import migrate
from pipeline.load.tables import air_readings, air_stations, rejects, runs
from pipeline.offline import simulated
from pipeline.runner import run_once
from pipeline.simulator import SimulatorState, tmdb_data
from pipeline.status import collect_status
from pipeline.transform.common import KST
from pipeline.transform.coverage import hour_slot
from pipeline.web import grades
from pipeline.web.app import SECURITY_HEADERS, create_app
from pipeline.web.database import read_only_engine
from tests.backends import _admin as admin
from tests.backends import fetch, plain, run_sync

CLOCKS = (
    datetime(2026, 11, 26, 0, 30, tzinfo=UTC),
    datetime(2026, 11, 27, 21, 30, tzinfo=UTC),
    datetime(2026, 11, 28, 0, 30, tzinfo=UTC),
)
WATCHED = "종로구"
HOSTILE_TITLES = ("<script>alert(1)</script>", "</script><img src=x onerror=alert(1)>")
HOSTILE_OVERVIEW = "<b>bold</b> & <iframe src=javascript:alert(2)></iframe>"
HOSTILE_STATION = "<svg onload=alert(3)>\"'&역"
OLD_STATION = "옛측정소"
HOSTILE_ERROR = "boom <script>alert(4)</script>"
HOSTILE_REASON = "dataTime: <img src=x onerror=alert(5)>"
HOUR = timedelta(hours=1)


def hostile_id(movie_id: int) -> int | None:
    """Which hostile title a simulated movie gets (a quarter of the movies get each one)."""
    return movie_id % 4 if movie_id % 4 < len(HOSTILE_TITLES) else None


# --- the database --------------------------------------------------------------------------------------------


@dataclass
class Site:
    url: str
    settings: Settings

    def sql(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(plain(v) for v in row) for row in fetch(self.url, sql, params)]


def settings_for(url: str) -> Settings:
    return parse_settings(
        {"database": {"url": url},
         "sources": {"tmdb": {"rate_limit": 40, "max_pages": 1},
                     "airkorea": {"rate_limit": 50, "stations": [WATCHED]}}}
    )  # fmt: skip


async def fill(settings: Settings) -> None:
    await migrate(settings.database.url)
    for clock in CLOCKS:
        async with simulated(settings, SimulatorState(clock=clock)) as (local, secrets, _sim):
            report, _counts = await run_once(local, secrets)
        assert report.status == "success", (clock, report)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('dashboard') / 'p.db'}"
        yield filled(url)
        return
    # a database of its own on the session's server: the tests that take `db_url` empty the session's one
    server = request.getfixturevalue("postgres_server")
    name = f"{server.name}_dashboard"
    drop = (f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
            f'DROP DATABASE IF EXISTS "{name}"')  # fmt: skip
    run_sync(lambda: admin(server.dsn, *drop, f'CREATE DATABASE "{name}"'))
    try:
        yield filled(server.url_for(name))
    finally:
        run_sync(lambda: admin(server.dsn, *drop))


def filled(url: str) -> Site:
    settings = settings_for(url)
    title, overview = tmdb_data.localized_title, tmdb_data.localized_overview

    def hostile_title(movie: Any, language: str) -> str:
        chosen = hostile_id(movie.id)
        return title(movie, language) if chosen is None else HOSTILE_TITLES[chosen]

    def hostile_overview(movie: Any, language: str) -> str:
        return HOSTILE_OVERVIEW if hostile_id(movie.id) is not None else overview(movie, language)

    with pytest.MonkeyPatch.context() as patch:  # the simulator serves them; the pipeline stores them
        patch.setattr(tmdb_data, "localized_title", hostile_title)
        patch.setattr(tmdb_data, "localized_overview", hostile_overview)
        run_sync(lambda: fill(settings))
    now = datetime.now(UTC)
    run_sync(lambda: plant(url, now))
    return Site(url, settings)


async def plant(url: str, now: datetime) -> None:
    """A hostile station with a flagged reading, and a failed run with a hostile error and reject, written
    through the tables' own types (UTC text on SQLite, timestamptz on PostgreSQL)."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(air_stations).values(
                station_name=HOSTILE_STATION, sido_name="서울", mang_name="도시대기", first_seen_at=CLOCKS[-1],
                updated_at=CLOCKS[-1]))  # fmt: skip
            await conn.execute(insert(air_readings).values(
                station_name=HOSTILE_STATION, measured_at=CLOCKS[-1] - timedelta(minutes=30), pm10=42,
                pm10_flag="<i>통신장애</i>", updated_at=CLOCKS[-1]))  # fmt: skip
            # a station whose newest reading is older than its province's newest hour: not in the mean
            await conn.execute(insert(air_stations).values(
                station_name=OLD_STATION, sido_name="부산", first_seen_at=CLOCKS[0], updated_at=CLOCKS[0]))  # fmt: skip
            await conn.execute(insert(air_readings).values(
                station_name=OLD_STATION, measured_at=CLOCKS[-1] - timedelta(hours=5, minutes=30), pm10=999,
                pm25=999, updated_at=CLOCKS[-1]))  # fmt: skip
            run = await conn.execute(insert(runs).values(
                job="web_test", trigger="manual", started_at=now - timedelta(minutes=5),
                finished_at=now - timedelta(minutes=4), status="failed", requests=3, rows_fetched=2, rows_upserted=1,
                rows_rejected=1, error=HOSTILE_ERROR).returning(runs.c.id))  # fmt: skip
            await conn.execute(insert(rejects).values(
                run_id=run.scalar_one(), source="airkorea", reason=HOSTILE_REASON, record="{}",
                created_at=now - timedelta(minutes=4)))  # fmt: skip
    finally:
        await engine.dispose()


@asynccontextmanager
async def client_for(site: Site, aiohttp_client: Any) -> AsyncIterator[Any]:
    engine = read_only_engine(site.url)
    try:
        yield await aiohttp_client(create_app(site.settings, engine))
    finally:
        await engine.dispose()


async def page(client: Any, target: str) -> Page:
    response = await client.get(target)
    text = await response.text()
    assert response.status == 200, (target, text[:500])
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    parsed = Page(text)
    parsed.audit()
    return parsed


# --- reading a page --------------------------------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Page(HTMLParser):
    """A page, parsed: its elements, the rows of each table (by table id), its script elements."""

    html: str
    elements: list[Element] = field(default_factory=list)
    rows: dict[str, list[Element]] = field(default_factory=lambda: defaultdict(list))
    scripts: list[Element] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._tables: list[str] = []
        self._open: list[Element] = []
        self.feed(self.html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag == "table":
            self._tables.append(element.attrs.get("id", ""))
        if tag == "tr" and self._tables and any(k.startswith("data-") for k in element.attrs):
            self.rows[self._tables[-1]].append(element)
        if tag == "script":
            self.scripts.append(element)
        if tag not in ("br", "meta", "link", "input", "img", "rect", "line", "path", "circle"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._tables:
            self._tables.pop()
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data

    def table(self, table_id: str) -> list[dict[str, str]]:
        return [row.attrs for row in self.rows[table_id]]

    def data_blocks(self) -> dict[str, Any]:
        blocks = {}
        for script in self.scripts:
            if script.attrs.get("type") == "application/json":
                blocks[script.attrs["data-for"]] = json.loads(script.text)
        return blocks

    def audit(self) -> None:
        """No inline script or style, no event handler, no foreign URL, Korean declared."""
        html_tag = next(e for e in self.elements if e.tag == "html")
        assert html_tag.attrs.get("lang") == "ko"
        for element in self.elements:
            for name in element.attrs:
                assert name != "style" and not name.startswith("on"), (element.tag, name)
            assert element.tag not in ("style", "img", "iframe", "object", "embed", "base", "b"), element.tag
            for name in ("href", "src", "action"):
                if name in element.attrs:
                    assert element.attrs[name].startswith("/"), (element.tag, element.attrs[name])
        for script in self.scripts:
            if script.attrs.get("type") == "application/json":
                assert "<" not in script.text and ">" not in script.text and "&" not in script.text
                json.loads(script.text)
            else:
                assert script.attrs.get("src") == "/static/dashboard.js" and not script.text.strip()
        assert not re.search(r"https?://", self.html, re.IGNORECASE)
        assert not re.search(r"javascript:", self.html.replace("javascript:alert(2)", ""), re.IGNORECASE)


def utc_text(iso: str) -> str | None:
    """A data-measured-at value as the oracle spells times (UTC, ``YYYY-MM-DD HH:MM:SS``)."""
    return plain(datetime.fromisoformat(iso)) if iso else None


def moment(value: str | datetime) -> datetime:
    """A time as either backend returns it to plain SQL (UTC text on SQLite), aware."""
    found = datetime.fromisoformat(value) if isinstance(value, str) else value
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def number(text: str) -> float | None:
    return float(text) if text != "" else None


# --- every view ------------------------------------------------------------------------------------------------


async def test_every_view_answers_200_safely(site: Site, aiohttp_client: Any) -> None:
    (hostile_movie,) = site.sql("SELECT min(tmdb_id) FROM movies WHERE title = :t", {"t": HOSTILE_TITLES[1]})[0]
    async with client_for(site, aiohttp_client) as client:
        targets = ["/", "/air", f"/air?station={quote(WATCHED)}", f"/air?station={quote(HOSTILE_STATION)}",
                   "/movies", f"/movies?movie={hostile_movie}", "/air?unknown=1&station=", "/movies?movie="]  # fmt: skip
        for target in targets:
            found = await page(client, target)
            nav = [e.attrs["href"] for e in found.elements if e.tag == "a" and "aria-current" in e.attrs]
            assert nav == [{"": "/", "air": "/air", "movies": "/movies"}[target.split("?")[0].strip("/")]]
            head = await client.head(target)
            assert head.status == 200 and head.headers["Content-Security-Policy"].startswith("default-src 'none'")
        css = await client.get("/static/dashboard.css")
        assert '"Noto Sans CJK KR", "Noto Sans KR"' in await css.text()


# --- Collection --------------------------------------------------------------------------------------------------


async def test_the_collection_view_shows_what_the_database_holds(site: Site, aiohttp_client: Any) -> None:
    async with client_for(site, aiohttp_client) as client:
        found = await page(client, "/")
    report = await collect_status(site.settings)
    # freshness: collect_status's words, every job
    assert [(r["data-job"], r["data-state"]) for r in found.table("jobs-table")] == [
        (j.job, j.state) for j in report.jobs
    ]
    assert {j.state for j in report.jobs} <= {"fresh", "STALE", "disabled"}
    # the last 20 runs with their outcome and counts
    assert [
        (int(r["data-run-id"]), r["data-status"], int(r["data-requests"]), int(r["data-rows-upserted"]),
         int(r["data-rows-rejected"]))
        for r in found.table("runs-table")
    ] == site.sql("SELECT id, status, requests, rows_upserted, rows_rejected FROM runs ORDER BY id DESC LIMIT 20")  # fmt: skip
    # today's quota (KST) per operation, as the ledger holds it
    today = datetime.now(UTC).astimezone(KST).date().isoformat()
    calls = {op: n for op, day, n in site.sql("SELECT operation, kst_date, calls FROM api_calls") if day == today}
    quota = found.table("quota-table")
    assert quota and all(int(r["data-calls"]) == calls.get(r["data-operation"], 0) for r in quota)
    assert {r["data-operation"] for r in quota} == {u.operation for u in report.quota}
    # rejects of the last 7 days by reason
    since = plain(datetime.now(UTC) - timedelta(days=7))
    expected_rejects: dict[tuple[str, str], int] = defaultdict(int)
    for source, reason, created in site.sql("SELECT source, reason, created_at FROM rejects"):
        if created >= since:
            expected_rejects[(source, reason)] += 1
    rows = [(r["data-source"], int(r["data-count"])) for r in found.table("rejects-table")]
    assert sorted(rows) == sorted((s, n) for (s, _r), n in expected_rejects.items()) and rows
    # the completeness of the last 24 published hours (the status report's ledger figures)
    c = report.completeness
    assert c is not None
    card = next(e for e in found.elements if "data-expected" in e.attrs)
    assert int(card.attrs["data-expected"]) == c.expected and c.expected > 0
    assert int(next(e for e in found.elements if "data-received" in e.attrs).attrs["data-received"]) == c.received
    # the heatmap: the air_completeness view per province and KST day, 14 days up to the newest published hour
    days = [e.attrs["data-kst-date"] for e in found.elements if e.tag == "th" and "data-kst-date" in e.attrs]
    ((newest,),) = fetch(site.url, "SELECT max(measured_at) FROM air_published_hours")
    last = hour_slot(moment(newest))[0]
    assert days == [(last - timedelta(days=13 - i)).isoformat() for i in range(14)]
    oracle = {
        (sido, day): (held, published)
        for sido, day, held, published in site.sql(
            "SELECT sido_name, kst_date, sum(received + flagged), sum(expected - not_published) "
            "FROM air_completeness GROUP BY sido_name, kst_date"
        )
        if days[0] <= day <= days[-1] and published
    }
    cells, sido = {}, ""
    for element in found.elements:  # in document order: a cell belongs to the row opened last
        if element.tag == "tr":
            sido = element.attrs.get("data-sido", "")
        if element.tag == "td" and "data-held" in element.attrs:
            cells[(sido, element.attrs["data-kst-date"])] = (
                int(element.attrs["data-held"]), int(element.attrs["data-published"]))  # fmt: skip
    assert cells == oracle and len(cells) >= 17


# --- Air --------------------------------------------------------------------------------------------------------


async def test_the_air_view_shows_the_newest_readings_with_their_bands(site: Site, aiohttp_client: Any) -> None:
    async with client_for(site, aiohttp_client) as client:
        found = await page(client, "/air")
    latest = {
        name: (measured, pm10, pm25)
        for name, measured, pm10, pm25 in site.sql("SELECT station_name, measured_at, pm10, pm25 FROM air_latest")
    }
    shown = {
        r["data-station"]: (utc_text(r["data-measured-at"]), number(r["data-pm10"]), number(r["data-pm25"]))
        for r in found.table("stations-table")
    }
    assert len(shown) == site.sql("SELECT count(*) FROM air_stations")[0][0] >= 600
    assert {k: v for k, v in shown.items() if v[0] is not None} == latest
    # each value is shown with its band's word on its colour class
    for row in found.rows["stations-table"]:
        value = number(row.attrs["data-pm10"])
        band = grades.band("pm10", value)
        if band is not None:
            assert f"{value:.0f} {band.word}" in " ".join(row.text.split())
    # per province: the mean of its stations at its newest hour
    oracle = {
        sido: (round(pm10, 4) if pm10 is not None else None, round(pm25, 4) if pm25 is not None else None, n)
        for sido, pm10, pm25, n in site.sql(
            "SELECT l.sido_name, avg(l.pm10), avg(l.pm25), count(*) FROM air_latest l "
            "WHERE l.measured_at = (SELECT max(x.measured_at) FROM air_latest x WHERE x.sido_name = l.sido_name) "
            "GROUP BY l.sido_name"
        )
    }
    provinces = {
        r["data-sido"]: (
            round(float(r["data-pm10"]), 4) if r["data-pm10"] else None,
            round(float(r["data-pm25"]), 4) if r["data-pm25"] else None,
            int(r["data-at-hour"]),
        )
        for r in found.table("provinces-table")
    }
    assert provinces == oracle and len(provinces) == 17
    # the picker works without JavaScript: a GET form with a select named station, every station an option
    form = next(e for e in found.elements if e.tag == "form")
    assert (form.attrs["method"], form.attrs["action"]) == ("get", "/air")
    options = [e.attrs["value"] for e in found.elements if e.tag == "option"]
    assert (
        sorted(options) == sorted(shown)
        and next(e for e in found.elements if e.tag == "select").attrs["name"] == "station"
    )
    # the watch-listed station is shown by default
    assert next(e for e in found.elements if e.attrs.get("id") == "chosen-station").attrs["data-station"] == WATCHED


def window_end(site: Site, station: str) -> datetime:
    ((published,),) = fetch(site.url, "SELECT max(measured_at) FROM air_published_hours")
    ((own,),) = fetch(site.url, "SELECT max(measured_at) FROM air_readings WHERE station_name = :s", {"s": station})
    return max(moment(m) for m in (published, own) if m is not None)


async def station_page(site: Site, aiohttp_client: Any, station: str) -> Page:
    async with client_for(site, aiohttp_client) as client:
        return await page(client, f"/air?station={quote(station)}")


async def test_a_stations_hours_and_days_equal_the_database(site: Site, aiohttp_client: Any) -> None:
    found = await station_page(site, aiohttp_client, WATCHED)
    end = window_end(site, WATCHED)
    readings = {
        measured: (pm10, pm25, pm10_flag or "", pm25_flag or "")
        for measured, pm10, pm25, pm10_flag, pm25_flag in site.sql(
            "SELECT measured_at, pm10, pm25, pm10_flag, pm25_flag FROM air_readings WHERE station_name = :s",
            {"s": WATCHED},
        )
    }
    hours = found.table("hours-table")
    assert [utc_text(r["data-measured-at"]) for r in hours] == [plain(end - k * HOUR) for k in range(24)]
    for row in hours:
        held = readings.get(utc_text(row["data-measured-at"]))
        if held is None:
            assert row["class"] == "missing" and row["data-pm10"] == "" and row["data-pm25"] == ""
        else:
            assert (number(row["data-pm10"]), number(row["data-pm25"]), row["data-pm10-flag"],
                    row["data-pm25-flag"]) == held  # fmt: skip
    assert sum(1 for r in hours if r.get("class") != "missing") >= 20  # its series was fetched every cycle
    # the daily means: the air_daily view, with the valid hours behind each mean
    last = hour_slot(end)[0]
    first = (last - timedelta(days=29)).isoformat()
    oracle = {
        day: (hours_n, round(m10, 4) if m10 is not None else None, h10, round(m25, 4) if m25 is not None else None, h25)
        for day, hours_n, m10, h10, m25, h25 in site.sql(
            "SELECT kst_date, hours, pm10_mean, pm10_hours, pm25_mean, pm25_hours FROM air_daily WHERE station_name = :s",
            {"s": WATCHED},
        )
        if first <= day <= last.isoformat()
    }
    days = {
        r["data-kst-date"]: (int(r["data-hours"]), round(float(r["data-pm10-mean"]), 4) if r["data-pm10-mean"] else None,
                             int(r["data-pm10-hours"]),
                             round(float(r["data-pm25-mean"]), 4) if r["data-pm25-mean"] else None,
                             int(r["data-pm25-hours"]))
        for r in found.table("days-table")
    }  # fmt: skip
    assert len(days) == 30 and {k: v for k, v in days.items() if v[0]} == oracle and oracle


def svg_of(found: Page, chart: str) -> str:
    start = found.html.index(f'data-chart="{chart}"')
    return found.html[found.html.rindex("<svg", 0, start) : found.html.index("</svg>", start) + 6]


async def test_missing_hours_are_gaps_and_flagged_hours_are_marked(site: Site, aiohttp_client: Any) -> None:
    # a station with some hours of the window held and some not (its series was not fetched) and a flag
    first = plain(window_end(site, WATCHED) - 23 * HOUR)
    held: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, measured, flag in site.sql("SELECT station_name, measured_at, pm10_flag FROM air_readings"):
        if measured >= first and name != HOSTILE_STATION:
            held[name][0] += 1
            held[name][1] += flag is not None
    candidates = sorted(((name, n, flagged) for name, (n, flagged) in held.items()), key=lambda c: (-c[2], c[1], c[0]))
    station = next(name for name, n, _flagged in candidates if n < 24)
    flagged_station = next(name for name, _n, flagged in candidates if flagged)
    for name in dict.fromkeys((station, flagged_station)):
        found = await station_page(site, aiohttp_client, name)
        hours = found.table("hours-table")
        svg = svg_of(found, "hours-pm10")
        missing = {r["data-key"] for r in hours if r.get("class") == "missing"}
        assert set(re.findall(r'<line class="missing"[^>]*data-key="([^"]+)"', svg)) == missing
        flagged = {r["data-key"] for r in hours if r["data-pm10-flag"]}
        assert set(re.findall(r'<path class="flag"[^>]*data-key="([^"]+)"', svg)) == flagged
        points = set(re.findall(r'<circle class="point"[^>]*data-key="([^"]+)"', svg))
        assert points == {r["data-key"] for r in hours if r["data-pm10"] and not r["data-pm10-flag"]}
        # the line breaks at every hour without a value: one subpath per run of consecutive values
        values = [bool(r["data-pm10"]) for r in reversed(hours)]
        runs = sum(1 for i, v in enumerate(values) if v and (i == 0 or not values[i - 1]))
        (d,) = re.findall(r'<path class="line" d="([^"]*)"', svg)
        assert d.count("M") == runs
    assert missing or flagged


# --- Movies -------------------------------------------------------------------------------------------------------


async def test_the_movies_view_shows_the_newest_ranking_and_a_movies_history(site: Site, aiohttp_client: Any) -> None:
    newest = "SELECT max(run_id) FROM movie_snapshots WHERE list_name = 'now_playing'"
    oracle = site.sql(
        f"SELECT s.position, s.tmdb_id, s.popularity, s.vote_average FROM movie_snapshots s "
        f"WHERE s.run_id = ({newest}) AND s.list_name = 'now_playing' ORDER BY s.position"
    )
    async with client_for(site, aiohttp_client) as client:
        found = await page(client, "/movies")
        shown = [
            (int(r["data-rank"]), int(r["data-tmdb-id"]), number(r["data-popularity"]), number(r["data-vote-average"]))
            for r in found.table("ranking-table")
        ]
        assert shown == oracle and len(shown) >= 10
        # a movie the list runs did not always list: every list run between its first and its last
        lists = [
            run
            for (run,) in site.sql(
                "SELECT DISTINCT run_id FROM movie_snapshots WHERE list_name = 'now_playing' ORDER BY 1"
            )
        ]
        (movie,) = site.sql(
            "SELECT tmdb_id FROM movie_snapshots WHERE list_name = 'now_playing' GROUP BY tmdb_id "
            "ORDER BY count(*), tmdb_id LIMIT 1"
        )[0]
        history = await page(client, f"/movies?movie={movie}")
    mine = dict(site.sql("SELECT run_id, position FROM movie_snapshots WHERE tmdb_id = :m AND list_name = 'now_playing'",
                         {"m": movie}))  # fmt: skip
    span = [run for run in lists if min(mine) <= run <= max(mine)]
    rows = [
        (int(r["data-run-id"]), int(r["data-rank"]) if r["data-rank"] else None) for r in history.table("history-table")
    ]
    assert rows == [(run, mine.get(run)) for run in reversed(span)]
    assert next(e for e in history.elements if e.attrs.get("id") == "chosen-movie").attrs["data-tmdb-id"] == str(movie)


# --- hostile text ---------------------------------------------------------------------------------------------------


async def test_hostile_text_is_escaped_in_html_svg_and_json(site: Site, aiohttp_client: Any) -> None:
    hostile = dict(site.sql("SELECT title, min(tmdb_id) FROM movies WHERE title IN (:a, :b) GROUP BY title",
                            {"a": HOSTILE_TITLES[0], "b": HOSTILE_TITLES[1]}))  # fmt: skip
    assert set(hostile) == set(HOSTILE_TITLES)  # stored as the API sent them
    raw = [*HOSTILE_TITLES, HOSTILE_OVERVIEW, HOSTILE_STATION, HOSTILE_ERROR, HOSTILE_REASON, "<i>통신장애</i>"]
    async with client_for(site, aiohttp_client) as client:
        pages = {
            "/": await page(client, "/"),
            "/movies": await page(client, "/movies"),
            "movie": await page(client, f"/movies?movie={hostile[HOSTILE_TITLES[1]]}"),
            "station": await page(client, f"/air?station={quote(HOSTILE_STATION)}"),
            "/air": await page(client, "/air"),
        }
    for found in pages.values():
        for text in raw:
            assert text not in found.html
        assert not any(e.tag in ("script", "img", "svg") and e.attrs.get("onload") is not None for e in found.elements)
    # shown as text: in the ranking table, the chart's <text> and <title>, the JSON block of the script
    movies = pages["/movies"]
    cells = [e.text for e in movies.elements if e.tag == "a" and e.attrs.get("href", "").startswith("/movies?movie=")]
    assert set(HOSTILE_TITLES) <= set(cells)
    chart = svg_of(movies, "ranking")
    for title in HOSTILE_TITLES:
        escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert escaped in chart
    texts = " ".join(e.text for e in movies.elements if e.tag in ("text", "title"))
    assert all(title in texts for title in HOSTILE_TITLES)
    block = movies.data_blocks()["ranking"]
    assert all(any(title in line for line in block.values()) for title in HOSTILE_TITLES)
    movie = pages["movie"]
    assert HOSTILE_OVERVIEW in " ".join(e.text for e in movie.elements if e.attrs.get("class") == "overview")
    assert any(HOSTILE_TITLES[1] in line for line in movie.data_blocks()["movie-popularity"].values())
    # a hostile station: in the picker, its heading, the stations table, its chart and its JSON
    station = pages["station"]
    assert (
        next(e for e in station.elements if e.attrs.get("id") == "chosen-station").attrs["data-station"]
        == HOSTILE_STATION
    )
    assert HOSTILE_STATION in [e.attrs["value"] for e in station.elements if e.tag == "option"]
    assert any(HOSTILE_STATION in line for line in station.data_blocks()["hours-pm10"].values())
    assert "<i>통신장애</i>" in " ".join(r.text for r in station.rows["hours-table"])
    link = next(e for e in pages["/air"].elements if e.tag == "a" and e.text == HOSTILE_STATION)
    assert link.attrs["href"] == f"/air?station={quote(HOSTILE_STATION, safe='')}#station"
    # a run's error and a reject's reason on the Collection view
    collection = " ".join(e.text for e in pages["/"].elements if e.tag == "td")
    assert HOSTILE_ERROR in collection and HOSTILE_REASON in collection


# --- parameters, files, an empty database ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [("/air?station=nosuch", "bad request: station: no station named 'nosuch'"),
     ("/air?station=" + quote("a\nb<script>" + "x" * 80), "bad request: station: no station named 'a?b<script>xxxx"),
     ("/air?station=a&station=b", "bad request: station: give it once, not 2 times"),
     ("/movies?movie=abc", "bad request: movie: 'abc' is not a positive TMDB id"),
     ("/movies?movie=-1", "bad request: movie: '-1' is not a positive TMDB id"),
     ("/movies?movie=0", "bad request: movie: '0' is not a positive TMDB id"),
     ("/movies?movie=1.5", "bad request: movie: '1.5' is not a positive TMDB id"),
     ("/movies?movie=99999999999", "bad request: movie: '99999999999' is not a positive TMDB id"),
     ("/movies?movie=2147483647", "bad request: movie: no movie with TMDB id 2147483647"),
     ("/movies?movie=1&movie=2", "bad request: movie: give it once, not 2 times")],
)  # fmt: skip
async def test_bad_parameters_are_one_line_400s(site: Site, aiohttp_client: Any, target: str, message: str) -> None:
    async with client_for(site, aiohttp_client) as client:
        response = await client.get(target)
        text = await response.text()
    assert response.status == 400, text
    assert text.count("\n") == 1 and text.startswith(message), text
    assert len(text) < 120 and "Traceback" not in text
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.backends("sqlite")
async def test_static_files_and_nothing_else(db_url: str, aiohttp_client: Any) -> None:
    await migrate(db_url)
    engine = read_only_engine(db_url)
    try:
        client = await aiohttp_client(create_app(settings_for(db_url), engine))
        for name, kind in (("dashboard.css", "text/css"), ("dashboard.js", "text/javascript"),
                           ("favicon.svg", "image/svg+xml")):  # fmt: skip
            response = await client.get(f"/static/{name}")
            body = await response.read()
            assert response.status == 200 and response.content_type == kind and body
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert body == (Path(grades.__file__).parent / "static" / name).read_bytes()
        for target in ("/static/nosuch.js", "/static/..%2Fapp.py", "/static/%2E%2E/app.py", "/static/"):
            response = await client.get(target)
            assert response.status == 404, target
        js = await (await client.get("/static/dashboard.js")).text()
        assert "innerHTML" not in js and "eval(" not in js and "http" not in js
    finally:
        await engine.dispose()


async def test_an_empty_database_renders_every_view(db_url: str, aiohttp_client: Any) -> None:
    await migrate(db_url)
    engine = read_only_engine(db_url)
    try:
        client = await aiohttp_client(create_app(settings_for(db_url), engine))
        for target in ("/", "/air", "/movies"):
            found = await page(client, target)
            assert 'class="empty"' in found.html
        response = await client.get("/air?station=" + quote(WATCHED))
        assert response.status == 400
    finally:
        await engine.dispose()


def test_json_blocks_escape_what_html_and_javascript_give_meaning() -> None:
    from pipeline.web.dashboard import json_for_script

    value = {"t": "</script><script>alert(1)</script><!-- & \u2028\u2029 'q' \"d\""}
    text = str(json_for_script(value))
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert "\\u003c/script\\u003e" in text and "\\u2028" in text and "\\u0026" in text
    assert json.loads(text) == value


def test_kst_day_of_a_date_helper() -> None:
    # the heatmap's last day is the KST day of the newest published hour: 24:00 belongs to the day it ends
    assert hour_slot(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))[0] == date(2026, 11, 27)
    assert hour_slot(datetime(2026, 11, 27, 16, 0, tzinfo=UTC))[0] == date(2026, 11, 28)


async def add_run(url: str, job: str, status: str, started_at: datetime) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(runs).values(
                job=job, trigger="schedule", started_at=started_at, status=status, requests=1, rows_fetched=0,
                rows_upserted=0, rows_rejected=0, finished_at=None if status == "running" else started_at))  # fmt: skip
    finally:
        await engine.dispose()


async def test_the_job_states_follow_every_run_that_starts_or_finishes(db_url: str, aiohttp_client: Any) -> None:
    """The jobs' states are collect_status's at every request: a run that starts or finishes shows at once."""
    await migrate(db_url)
    engine = read_only_engine(db_url)
    try:
        client = await aiohttp_client(create_app(settings_for(db_url), engine))

        async def states() -> dict[str, tuple[str, bool]]:
            found = await page(client, "/")
            return {r.attrs["data-job"]: (r.attrs["data-state"], "running" in r.text) for r in found.rows["jobs-table"]}

        assert (await states())["tmdb"] == ("STALE", False)
        now = datetime.now(UTC)
        await add_run(db_url, "tmdb", "running", now - timedelta(minutes=2))
        assert (await states())["tmdb"] == ("STALE", True)
        await add_run(db_url, "tmdb", "success", now - timedelta(minutes=1))
        assert (await states())["tmdb"] == ("fresh", True)  # the first run is still running
        report = await collect_status(settings_for(db_url))
        assert {j.job: j.state for j in report.jobs} == {job: s for job, (s, _r) in (await states()).items()}
    finally:
        await engine.dispose()
