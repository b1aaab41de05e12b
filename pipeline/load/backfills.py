"""The backfill ledger: ``backfills`` (one row per backfill, by its id) and ``backfill_chunks`` (its chunks).

A chunk — one station, or ten TMDB list pages — is marked ``done`` in the same transaction as its rows, so
a backfill killed half-way and started again with the same arguments does only what is not done.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Update, bindparam, select, update

from pipeline.load.statements import dialect_insert
from pipeline.load.tables import backfill_chunks, backfills
from pipeline.load.writer import Writer
from pipeline.redaction import redact


async def open_backfill(
    writer: Writer,
    backfill_id: str,
    source: str,
    first: date,
    last: date,
    arguments: dict[str, Any],
    chunks: Sequence[str],
) -> tuple[list[str], int]:
    """Record the backfill and its chunks (new ones pending); return the chunks still to do and the done count."""
    now = datetime.now(UTC)
    ins = dialect_insert(writer.dialect, backfills)
    stmt = ins.values(
        id=backfill_id,
        source=source,
        range_from=first,
        range_to=last,
        arguments=json.dumps(arguments, ensure_ascii=False, sort_keys=True),
        status="running",
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={"status": "running", "updated_at": now})
    chunk_ins = dialect_insert(writer.dialect, backfill_chunks).on_conflict_do_nothing(
        index_elements=["backfill_id", "chunk"]
    )
    async with writer.transaction() as conn:
        await conn.execute(stmt)
        if chunks:
            pending = {"backfill_id": backfill_id, "status": "pending", "attempts": 0, "rows": 0, "updated_at": now}
            await conn.execute(chunk_ins, [{**pending, "chunk": chunk} for chunk in chunks])
        rows = (
            await conn.execute(
                select(backfill_chunks.c.chunk, backfill_chunks.c.status).where(
                    backfill_chunks.c.backfill_id == backfill_id
                )
            )
        ).all()
    status = {row.chunk: row.status for row in rows}
    todo = [c for c in chunks if status.get(c) != "done"]
    return todo, sum(1 for c in chunks if status.get(c) == "done")


async def mark_chunk(
    writer: Writer,
    backfill_id: str,
    chunk: str,
    status: str,
    run_id: int,
    *,
    rows: int = 0,
    error: str | None = None,
    attempt: bool = False,
) -> None:
    values: dict[str, Any] = {"status": status, "run_id": run_id, "updated_at": datetime.now(UTC)}
    if status == "done":
        values["rows"] = rows
        values["error"] = None
    if error is not None:
        values["error"] = redact(error)
    statement = _mark_statement(tuple(values), attempt)
    async with writer.transaction() as conn:
        await conn.execute(statement, {**values, "_backfill_id": backfill_id, "_chunk": chunk})


@functools.cache
def _mark_statement(columns: tuple[str, ...], attempt: bool) -> Update:
    """``UPDATE backfill_chunks`` of ``columns`` (and ``attempts + 1``), built once: a backfill marks every
    chunk, and building the statement cost more than running it."""
    values: dict[str, Any] = {name: bindparam(name, type_=backfill_chunks.c[name].type) for name in columns}
    if attempt:
        values["attempts"] = backfill_chunks.c.attempts + 1
    key = (backfill_chunks.c.backfill_id == bindparam("_backfill_id")) & (
        backfill_chunks.c.chunk == bindparam("_chunk")
    )
    return update(backfill_chunks).where(key).values(**values)


async def close_backfill(writer: Writer, backfill_id: str, status: str) -> None:
    async with writer.transaction() as conn:
        await conn.execute(
            update(backfills).where(backfills.c.id == backfill_id).values(status=status, updated_at=datetime.now(UTC))
        )


async def done_chunks(writer: Writer, backfill_id: str) -> set[str]:
    async with writer.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(backfill_chunks.c.chunk).where(
                    (backfill_chunks.c.backfill_id == backfill_id) & (backfill_chunks.c.status == "done")
                )
            )
        ).all()
    return {row.chunk for row in rows}
