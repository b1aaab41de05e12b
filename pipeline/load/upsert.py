"""Idempotent writes: chunked executemany ``INSERT … ON CONFLICT DO UPDATE``, one short transaction a chunk.

The statement is compiled once per table and dialect and reused for every chunk; rows are passed as dicts
of already-typed values. All writes of a process go through one :class:`Writer`, whose lock keeps SQLite's
single-writer rule inside the process (other processes wait on the busy timeout).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.errors import LoadError
from pipeline.load.tables import air_readings, air_stations, movie_snapshots, movies, rejects
from pipeline.redaction import redact
from pipeline.transform.airkorea import AirReading, AirStation
from pipeline.transform.common import Reject
from pipeline.transform.tmdb import Movie, MovieSnapshot

DEFAULT_CHUNK_SIZE = 5000


UpsertInsert = sqlite.Insert | postgresql.Insert


def dialect_insert(dialect_name: str, table: Table) -> UpsertInsert:
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    raise LoadError(f"no upsert for database dialect {dialect_name!r}")


def upsert_statement(
    dialect_name: str,
    table: Table,
    *,
    keep: Sequence[str] = (),
    coalesce: Sequence[str] = (),
    do_nothing: bool = False,
) -> UpsertInsert:
    """``INSERT … ON CONFLICT (pk) DO UPDATE SET c = excluded.c`` for every non-key column.

    ``keep`` columns are written on insert only (``first_seen_at``); ``coalesce`` columns keep the stored
    value when the new one is NULL (a station seen without its province must not lose it).
    """
    ins = dialect_insert(dialect_name, table)
    keys = [c.name for c in table.primary_key.columns]
    if do_nothing:
        return ins.on_conflict_do_nothing(index_elements=keys)
    update: dict[str, Any] = {}
    for column in table.columns:
        if column.name in keys or column.name in keep:
            continue
        new = ins.excluded[column.name]
        update[column.name] = func.coalesce(new, column) if column.name in coalesce else new
    return ins.on_conflict_do_update(index_elements=keys, set_=update)


def chunked(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Writer:
    """The process's single database writer."""

    def __init__(self, engine: AsyncEngine, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.engine = engine
        self.chunk_size = chunk_size
        self.lock = asyncio.Lock()
        self._statements: dict[tuple[str, bool], UpsertInsert] = {}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _statement(self, table: Table, *, keep: Sequence[str] = (), coalesce: Sequence[str] = (),
                   do_nothing: bool = False) -> UpsertInsert:  # fmt: skip
        key = (table.name, do_nothing)
        if key not in self._statements:
            self._statements[key] = upsert_statement(
                self.dialect, table, keep=keep, coalesce=coalesce, do_nothing=do_nothing
            )
        return self._statements[key]

    async def write(self, statement: UpsertInsert, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute ``statement`` for ``rows`` in chunks, one transaction each; returns the rows sent."""
        written = 0
        for chunk in chunked(rows, self.chunk_size):
            try:
                async with self.lock, self.engine.begin() as conn:
                    await conn.execute(statement, list(chunk))
            except SQLAlchemyError as exc:
                message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                raise LoadError(redact(f"writing {statement.table.description} failed: {message}")) from None
            written += len(chunk)
        return written

    async def upsert_air_stations(self, stations: Sequence[AirStation], now: datetime) -> int:
        rows = [{**asdict(s), "first_seen_at": now, "updated_at": now} for s in stations]
        stmt = self._statement(
            air_stations, keep=("first_seen_at",), coalesce=("sido_name", "station_code", "mang_name")
        )
        return await self.write(stmt, rows)

    async def upsert_air_readings(self, readings: Sequence[AirReading], run_id: int, now: datetime) -> int:
        rows = [{**asdict(r), "run_id": run_id, "updated_at": now} for r in readings]
        return await self.write(self._statement(air_readings), rows)

    async def upsert_movies(self, items: Sequence[Movie], run_id: int, now: datetime, *, details: bool = True) -> int:
        rows = [
            {
                **asdict(m),
                "details_fetched": details,
                "first_seen_at": now,
                "updated_at": now,
                "last_run_id": run_id,
            }
            for m in items
        ]
        if details:
            return await self.write(self._statement(movies, keep=("first_seen_at",)), rows)
        # a bare list item must never overwrite what the details told us
        return await self.write(self._statement(movies, do_nothing=True), rows)

    async def insert_snapshots(self, snapshots: Sequence[MovieSnapshot], run_id: int, captured_at: datetime) -> int:
        rows = [{**asdict(s), "run_id": run_id, "captured_at": captured_at} for s in snapshots]
        return await self.write(self._statement(movie_snapshots), rows)

    async def insert_rejects(self, items: Sequence[Reject], run_id: int) -> int:
        if not items:
            return 0
        now = datetime.now(UTC)
        rows = [{**asdict(r), "run_id": run_id, "created_at": now} for r in items]
        try:
            async with self.lock, self.engine.begin() as conn:
                await conn.execute(rejects.insert(), rows)
        except SQLAlchemyError as exc:
            raise LoadError(redact(f"writing rejects failed: {exc}").splitlines()[0]) from None
        return len(rows)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
