"""Every error class through the real CLI, against the simulator's fault knobs, with sentinel keys.

For each case: the run's outcome and exit code, the rows in the database (nothing lost, nothing duplicated),
the request count (no retry storms: auth and quota errors are sent once), the recorded error class, and zero
occurrences of either key — raw, percent-encoded or double-encoded — in stdout, stderr (logs) and every text
column of the database.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from pipeline.cli import main
from pipeline.load.archive import decompress
from pipeline.redaction import secret_forms
from pipeline.simulator import Simulator, SimulatorState
from pipeline.transform.common import KST

TMDB_KEY = "5e471ee1cafe0123456789abcdefbeef"  # v3 shape: it travels in the URL, the hardest case
DATA_GO_KEY = "SeNtInEl+KeY/0987654321zyxwvuTSRQ=="
NP, MOVIE, SIDO, STATION = "now_playing", "movie", "getCtprvnRltmMesureDnsty", "getMsrstnAcctoRltmMesureDnsty"


class ThreadedSimulator:
    """The simulator on its own loop in a thread, so the CLI can run its own ``asyncio.run`` here."""

    def __init__(self) -> None:
        self.state = SimulatorState(tmdb_api_key=TMDB_KEY, data_go_key=DATA_GO_KEY)
        self.loop = asyncio.new_event_loop()
        self.simulator = Simulator(self.state)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedSimulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.simulator.start(), self.loop).result(60)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.simulator.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[ThreadedSimulator]:
    with ThreadedSimulator() as threaded:
        yield threaded


@dataclass
class Case:
    name: str
    faults: list[dict[str, Any]]
    jobs: list[str]
    exit_code: int
    statuses: dict[str, str]  # job -> status
    requests: dict[str, int] = field(default_factory=dict)  # operation -> exact count (missing: not checked)
    error_class: dict[str, str] = field(default_factory=dict)
    complete: bool = True  # the jobs that succeeded wrote exactly the baseline rows
    timeout: float = 30.0  # seconds per request


CASES = [
    Case("tmdb 429 with Retry-After", [dict(operation=NP, kind="429", retry_after=1)], ["tmdb"], 0,
         {"tmdb": "success"}, {NP: 3}),
    Case("tmdb 429 without Retry-After", [dict(operation=NP, kind="429", times=2)], ["tmdb"], 0,
         {"tmdb": "success"}, {NP: 4}),
    Case("tmdb 500 on details", [dict(operation=MOVIE, kind="500", times=3)], ["tmdb"], 0, {"tmdb": "success"}),
    Case("tmdb 503 HTML page", [dict(operation=MOVIE, kind="503_html")], ["tmdb"], 0, {"tmdb": "success"}),
    Case("tmdb connection resets", [dict(operation=MOVIE, kind="reset", times=2)], ["tmdb"], 0, {"tmdb": "success"}),
    Case("tmdb truncated body", [dict(operation=NP, kind="truncated")], ["tmdb"], 0, {"tmdb": "success"}, {NP: 3}),
    Case("tmdb 504 HTML until attempts run out", [dict(operation=NP, kind="504_html", times=4)], ["tmdb"], 1,
         {"tmdb": "failed"}, {NP: 4, MOVIE: 0}, {"tmdb": "transient"}, complete=False),
    Case("tmdb wrong key", [dict(operation=NP, kind="401")], ["tmdb"], 1, {"tmdb": "failed"}, {NP: 1, MOVIE: 0},
         {"tmdb": "auth"}, complete=False),
    Case("airkorea gateway 05 XML", [dict(operation=SIDO, kind="gateway", code="05", times=2)], ["airkorea_sido"], 0,
         {"airkorea_sido": "success"}, {SIDO: 5}),
    Case("airkorea gateway 05 JSON", [dict(operation=STATION, kind="gateway", code="05", fmt="json")],
         ["airkorea_stations"], 0, {"airkorea_stations": "success"}, {STATION: 2}),
    Case("airkorea 429 and 5xx", [dict(operation=SIDO, kind="429"), dict(operation=SIDO, kind="500")],
         ["airkorea_sido"], 0, {"airkorea_sido": "success"}, {SIDO: 5}),
    Case("airkorea truncated and reset", [dict(operation=STATION, kind="truncated"),
                                          dict(operation=STATION, kind="reset", times=2)],
         ["airkorea_stations"], 0, {"airkorea_stations": "success"}),
    Case("airkorea key not registered (30)", [dict(operation=SIDO, kind="gateway", code="30")], ["airkorea_sido"],
         1, {"airkorea_sido": "failed"}, {SIDO: 1}, {"airkorea_sido": "auth"}, complete=False),
    Case("airkorea key not yet active (403)", [dict(operation=SIDO, kind="403")], ["airkorea_sido"], 1,
         {"airkorea_sido": "failed"}, {SIDO: 1}, {"airkorea_sido": "auth"}, complete=False),
    Case("airkorea quota (22)", [dict(operation=SIDO, kind="gateway", code="22", fmt="json")], ["airkorea_sido"],
         1, {"airkorea_sido": "failed"}, {SIDO: 1}, {"airkorea_sido": "quota"}, complete=False),
    Case("airkorea bad request (10) on one province", [dict(operation=SIDO, kind="gateway", code="10")],
         ["airkorea_sido"], 1, {"airkorea_sido": "failed"}, {SIDO: 3}, {"airkorea_sido": "bad_request"},
         complete=False),
    Case("tmdb timeout (slow response)", [dict(operation=NP, kind="slow", delay=3)], ["tmdb"], 0,
         {"tmdb": "success"}, {NP: 3}, timeout=1.0),
]  # fmt: skip


def write_config(path: Path, sim: ThreadedSimulator, timeout: float = 30.0) -> Path:
    config = path / "config.yaml"
    config.write_text(
        f"""
database: {{url: "sqlite+aiosqlite:///{path / "p.db"}"}}
sources:
  tmdb: {{base_url: "{sim.simulator.tmdb_base_url}", max_pages: 2, rate_limit: 40, attempts: 4, timeout: {timeout}}}
  airkorea:
    base_url: "{sim.simulator.airkorea_base_url}"
    sidos: [서울, 세종, 제주]
    stations: [종로구]
    concurrency: 1
    rate_limit: 50
    attempts: 4
""",
        encoding="utf-8",
    )
    return config


def run_cli(config: Path, jobs: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    args = ["--config", str(config), "--log-level", "DEBUG", "run", "--once"]
    for job in jobs:
        args += ["--job", job]
    code = main(args)
    out, err = capfd.readouterr()
    return code, out + err


def table_rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("movies", "movie_snapshots", "air_stations", "air_readings")}  # fmt: skip


def all_text(db: Path) -> str:
    """Every text value of the database, and every archived body as received (decompressed)."""
    chunks = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                chunks.extend(str(v) for v in row if isinstance(v, str))
        for encoding, body in conn.execute("SELECT encoding, body FROM raw_bodies"):
            chunks.append(decompress(encoding, body).decode("utf-8", "replace"))
    return "\n".join(chunks)


def every_file(folder: Path) -> str:
    """The bytes of every file the run left in ``folder`` (the database, its WAL, the lock, the config)."""
    return "\n".join(path.read_bytes().decode("latin-1") for path in sorted(folder.rglob("*")) if path.is_file())


def assert_no_secret(text: str) -> None:
    for key in (TMDB_KEY, DATA_GO_KEY):
        for form in secret_forms(key) | {quote(key, safe="").lower()}:
            assert form.lower() not in text.lower(), f"a form of a key leaked: {form[:6]}…"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINE_CONFIG", raising=False)
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    monkeypatch.setenv("DATA_GO_API_KEY", quote(DATA_GO_KEY, safe=""))  # the portal's "Encoding" form


@pytest.fixture(scope="module")
def baseline(sim: ThreadedSimulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, int]]:
    """Rows and requests of each job without faults."""
    result: dict[str, dict[str, int]] = {}
    mp = pytest.MonkeyPatch()
    mp.setenv("TMDB_API_KEY", TMDB_KEY)
    mp.setenv("DATA_GO_API_KEY", DATA_GO_KEY)
    try:
        for job in ("tmdb", "airkorea_sido", "airkorea_stations"):
            path = tmp_path_factory.mktemp(job)
            sim.state.reset()
            assert main(["--config", str(write_config(path, sim)), "run", "--once", "--job", job]) == 0
            result[job] = table_rows(path / "p.db") | {f"req:{k}": v for k, v in sim.state.counters.items()}
    finally:
        mp.undo()
    return result


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.usefixtures("env")
def test_fault(case: Case, sim: ThreadedSimulator, baseline: dict[str, dict[str, int]], tmp_path: Path,
               capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    sim.state.reset()
    for fault in case.faults:
        sim.state.add_fault(**fault)
    code, output = run_cli(write_config(tmp_path, sim, case.timeout), case.jobs, capfd)
    assert code == case.exit_code, output[-2000:]
    assert "Traceback" not in output
    db = tmp_path / "p.db"
    with sqlite3.connect(db) as conn:
        status, details_text = conn.execute("SELECT status, details FROM runs").fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    details = json.loads(details_text)
    assert {job: details[job]["status"] for job in case.jobs} == case.statuses
    assert status == ("success" if all(s == "success" for s in case.statuses.values()) else
                      "partial" if any(s != "failed" for s in case.statuses.values()) else "failed")  # fmt: skip
    for operation, expected in case.requests.items():
        assert sim.state.counters.get(operation, 0) == expected, (operation, dict(sim.state.counters))
    for job, error_class in case.error_class.items():
        assert details[job]["error_class"] == error_class
        assert details[job]["failures"].get(error_class, 0) >= 1
    rows = table_rows(db)
    if case.complete:  # retried to success: exactly the rows of a run without faults, no more, no less
        for job in case.jobs:
            expected_rows = {k: v for k, v in baseline[job].items() if not k.startswith("req:")}
            assert rows == expected_rows
        assert not any(s != "success" for s in case.statuses.values())
    assert_no_secret(output)
    assert_no_secret(all_text(db))
    assert_no_secret(every_file(db.parent))
    with sqlite3.connect(db) as conn:  # the archive saw every response, errors included
        archived = dict(conn.execute("SELECT operation, count(*) FROM raw_responses GROUP BY operation").fetchall())
    for operation, expected in case.requests.items():
        assert archived.get(operation, 0) <= expected  # a request that got no answer (a reset) has no body
    assert sum(archived.values()) > 0


# --- one failure, one line: a refused key is reported once per source, with the gateway's own words --------


def refusal_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "refused the key" in line or "rejected TMDB_API_KEY" in line]


def run_default(config: Path, jobs: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The CLI as a user runs it (INFO logs): what it prints on stdout and stderr."""
    code = main(["--config", str(config), "run", "--once", *(a for job in jobs for a in ("--job", job))])
    out, err = capfd.readouterr()
    return code, out + err


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        pytest.param(dict(kind="gateway", code="30"), ["code 30 SERVICE_KEY_IS_NOT_REGISTERED_ERROR"], id="XML 200"),
        pytest.param(dict(kind="gateway", code="30", fmt="json"), ["code 30 SERVICE_KEY_IS_NOT_REGISTERED_ERROR"],
                     id="JSON 200"),
        pytest.param(dict(kind="403", code="30", fmt="json"),
                     ["HTTP 403", "code 30 SERVICE_KEY_IS_NOT_REGISTERED_ERROR: 등록되지 않은 서비스키입니다."],
                     id="JSON 403"),
        pytest.param(dict(kind="403"), ["HTTP 403"], id="plain 403"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("env")
def test_a_refused_key_is_one_line_per_source_with_the_gateways_words(
    fault: dict[str, Any], words: list[str], sim: ThreadedSimulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sim.state.reset()
    sim.state.add_fault(operation="*", times=50, **fault)  # every province and station is refused
    code, output = run_default(write_config(tmp_path, sim), ["airkorea_sido", "airkorea_stations"], capfd)
    assert code == 1
    lines = refusal_lines(output)
    assert len(lines) == 1, output[-3000:]
    assert all(word in lines[0] for word in words), lines[0]
    assert output.count("1-2 hours") == 1  # the activation hint, once
    with sqlite3.connect(tmp_path / "p.db") as conn:
        error, details = conn.execute("SELECT error, details FROM runs").fetchone()
    assert error.count("refused the key") == 1
    assert {json.loads(details)[job]["error_class"] for job in ("airkorea_sido", "airkorea_stations")} == {"auth"}
    assert_no_secret(output)


@pytest.mark.usefixtures("env")
def test_a_refused_tmdb_key_is_one_line_with_tmdbs_code_and_message(
    sim: ThreadedSimulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sim.state.reset()
    sim.state.add_fault(operation="*", kind="401", times=50)
    code, output = run_default(write_config(tmp_path, sim), ["tmdb"], capfd)
    assert code == 1
    lines = refusal_lines(output)
    assert len(lines) == 1 and "status_code 7: Invalid API key" in lines[0], output[-3000:]


@pytest.mark.usefixtures("env")
def test_a_refused_key_stops_a_backfill_with_one_line(
    sim: ThreadedSimulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sim.state.reset()
    sim.state.add_fault(operation="*", kind="gateway", code="30", times=50)
    config = write_config(tmp_path, sim)
    today = datetime.now(KST).date().isoformat()
    stations = [arg for name in ("종로구", "중구", "강남구", "서초구") for arg in ("--station", name)]
    code = main(["--config", str(config), "backfill", "airkorea", "--from", today, "--to", today, *stations])
    out, err = capfd.readouterr()
    assert code == 1
    lines = refusal_lines(out + err)
    assert len(lines) == 1 and "code 30 SERVICE_KEY_IS_NOT_REGISTERED_ERROR" in lines[0], (out + err)[-3000:]
    assert sim.state.counters.get(STATION, 0) <= 2  # the key is not tried again for every station
    with sqlite3.connect(tmp_path / "p.db") as conn:
        pending = conn.execute("SELECT count(*) FROM backfill_chunks WHERE status = 'pending'").fetchone()[0]
    assert pending == 4  # nothing failed for good: the same command resumes once the key works
