"""The ``runs`` ledger: a row is written ``running`` before any data, and finished after the last write."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Select, delete, func, select, update

from pipeline.load.tables import daemon_jobs, runs
from pipeline.load.writer import Writer
from pipeline.redaction import redact

RunStatus = Literal["running", "success", "partial", "failed", "missed", "skipped"]


@dataclass(frozen=True, slots=True)
class RunTotals:
    requests: int = 0
    rows_fetched: int = 0
    rows_upserted: int = 0
    rows_rejected: int = 0


HOST = socket.gethostname()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


async def start_run(writer: Writer, job: str, trigger: str, started_at: datetime | None = None) -> int:
    started = started_at or datetime.now(UTC)
    async with writer.transaction() as conn:
        result = await conn.execute(
            runs.insert().values(
                job=job, trigger=trigger, started_at=started, status="running", host=HOST, pid=os.getpid()
            )
        )
        run_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    if not isinstance(run_id, int):
        raise RuntimeError("the database did not return the new run's id")
    return run_id


async def finish_run(
    writer: Writer,
    run_id: int,
    status: RunStatus,
    totals: RunTotals,
    *,
    error: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": status,
        "finished_at": datetime.now(UTC),
        "requests": totals.requests,
        "rows_fetched": totals.rows_fetched,
        "rows_upserted": totals.rows_upserted,
        "rows_rejected": totals.rows_rejected,
        "error": redact(error) if error else None,
        "details": redact(json.dumps(details, ensure_ascii=False, sort_keys=True)) if details else None,
    }
    async with writer.transaction() as conn:
        await conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


async def get_run(writer: Writer, run_id: int) -> dict[str, Any] | None:
    async with writer.engine.connect() as conn:
        row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
    return dict(row) if row else None


async def record_window(
    writer: Writer, job: str, status: RunStatus, scheduled_at: datetime, error: str, trigger: str = "schedule"
) -> int:
    """A scheduled window that did not run (``missed``, ``skipped``) or failed before it started."""
    now = datetime.now(UTC)
    async with writer.transaction() as conn:
        result = await conn.execute(
            runs.insert().values(
                job=job, trigger=trigger, started_at=scheduled_at, finished_at=now, status=status, error=redact(error)
            )
        )
        run_id = result.inserted_primary_key[0] if result.inserted_primary_key else 0
    return int(run_id)


async def mark_abandoned(writer: Writer) -> int:
    """Runs left ``running`` by a process of this machine that no longer exists are failed; returns how many.

    Runs of live processes (a daemon, a concurrent ``run --once``) and of other machines are left alone.
    """
    async with writer.engine.connect() as conn:
        rows = (await conn.execute(select(runs.c.id, runs.c.host, runs.c.pid).where(runs.c.status == "running"))).all()
    dead = [
        r.id for r in rows if r.pid is None or (r.host == HOST and r.pid != os.getpid() and not process_alive(r.pid))
    ]
    if not dead:
        return 0
    async with writer.transaction() as conn:
        await conn.execute(
            update(runs)
            .where(runs.c.id.in_(dead), runs.c.status == "running")
            .values(status="failed", finished_at=datetime.now(UTC), error="abandoned: the process ended mid-run")
        )
    return len(dead)


#: per job, the id of its newest finished run (``last``) and of its newest success: read from the index on
#: ``runs (job, status, id)`` alone (migration 0008), not from the table
NEWEST_RUNS: dict[str, Select[tuple[str, int]]] = {
    key: select(runs.c.job, func.max(runs.c.id).label("id")).where(condition).group_by(runs.c.job)
    for key, condition in (("last", runs.c.status != "running"), ("success", runs.c.status == "success"))
}


async def last_runs(writer: Writer) -> dict[str, dict[str, Any]]:
    """Per job: the newest run (``last``) and the newest successful one (``success``)."""
    found: dict[str, dict[str, Any]] = {}
    async with writer.engine.connect() as conn:
        for key, query in NEWEST_RUNS.items():
            newest = query.subquery()
            rows = (await conn.execute(select(runs).join(newest, runs.c.id == newest.c.id))).mappings().all()
            for row in rows:
                found.setdefault(row["job"], {})[key] = dict(row)
        # a `run --once` cycle covers several jobs: its per-job outcome is in `details`
        cycles = (
            (
                await conn.execute(
                    select(runs)
                    .where(runs.c.job == "cycle", runs.c.status.in_(("success", "partial")))
                    .order_by(runs.c.id.desc())
                    .limit(20)
                )
            )
            .mappings()
            .all()
        )
        for row in cycles:
            for job, outcome in json.loads(row["details"] or "{}").items():
                if not isinstance(outcome, dict):
                    continue
                entry = found.setdefault(job, {})
                if "last" not in entry or entry["last"]["id"] < row["id"]:
                    entry["last"] = {**dict(row), "job": job, "status": outcome.get("status", row["status"])}
                if outcome.get("status") == "success" and (
                    "success" not in entry or entry["success"]["id"] < row["id"]
                ):
                    entry["success"] = {**dict(row), "job": job, "status": "success"}
        running = (await conn.execute(select(runs).where(runs.c.status == "running"))).mappings().all()
        for row in running:
            found.setdefault(row["job"], {})["running"] = dict(row)
    return found


async def save_timetable(writer: Writer, next_runs: Mapping[str, datetime | None], pid: int) -> None:
    """Replace ``daemon_jobs`` with the running daemon's next fire times."""
    now = datetime.now(UTC)
    async with writer.transaction() as conn:
        await conn.execute(delete(daemon_jobs))
        if next_runs:
            await conn.execute(
                daemon_jobs.insert(),
                [{"job": job, "next_run_at": at, "pid": pid, "updated_at": now} for job, at in next_runs.items()],
            )


async def load_timetable(writer: Writer) -> dict[str, datetime | None]:
    async with writer.engine.connect() as conn:
        rows = (await conn.execute(select(daemon_jobs.c.job, daemon_jobs.c.next_run_at))).all()
    return {row.job: row.next_run_at for row in rows}
