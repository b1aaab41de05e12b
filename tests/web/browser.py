"""The machinery of the real-browser tests (``tests/web/test_browser.py``).

1. The browser is Debian's ``chromium`` (``make browser`` installs it with ``fonts-noto-cjk``), driven by
   Playwright's Python package through ``executable_path``: Playwright's own browser download fails on a
   closed network, and the system build is what CI installs anyway. Missing, the tests fail under ``CI``
   and are skipped with the reason elsewhere (:func:`require_browser`).
2. Nothing leaves 127.0.0.1: Chromium's background services are off, its resolver answers NOTFOUND for
   every host but 127.0.0.1, and each context aborts any request to another host (and the test fails,
   :class:`PageWatch`).
3. The database is filled by simulated cycles at fixed clocks (:func:`fill_database`), so its numbers are
   the same on every run; the app is the real one, on a free port, in a thread with its own event loop
   (:class:`LoopThread`, :func:`serve`), reading through the read-only engine as ``pipeline serve`` does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from pipeline.config import Settings, parse_settings
from pipeline.offline import simulated
from pipeline.runner import run_once
from pipeline.simulator import SimulatorState

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "chromium"  # Debian's package: /usr/bin/chromium
CJK_FONT = "Noto Sans CJK"  # fonts-noto-cjk: the font that draws Hangul
INSTALL_HINT = "run 'make browser' as root (apt-get install chromium fonts-noto-cjk)"
TIMEOUT_MS = 30_000  # generous: a shared 2-core machine may be slow; nothing waits this long when all is well
LOOPBACK = "127.0.0.1"

#: Chromium's flags: headless as root in a container, and nothing that reaches for the network on its own
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {LOOPBACK}",
]

#: the clocks of the simulated cycles: two days apart, then three hours apart, for history on every page
#: (the last is tests/e2e's FIXED: 09:30 KST)
CLOCKS = (
    datetime(2026, 11, 26, 0, 30, tzinfo=UTC),
    datetime(2026, 11, 27, 21, 30, tzinfo=UTC),
    datetime(2026, 11, 28, 0, 30, tzinfo=UTC),
)

#: movie titles that are markup: the pages must show them as text, and run none of them
HOSTILE_TITLES = (
    "<script>window.__pwned=1</script>",
    '</script><img src=x onerror="window.__pwned=2">',
)


# --- the browser ---------------------------------------------------------------------------------------------


def chromium_path() -> str | None:
    return shutil.which(CHROMIUM)


def has_cjk_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    listed = subprocess.run(["fc-list"], capture_output=True, text=True, timeout=60, check=False).stdout
    return CJK_FONT.lower() in listed.lower()


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if chromium_path() is None:
        return f"no '{CHROMIUM}' on PATH: {INSTALL_HINT}"
    if not has_cjk_font():
        return f"fc-list knows no '{CJK_FONT}' font: {INSTALL_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: pip install -e '.[dev]'"
    return None


def require_browser() -> None:
    """Skip with the reason when the browser is missing, except under ``CI``, where that is a failure."""
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI requires the browser tests to run: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


def artifacts_dir() -> Path:
    """Where screenshots go: ``$PIPELINE_TEST_ARTIFACTS``, else ``<repo>/test-artifacts/browser/``."""
    path = Path(os.environ.get("PIPELINE_TEST_ARTIFACTS") or REPO / "test-artifacts" / "browser")
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- an event loop of its own, for the server --------------------------------------------------------------


class LoopThread:
    """An asyncio loop running in a daemon thread; :meth:`run` hands it a coroutine and waits for the result.

    The browser is driven synchronously from the test's thread while the app answers from this one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="browser-tests-server", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *_exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=60)


# --- the database --------------------------------------------------------------------------------------------


def settings_for(db: Path) -> Settings:
    """Two now-playing pages (40 movies) keep the cycles short; a watch-listed station gets a 24 h series."""
    return parse_settings(
        {"database": {"url": f"sqlite+aiosqlite:///{db}"},
         "sources": {"tmdb": {"rate_limit": 40, "max_pages": 2},
                     "airkorea": {"rate_limit": 50, "stations": ["종로구"]}}}
    )  # fmt: skip


async def fill_database(settings: Settings) -> None:
    """One simulated cycle per clock of :data:`CLOCKS`, each asserted successful."""
    for clock in CLOCKS:
        async with simulated(settings, SimulatorState(clock=clock)) as (local, secrets, _sim):
            report, _counts = await run_once(local, secrets)
        assert report.status == "success", (clock, report)


def sqlite_file(settings: Settings) -> Path:
    return Path(settings.database.url.split("///", 1)[1])


def query(settings: Settings, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """The oracle: plain SQL on the database the app reads (read-only)."""
    with sqlite3.connect(f"file:{sqlite_file(settings)}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


def plant_hostile_titles(settings: Settings) -> list[int]:
    """Give the two best-ranked movies of the newest snapshot a title of :data:`HOSTILE_TITLES` (the rows the
    pages show first), with a writable connection, as a hostile upstream would have it stored; their ids."""
    newest = "SELECT max(run_id) FROM movie_snapshots WHERE list_name = 'now_playing'"
    ids = [
        row[0]
        for row in query(
            settings,
            f"SELECT tmdb_id FROM movie_snapshots WHERE run_id = ({newest}) ORDER BY position LIMIT ?",
            len(HOSTILE_TITLES),
        )
    ]
    assert len(ids) == len(HOSTILE_TITLES)
    with sqlite3.connect(sqlite_file(settings)) as conn:
        for tmdb_id, title in zip(ids, HOSTILE_TITLES, strict=True):
            conn.execute("UPDATE movies SET title = ?, original_title = ? WHERE tmdb_id = ?", (title, title, tmdb_id))
    return ids


#: a reject whose reason is markup (reasons quote the raw value): the Collection view must show it as text
HOSTILE_REASON = '<img src=x onerror="window.__pwned=3">'
#: rejects as the transforms word them, with the run that met them (the newest): (source, reason, count)
REJECTS = (
    ("airkorea", "pm10Value: negative concentration: '-7'", 3),
    ("tmdb", "vote_average: not a number: 'NaN'", 1),
    ("airkorea", HOSTILE_REASON, 1),
)


def plant_rejects(settings: Settings) -> None:
    """Rejects of the newest run, written now (the Collection view shows the last 7 days')."""
    ((run_id,),) = query(settings, "SELECT max(id) FROM runs")
    created = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    with sqlite3.connect(sqlite_file(settings)) as conn:
        for source, reason, count in REJECTS:
            conn.executemany(
                "INSERT INTO rejects (run_id, source, reason, record, created_at) VALUES (?, ?, ?, ?, ?)",
                [(run_id, source, reason, '{"value": "-"}', created)] * count,
            )


# --- the server ----------------------------------------------------------------------------------------------


@dataclass
class Served:
    settings: Settings
    base_url: str  # http://127.0.0.1:PORT
    engine: Any  # the app's read-only AsyncEngine
    loop: LoopThread

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def serve(settings: Settings, loop: LoopThread) -> Iterator[Served]:
    """The real app on 127.0.0.1 and a free port, reading ``settings``' database through the read-only engine."""
    from pipeline.web.app import bound_port, create_app, start
    from pipeline.web.database import read_only_engine

    engine = read_only_engine(settings.database.url)

    async def up() -> Any:
        return await start(create_app(settings, engine), LOOPBACK, 0)

    runner = loop.run(up(), timeout=60)
    try:
        yield Served(settings, f"http://{LOOPBACK}:{bound_port(runner)}", engine, loop)
    finally:

        async def down() -> None:
            await runner.cleanup()
            await engine.dispose()

        loop.run(down(), timeout=60)


# --- what a page does ----------------------------------------------------------------------------------------

#: registered before any script of the page runs (CDP, outside the page's CSP): CSP violations, as events
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def is_local(url: str, origin: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "ws", "wss") and f"{parts.scheme}://{parts.netloc}" == origin


@dataclass
class PageWatch:
    """Everything a page reported or asked for: console errors, uncaught errors, CSP violations (console and
    ``securitypolicyviolation``), dialogs, requests and their failures."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    bad_status: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfailed", lambda request: self.failed.append(f"{request.url}: {request.failure}"))
        page.on("response", self._response)
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.bad_status.append(f"{response.status} {response.url}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_clean(self, page: Any, *, javascript: bool = True) -> None:
        foreign = [url for url in self.requests if not is_local(url, self.origin)]
        assert foreign == [], f"requests that leave {self.origin}: {foreign}"
        assert self.page_errors == [], f"uncaught errors: {self.page_errors}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        if javascript:
            caught = page.evaluate("window.__cspViolations")
            assert caught == [], f"CSP violations: {caught}"
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.bad_status == [], f"error answers: {self.bad_status}"


def guard_context(context: Any, origin: str) -> None:
    """Abort any request to another origin (the watch still records it, so the test fails on it)."""
    context.route(lambda url: not is_local(url, origin), lambda route: route.abort("blockedbyclient"))
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)


@dataclass
class Opened:
    page: Any
    watch: PageWatch
    response: Any  # the document's
    javascript: bool

    def assert_clean(self) -> None:
        self.watch.assert_clean(self.page, javascript=self.javascript)


@contextmanager
def open_page(browser: Any, served: Served, path: str, *, javascript: bool = True) -> Iterator[Opened]:
    """``path`` loaded in a fresh context of ``browser`` (JavaScript on or off), watched from the first request."""
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 900})
    try:
        guard_context(context, served.base_url)
        if javascript:
            context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        watch = PageWatch(served.base_url)
        watch.attach(page)
        response = page.goto(served.url(path), wait_until="load")
        assert response is not None, path
        yield Opened(page, watch, response, javascript)
    finally:
        context.close()
