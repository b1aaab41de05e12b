"""The ``runs`` ledger: a row is written ``running`` before any data, and finished after the last write."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select, update

from pipeline.load.tables import runs
from pipeline.load.upsert import Writer
from pipeline.redaction import redact

RunStatus = Literal["running", "success", "partial", "failed"]


@dataclass(frozen=True, slots=True)
class RunTotals:
    requests: int = 0
    rows_fetched: int = 0
    rows_upserted: int = 0
    rows_rejected: int = 0


async def start_run(writer: Writer, job: str, trigger: str, started_at: datetime | None = None) -> int:
    started = started_at or datetime.now(UTC)
    async with writer.lock, writer.engine.begin() as conn:
        result = await conn.execute(
            runs.insert().values(job=job, trigger=trigger, started_at=started, status="running")
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
    async with writer.lock, writer.engine.begin() as conn:
        await conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


async def get_run(writer: Writer, run_id: int) -> dict[str, Any] | None:
    async with writer.engine.connect() as conn:
        row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
    return dict(row) if row else None
