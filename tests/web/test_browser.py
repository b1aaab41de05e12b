"""The dashboard in a real browser: headless Debian Chromium, driven by Playwright (machinery: ``browser.py``).

The database holds three simulated cycles at fixed clocks, two hostile movie titles and a few rejects (one of
them hostile); the real app serves it on 127.0.0.1. Each view (``/``, ``/air``, ``/air?station=``,
``/movies``, ``/movies?movie=``) is loaded with JavaScript on and off; every time:

* no console error, no uncaught error, no CSP violation, no dialog, no failed or error answer, and every
  request goes to the app on 127.0.0.1 (anything else is aborted and fails the test);
* the numbers in its tables, read from the DOM as shown, equal plain SQL on the database (or, for job
  states, completeness and quota, :func:`pipeline.status.collect_status`, the rule the page promises);
* with JavaScript on, a full-page screenshot goes to ``$PIPELINE_TEST_ARTIFACTS`` (default
  ``test-artifacts/browser/``).

Besides: Hangul is drawn with a CJK font (the fonts Chromium used for the text, asked over CDP), and the
hostile strings are shown as text, in tables, headings, charts and the script's readout, and never run.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from pipeline.status import StatusReport, collect_status
from pipeline.transform.common import KST
from pipeline.web import grades
from pipeline.web.app import CONTENT_SECURITY_POLICY
from tests.web.browser import (
    CJK_FONT,
    HOSTILE_REASON,
    HOSTILE_TITLES,
    LAUNCH_ARGS,
    REJECTS,
    TIMEOUT_MS,
    LoopThread,
    Opened,
    Served,
    artifacts_dir,
    chromium_path,
    fill_database,
    open_page,
    plant_hostile_titles,
    plant_rejects,
    query,
    require_browser,
    serve,
    settings_for,
)

pytestmark = pytest.mark.slow

HOUR = timedelta(hours=1)
NOW_PLAYING = "SELECT max(run_id) FROM movie_snapshots WHERE list_name = 'now_playing'"


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, once for the module (each test opens its own context)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=LAUNCH_ARGS, headless=True, timeout=TIMEOUT_MS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Site:
    served: Served
    hostile_ids: list[int]  # the movies whose titles are HOSTILE_TITLES (ranks 1 and 2)
    station: str  # the station with the most readings: a series of 30 days
    movie: int  # a movie that a list run between its first and its last did not list

    def status(self) -> StatusReport:
        return self.served.loop.run(collect_status(self.served.settings, engine=self.served.engine))

    def sql(self, text: str, *params: object) -> list[tuple[Any, ...]]:
        return query(self.served.settings, text, *params)


@pytest.fixture(scope="module")
def site(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = settings_for(tmp_path_factory.mktemp("browser") / "p.db")
    with LoopThread() as loop:
        loop.run(fill_database(settings))
        hostile = plant_hostile_titles(settings)
        plant_rejects(settings)
        ((station,),) = query(
            settings, "SELECT station_name FROM air_readings GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        )
        # a movie listed by the first and the last list run, not by one between: its history has a gap
        gaps = query(
            settings,
            "SELECT tmdb_id FROM movie_snapshots WHERE list_name = 'now_playing' GROUP BY 1 HAVING count(*) < "
            "(SELECT count(DISTINCT run_id) FROM movie_snapshots WHERE list_name = 'now_playing') "
            f"AND max(run_id) = ({NOW_PLAYING}) AND min(run_id) = (SELECT min(run_id) FROM movie_snapshots) "
            "ORDER BY 1 LIMIT 1",
        )
        assert gaps, "no movie left the now-playing list and came back: the clocks of CLOCKS no longer show one"
        with serve(settings, loop) as served:
            yield Site(served, hostile, station, gaps[0][0])


# --- reading the page ----------------------------------------------------------------------------------------

#: each row of a table as the reader sees it: its data attributes and, per cell, the text and its parts
ROWS_JS = """
(selector) => JSON.stringify(Array.from(document.querySelectorAll(selector)).map((row) => ({
  data: Object.assign({}, row.dataset),
  className: row.className,
  cells: Array.from(row.cells).map((cell) => {
    const part = (name) => { const el = cell.querySelector(name); return el ? el.textContent.trim() : null; };
    const grade = cell.querySelector(".grade");
    return {
      data: Object.assign({}, cell.dataset),
      text: cell.textContent.replace(/\\s+/g, " ").trim(),
      value: part(".value"), grade: part(".grade"), gradeClass: grade ? grade.className : null,
      flag: part(".flag"), count: part(".count"),
      link: cell.querySelector("a") ? cell.querySelector("a").getAttribute("href") : null,
    };
  }),
})))
"""


def rows(page: Any, selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(page.evaluate(ROWS_JS, selector))  # one string: fast to carry
    return found


def number(text: str | None) -> float | None:
    """A figure as the page prints it (thousands separators, ``—`` for none)."""
    if text is None:
        return None
    text = text.strip()
    if text in ("", "—"):
        return None
    return float(text.replace(",", ""))


def whole(text: str | None) -> int | None:
    found = number(text)
    return None if found is None else int(found)


def utc(text: str | None) -> datetime | None:
    """A time as SQLite holds it (naive UTC text)."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def kst(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "—" if moment is None else moment.astimezone(KST).strftime(fmt)


def sql_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def close(shown: float | None, exact: float | None, digits: int) -> bool:
    """Whether ``shown`` is ``exact`` printed with ``digits`` decimals."""
    if shown is None or exact is None:
        return shown is exact
    return abs(shown - exact) <= 0.5 * 10**-digits + 1e-9


def assert_graded(cell: dict[str, Any], pollutant: grades.Pollutant, value: float | None, flag: str | None,
                  digits: int = 0, where: str = "") -> None:  # fmt: skip
    """A value cell: the number, the Korean grade word of its band (and the band's class), the flag."""
    assert close(number(cell["value"]), value, digits), (where, pollutant, cell, value)
    band = grades.band(pollutant, value)
    if band is None:
        assert cell["grade"] is None, (where, cell)
    else:
        assert cell["grade"] == band.word and band.css in cell["gradeClass"].split(), (where, cell, band)
    assert cell["flag"] == flag, (where, cell, flag)
    if value is None and flag is None:
        assert cell["text"] == "—", (where, cell)


# --- the oracles and the checks, one per view ----------------------------------------------------------------


def newest_per_station(site: Site) -> dict[str, tuple[Any, ...]]:
    found = site.sql(
        "SELECT s.station_name, s.sido_name, s.mang_name, r.measured_at, r.pm10, r.pm25, r.pm10_flag, r.pm25_flag "
        "FROM air_stations s LEFT JOIN air_readings r ON r.station_name = s.station_name "
        "AND r.measured_at = (SELECT max(x.measured_at) FROM air_readings x WHERE x.station_name = s.station_name)"
    )
    return {row[0]: row for row in found}


def check_collection(page: Any, site: Site) -> None:
    report = site.status()
    # jobs: the state and last status collect_status gives (the words of `pipeline status` and /healthz)
    jobs = {
        r["data"]["job"]: (r["cells"][1]["text"].split()[0], r["cells"][3]["text"])
        for r in rows(page, "#jobs-table tbody tr")
    }
    assert jobs == {j.job: (j.state, j.last_status or "—") for j in report.jobs}
    assert {j.state for j in report.jobs} == {"fresh"}  # the cycles ran just now, with every source
    # the last runs
    shown = [
        (whole(c[0]["text"]), c[1]["text"], c[2]["text"], c[3]["text"], c[4]["text"], whole(c[6]["text"]),
         whole(c[7]["text"]), whole(c[8]["text"]), whole(c[9]["text"]))
        for c in (r["cells"] for r in rows(page, "#runs-table tbody tr"))
    ]  # fmt: skip
    expected = [
        (i, job, trigger, kst(utc(started), "%Y-%m-%d %H:%M:%S"), status, requests, fetched, upserted, rejected)
        for i, job, trigger, started, status, requests, fetched, upserted, rejected in site.sql(
            "SELECT id, job, trigger, started_at, status, requests, rows_fetched, rows_upserted, rows_rejected "
            "FROM runs ORDER BY id DESC LIMIT 20"
        )
    ]
    assert shown == expected and len(shown) == 3
    # today's quota per operation: calls as api_calls counts them, the limit and what is left
    today = datetime.now(UTC).astimezone(KST).date().isoformat()
    calls = dict(site.sql("SELECT operation, calls FROM api_calls WHERE kst_date = ?", today))
    quota = {
        r["data"]["operation"]: (
            int(r["data"]["calls"]),
            int(r["data"]["limit"]),
            whole(r["cells"][2]["text"].split()[0]),
        )
        for r in rows(page, "#quota tbody tr")
    }
    assert quota == {u.operation: (calls.get(u.operation, 0), u.limit, u.left) for u in report.quota}
    assert quota  # AirKorea is enabled: its operations are listed
    # the storage card: responses archived in the last 24 hours, revisions of the last 7 days
    card_data = {k: v for r in rows(page, "#storage tr") for c in r["cells"] for k, v in c["data"].items()}
    since_day = sql_time(datetime.now(UTC) - timedelta(hours=24))
    since_week = sql_time(datetime.now(UTC) - timedelta(days=7))
    archived = site.sql("SELECT count(*) FROM raw_responses WHERE fetched_at >= ?", since_day)[0][0]
    revised = site.sql("SELECT count(*) FROM air_reading_revisions WHERE revised_at >= ?", since_week)[0][0]
    assert int(card_data["archiveResponses"]) == archived > 0
    assert int(card_data["revisions-7d"]) == revised
    assert int(card_data["bytes"]) > 0
    # the completeness of the last 24 published hours
    c = report.completeness
    assert c is not None
    card = {r["cells"][0]["text"]: whole(r["cells"][1]["text"]) for r in rows(page, "#completeness-24h tr")[1:]}
    assert card == {"station-hours expected": c.expected, "received": c.received, "flagged (no value)": c.flagged,
                    "never published": c.unpublished, "missing": c.missing}  # fmt: skip
    big = page.locator("#completeness-24h .big").text_content()
    assert close(number(big.removesuffix("%")), 100 * c.completeness, 2), big
    # the heatmap's table: per province and KST day, as the air_completeness view counts it
    newest = utc(site.sql("SELECT max(measured_at) FROM air_published_hours")[0][0])
    assert newest is not None
    last = (newest.astimezone(KST) - HOUR).date()
    first = last - timedelta(days=13)
    ledger = {
        (sido or "?", day): (held, published)
        for sido, day, held, published in site.sql(
            "SELECT sido_name, kst_date, sum(received + flagged), sum(expected - not_published) FROM air_completeness "
            "WHERE kst_date BETWEEN ? AND ? GROUP BY 1, 2",
            first.isoformat(),
            last.isoformat(),
        )
    }
    heatmap = rows(page, "#heatmap-table tbody tr")
    assert {r["data"]["sido"] for r in heatmap} == {sido for sido, _day in ledger}
    for r in heatmap:
        for cell, day in zip(r["cells"][1:], (first + timedelta(days=i) for i in range(14)), strict=True):
            held, published = ledger.get((r["data"]["sido"], day.isoformat()), (0, 0))
            percent = 100 * held / published if published else None
            assert close(number(cell["text"]), percent, 1), (r["data"]["sido"], day, cell, held, published)
    # the rejects by reason
    shown_rejects = sorted(
        (c[0]["text"], c[1]["text"], whole(c[2]["text"]))
        for c in (r["cells"] for r in rows(page, "#rejects-table tbody tr"))
    )
    assert shown_rejects == sorted(site.sql("SELECT source, reason, count(*) FROM rejects GROUP BY 1, 2"))
    assert shown_rejects == sorted(REJECTS)


def check_air(page: Any, site: Site, chosen: str | None = None) -> None:
    newest = newest_per_station(site)
    # every station, with its newest reading as SQL finds it
    stations = rows(page, "#stations-table tbody tr")
    assert len(stations) == len(newest) > 600
    for r in stations:
        name = r["data"]["station"]
        _name, sido, mang, measured_at, pm10, pm25, pm10_flag, pm25_flag = newest[name]
        cells = r["cells"]
        assert [c["text"] for c in cells[:4]] == [sido or "—", name, mang or "", kst(utc(measured_at))], r
        assert cells[1]["link"] == f"/air?station={quote(name)}#station"
        assert_graded(cells[4], "pm10", pm10, pm10_flag, where=name)
        assert_graded(cells[5], "pm25", pm25, pm25_flag, where=name)
    # per province: the mean of its stations at its newest hour
    by_sido: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in newest.values():
        by_sido[row[1] or "?"].append(row)
    provinces = rows(page, "#provinces-table tbody tr")
    assert {r["data"]["sido"] for r in provinces} == set(by_sido)
    for r in provinces:
        members = by_sido[r["data"]["sido"]]
        hour = max(row[3] for row in members if row[3] is not None)
        current = [row for row in members if row[3] == hour]
        assert r["cells"][1]["text"] == kst(utc(hour))
        assert r["cells"][2]["text"] == f"{len(current)} of {len(members)}"
        for index, pollutant, column in ((3, "pm10", 4), (4, "pm25", 5)):
            values = [row[column] for row in current if row[column] is not None]
            mean = sum(values) / len(values) if values else None
            assert_graded(r["cells"][index], pollutant, mean, None, digits=1, where=r["data"]["sido"])
            assert r["cells"][index]["count"] == f"({len(values)})"
    # the station shown: the one asked for, else the first of the watch-list
    chosen = chosen or site.served.settings.sources.airkorea.stations[0]
    assert page.locator("#chosen-station").get_attribute("data-station") == chosen
    assert page.locator("#station-select").input_value() == chosen
    check_station_series(page, site, chosen)


def check_station_series(page: Any, site: Site, station: str) -> None:
    """The station's last 24 hours (to the newest published hour, or its own newer one) and 30 KST days."""
    published = utc(site.sql("SELECT max(measured_at) FROM air_published_hours")[0][0])
    own = utc(site.sql("SELECT max(measured_at) FROM air_readings WHERE station_name = ?", station)[0][0])
    assert published is not None and own is not None
    end = max(published, own)
    first = end - 23 * HOUR
    held = {
        utc(at): values
        for at, *values in site.sql(
            "SELECT measured_at, pm10, pm25, pm10_flag, pm25_flag FROM air_readings "
            "WHERE station_name = ? AND measured_at BETWEEN ? AND ?",
            station,
            sql_time(first),
            sql_time(end),
        )
    }
    hours = rows(page, "#hours-table tbody tr")
    assert [r["cells"][0]["text"] for r in hours] == [kst(end - k * HOUR) for k in range(24)]
    for r in hours:
        at = datetime.fromisoformat(r["data"]["measuredAt"])
        reading = held.get(at)
        if reading is None:
            assert r["cells"][3]["text"] == "missing" and r["cells"][1]["text"] == r["cells"][2]["text"] == "—", r
            continue
        pm10, pm25, pm10_flag, pm25_flag = reading
        assert_graded(r["cells"][1], "pm10", pm10, pm10_flag, where=f"{station} {at}")
        assert_graded(r["cells"][2], "pm25", pm25, pm25_flag, where=f"{station} {at}")
        assert r["cells"][3]["text"] == ("flagged" if pm10_flag or pm25_flag else "ok"), r
    assert len(held) >= 12, "the station's series is too thin to test"
    # daily means of the last 30 KST days: a reading's day is the KST date of its hour's start
    last_day = (end.astimezone(KST) - HOUR).date()
    first_day = last_day - timedelta(days=29)
    daily = {
        date.fromisoformat(day): rest
        for day, *rest in site.sql(
            "SELECT date(measured_at, '+8 hours') AS day, count(*), avg(pm10), max(pm10), count(pm10), avg(pm25), "
            "max(pm25), count(pm25) FROM air_readings WHERE station_name = ? GROUP BY day HAVING day BETWEEN ? AND ?",
            station,
            first_day.isoformat(),
            last_day.isoformat(),
        )
    }
    days = rows(page, "#days-table tbody tr")
    assert [r["cells"][0]["text"] for r in days] == [(last_day - timedelta(days=k)).isoformat() for k in range(30)]
    for r in days:
        day = date.fromisoformat(r["cells"][0]["text"])
        none = (0, None, None, 0, None, None, 0)
        count, pm10_mean, pm10_max, pm10_hours, pm25_mean, pm25_max, pm25_hours = daily.get(day, none)
        cells = r["cells"]
        assert whole(cells[1]["text"]) == count, (day, r)
        assert_graded(cells[2], "pm10", pm10_mean, None, digits=1, where=f"{station} {day}")
        assert (whole(cells[3]["text"]), whole(cells[4]["text"])) == (pm10_max, pm10_hours), (day, r)
        assert_graded(cells[5], "pm25", pm25_mean, None, digits=1, where=f"{station} {day}")
        assert (whole(cells[6]["text"]), whole(cells[7]["text"])) == (pm25_max, pm25_hours), (day, r)
    assert sum(1 for d in daily.values() if d[0]) >= 3


def check_station(page: Any, site: Site) -> None:
    check_air(page, site, chosen=site.station)


def check_movies(page: Any, site: Site, chosen: int | None = None) -> None:
    ((run_id,),) = site.sql(NOW_PLAYING)
    expected = [
        (position, tmdb_id, title or "—", original or "", popularity, vote_average, votes, released or "—")
        for position, tmdb_id, title, original, popularity, vote_average, votes, released in site.sql(
            "SELECT s.position, s.tmdb_id, m.title, m.original_title, s.popularity, s.vote_average, s.vote_count, "
            "coalesce(s.release_date, m.release_date) FROM movie_snapshots s JOIN movies m ON m.tmdb_id = s.tmdb_id "
            "WHERE s.run_id = ? AND s.list_name = 'now_playing' ORDER BY s.position, s.tmdb_id",
            run_id,
        )
    ]
    ranking = rows(page, "#ranking-table tbody tr")
    assert len(ranking) == len(expected) > 20
    for r, want in zip(ranking, expected, strict=True):
        position, tmdb_id, title, original, popularity, vote_average, votes, released = want
        c = r["cells"]
        shown = (whole(c[0]["text"]), int(r["data"]["tmdbId"]), c[1]["text"], c[2]["text"], whole(c[5]["text"]))
        assert shown == (position, tmdb_id, title, original, votes) and c[6]["text"] == released, (r, want)
        assert close(number(c[3]["text"]), popularity, 3) and close(number(c[4]["text"]), vote_average, 1), (r, want)
        assert c[1]["link"] == f"/movies?movie={tmdb_id}#movie"
    assert f"list run {run_id}," in page.locator("#ranking h2").text_content()
    # the movie shown: the one asked for, else the top of the list; its history over the list runs
    chosen = chosen or expected[0][1]
    heading = page.locator("#chosen-movie")
    assert heading.get_attribute("data-tmdb-id") == str(chosen)
    ((title, original),) = site.sql("SELECT title, original_title FROM movies WHERE tmdb_id = ?", chosen)
    assert heading.text_content().startswith(title or "—")
    check_history(page, site, chosen)


def check_history(page: Any, site: Site, tmdb_id: int) -> None:
    """Every now-playing run from the movie's first to its last: its snapshot, or "not listed"."""
    seen = {
        run: (position, popularity, vote_average, votes)
        for run, position, popularity, vote_average, votes in site.sql(
            "SELECT run_id, position, popularity, vote_average, vote_count FROM movie_snapshots "
            "WHERE tmdb_id = ? AND list_name = 'now_playing'",
            tmdb_id,
        )
    }
    runs = [
        run
        for (run,) in site.sql(
            "SELECT DISTINCT run_id FROM movie_snapshots WHERE list_name = 'now_playing' AND run_id BETWEEN ? AND ? "
            "ORDER BY run_id DESC",
            min(seen),
            max(seen),
        )
    ]
    history = rows(page, "#history-table tbody tr")
    assert [int(r["data"]["runId"]) for r in history] == runs
    for r in history:
        c = r["cells"]
        snapshot = seen.get(int(r["data"]["runId"]))
        if snapshot is None:
            assert c[2]["text"] == "not listed", r
            continue
        position, popularity, vote_average, votes = snapshot
        assert whole(c[2]["text"]) == position and whole(c[5]["text"]) == votes, r
        assert close(number(c[3]["text"]), popularity, 3) and close(number(c[4]["text"]), vote_average, 1), r


def check_movie(page: Any, site: Site) -> None:
    check_movies(page, site, chosen=site.movie)
    assert page.locator("#history-table tr.absent").count() >= 1  # the gap is shown, as a run that did not list it


VIEWS = {  # name → (path, check)
    "collection": ("/", check_collection),
    "air": ("/air", check_air),
    "station": ("/air?station={station}", check_station),
    "movies": ("/movies", check_movies),
    "movie": ("/movies?movie={movie}", check_movie),
}


def path_of(view: str, site: Site) -> str:
    return VIEWS[view][0].format(station=quote(site.station), movie=site.movie)


def assert_document(opened: Opened) -> None:
    response = opened.response
    assert response.status == 200, (response.url, response.status)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


# --- the tests -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", list(VIEWS))
def test_view_with_javascript(browser: Any, site: Site, view: str) -> None:
    """Loads clean (nothing but the app's own files, from 127.0.0.1), shows the database's numbers, and is
    saved as a full-page screenshot."""
    with open_page(browser, site.served, path_of(view, site)) as opened:
        assert_document(opened)
        VIEWS[view][1](opened.page, site)
        opened.assert_clean()
        paths = {urlsplit(url).path for url in opened.watch.requests}
        assert {"/static/dashboard.css", "/static/dashboard.js"} <= paths, paths
        assert opened.page.evaluate("document.styleSheets.length") >= 1
        opened.page.screenshot(path=artifacts_dir() / f"{view}.png", full_page=True, timeout=TIMEOUT_MS * 2)


@pytest.mark.parametrize("view", list(VIEWS))
def test_view_without_javascript(browser: Any, site: Site, view: str) -> None:
    """The same numbers in the same tables with JavaScript off: the script only enhances."""
    with open_page(browser, site.served, path_of(view, site), javascript=False) as opened:
        assert_document(opened)
        VIEWS[view][1](opened.page, site)
        opened.assert_clean()


HANGUL = re.compile("[\uac00-\ud7a3]")


def test_hangul_is_drawn_with_a_cjk_font(browser: Any, site: Site) -> None:
    """The glyphs of Korean text come from Noto Sans CJK (what Chromium used, per element, over CDP): no tofu."""
    with open_page(browser, site.served, path_of("station", site)) as opened:
        page = opened.page
        assert page.evaluate("getComputedStyle(document.documentElement).fontFamily").startswith('"Noto Sans CJK KR"')
        assert page.evaluate("document.fonts.check('15px \"Noto Sans CJK KR\"', '서울 좋음')")
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        selectors = [
            "#provinces-table tbody tr:first-child th",  # a province: 서울
            "#bands-table thead th .grade",  # a grade word: 좋음
            "#stations-table tbody tr:first-child td:nth-child(2) a",  # a station name
            "#chosen-station",  # the station asked for
        ]
        for selector in selectors:
            text = page.evaluate(
                "(s) => Array.from(document.querySelector(s).childNodes).filter((n) => n.nodeType === 3)"
                ".map((n) => n.textContent).join('')",
                selector,
            )
            hangul = len(HANGUL.findall(text))
            assert hangul > 0, (selector, text)
            node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
            fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
            cjk = sum(f["glyphCount"] for f in fonts if f["familyName"].startswith(CJK_FONT))
            assert cjk >= hangul, (selector, text, fonts)
            box = page.locator(selector).first.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0, (selector, box)
        opened.assert_clean()


def assert_not_run(opened: Opened) -> None:
    """Nothing of the hostile strings ran: no flag set, no dialog, no element or request they would make."""
    page = opened.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert opened.watch.dialogs == []
    assert page.evaluate("document.querySelectorAll('[onerror], img').length") == 0
    scripts = page.evaluate("Array.from(document.scripts).map((s) => [s.getAttribute('src'), s.type])")
    allowed = (["/static/dashboard.js", ""], [None, "application/json"])
    assert all(s in allowed for s in scripts), scripts
    assert [url for url in opened.watch.requests if urlsplit(url).path == "/x"] == []
    opened.assert_clean()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_hostile_titles_are_text_on_the_ranking(browser: Any, site: Site, javascript: bool) -> None:
    with open_page(browser, site.served, "/movies", javascript=javascript) as opened:
        page = opened.page
        for tmdb_id, title in zip(site.hostile_ids, HOSTILE_TITLES, strict=True):
            row = page.locator(f'#ranking-table tr[data-tmdb-id="{tmdb_id}"]')
            assert row.locator("td.title").all_text_contents() == [title, title]
            assert row.locator("td.title a").is_visible()
            option = page.locator(f'#movie-select option[value="{tmdb_id}"]').text_content()
            assert option.endswith(title), option
            bar = page.locator(f'svg[data-chart="ranking"] rect[data-key="{tmdb_id}"] title').text_content()
            assert title in bar, bar
        assert "<script>" in page.locator('svg[data-chart="ranking"]').text_content()
        heading = page.locator("#chosen-movie").text_content()  # the top of the list is shown by default
        assert heading.startswith(HOSTILE_TITLES[0]), heading
        if javascript:  # the script's readout writes the chart's JSON as text
            page.locator(f'svg[data-chart="ranking"] rect[data-key="{site.hostile_ids[1]}"]').hover()
            readout = page.locator('output[data-readout-for="ranking"]')
            assert HOSTILE_TITLES[1] in readout.text_content()
            assert readout.evaluate("(el) => el.children.length") == 0
            row = page.locator(f'#ranking-table tr[data-tmdb-id="{site.hostile_ids[1]}"]')
            assert row.get_attribute("class") == "highlight"  # the script tied the bar to its row
        assert_not_run(opened)


def test_hostile_title_is_text_on_its_movie_view(browser: Any, site: Site) -> None:
    tmdb_id, title = site.hostile_ids[1], HOSTILE_TITLES[1]
    with open_page(browser, site.served, f"/movies?movie={tmdb_id}") as opened:
        page = opened.page
        assert page.locator("#chosen-movie").text_content() == title  # original title the same: not repeated
        for chart in ("movie-popularity", "movie-rank"):
            assert page.locator(f'svg[data-chart="{chart}"] > title').text_content().startswith(title)
        page.locator('svg[data-chart="movie-rank"] [data-key]').first.hover()
        readout = page.locator('output[data-readout-for="movie-rank"]').text_content()
        assert readout.startswith(title), readout
        assert_not_run(opened)


def test_hostile_reject_reason_is_text(browser: Any, site: Site) -> None:
    with open_page(browser, site.served, "/") as opened:
        reasons = opened.page.locator("#rejects-table td.reason").all_text_contents()
        assert HOSTILE_REASON in reasons, reasons
        assert_not_run(opened)
