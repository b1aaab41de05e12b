"""With the simulator's daily quota set small, collection stops at the limit and resumes after KST midnight."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import SIDOS, parse_settings
from pipeline.load.db import create_engine, migrate
from pipeline.load.writer import Writer
from pipeline.offline import simulated
from pipeline.runner import run_jobs
from pipeline.simulator import SimulatorState

OP = "getCtprvnRltmMesureDnsty"


async def test_quota_stop_pause_and_resume_after_kst_midnight(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    airkorea = {"rate_limit": 50, "sidos": list(SIDOS)}  # the 17 provinces: a call each
    settings = parse_settings({"database": {"url": url}, "sources": {"tmdb": {"enabled": False}, "airkorea": airkorea}})
    state = SimulatorState(clock=datetime(2026, 11, 28, 3, 30, tzinfo=UTC))  # 12:30 KST
    state.daily_quota[OP] = 20  # the API's real limit here; our ledger allows 500 and learns from code 22
    now = [state.clock]
    await migrate(url)
    engine = create_engine(url)
    try:
        writer = Writer(engine)
        async with simulated(settings, state) as (local, secrets, _sim):

            async def run() -> str:
                report = await run_jobs(local, secrets, writer, ["airkorea_sido"], run_name="airkorea_sido",
                                        trigger="schedule", now=lambda: now[0])  # fmt: skip
                return report.status

            assert await run() == "success"
            assert state.counters[OP] == 17
            # 3 calls left: the 4th answers code 22, and no other province is asked (no retry storm)
            assert await run() == "partial"
            assert state.counters[OP] == 21
            # same KST day: the ledger defers the run without a single request
            assert await run() == "failed"
            assert state.counters[OP] == 21
            # past midnight KST (both clocks): collection resumes
            state.clock = datetime(2026, 11, 28, 15, 20, tzinfo=UTC)
            now[0] = state.clock
            assert await run() == "success"
            assert state.counters[OP] == 21 + 17
    finally:
        await engine.dispose()
    with sqlite3.connect(tmp_path / "q.db") as conn:
        rows = conn.execute("SELECT status, error, details FROM runs ORDER BY id").fetchall()
        ledger = conn.execute("SELECT kst_date, calls, exhausted_at IS NOT NULL FROM api_calls ORDER BY 1").fetchall()
    first, second, third, fourth = rows
    assert first[0] == "success"
    assert second[0] == "partial" and "code 22" in second[1]
    details = json.loads(second[2])["airkorea_sido"]
    assert details["error_class"] == "quota" and details["requests"] == {OP: 4}
    assert details["actions"]["quota:paused_operation"] == 1 and details["failures"] == {"quota": 1}
    assert third[0] == "failed" and "deferred" in third[1] and "2026-11-29 00:00 KST" in third[1]
    assert json.loads(third[2])["airkorea_sido"]["actions"] == {"quota:deferred": 1}
    assert fourth[0] == "success"
    assert ledger == [("2026-11-28", 21, 1), ("2026-11-29", 17, 0)]
