"""The database handle every write goes through: one lock, joined short transactions, chunked writes.

All writes of a process go through one :class:`Writer`, whose lock keeps SQLite's single-writer rule inside
the process (other processes wait on the busy timeout). Rows are written in chunks of ``chunk_size``, one
short transaction each, unless the caller holds a transaction open (:meth:`Writer.transaction` joins it, as
sqlite-utils' ``atomic()`` does), so that writes which belong together commit together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline.errors import LoadError
from pipeline.load.rows import Encoded
from pipeline.load.statements import COPY_MIN_ROWS, BulkUpsert, Prepared, UpsertOptions, prepare_upsert
from pipeline.redaction import redact

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 5000

#: the connection of the write transaction open in this task, per writer (see Writer.transaction)
_ACTIVE: ContextVar[tuple[Writer, AsyncConnection] | None] = ContextVar("active_write", default=None)


class Writer:
    """The process's single database writer."""

    def __init__(self, engine: AsyncEngine, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.engine = engine
        self.chunk_size = chunk_size
        self.lock = asyncio.Lock()
        self._prepared: dict[UpsertOptions, Prepared] = {}
        self._stage_allowed: bool | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def prepare(
        self,
        table: Table,
        *,
        keep: Sequence[str] = (),
        coalesce: Sequence[str] = (),
        do_nothing: bool = False,
        union: Sequence[str] = (),
        overlay: Sequence[str] = (),
        compare: Sequence[str] = (),
        newer: tuple[str, str] | None = None,
        digest: str | None = None,
    ) -> Prepared:
        """The upsert of ``table`` with these options (see :class:`UpsertOptions`), compiled once (the cache is
        keyed by every option)."""
        options = UpsertOptions(
            table.name,
            tuple(keep),
            tuple(coalesce),
            do_nothing,
            tuple(union),
            tuple(overlay),
            tuple(compare),
            newer,
            digest,
        )
        prepared = self._prepared.get(options)
        if prepared is None:
            prepared = self._prepared[options] = prepare_upsert(table, options, self.engine.dialect)
        return prepared

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One short write transaction under the writer's lock; writes made inside it join it.

        Several writes that belong together (a backfill chunk's rows and its "done" mark) commit together.
        """
        active = _ACTIVE.get()
        if active is not None and active[0] is self:
            yield active[1]
            return
        async with self.lock, self.engine.begin() as conn:
            token = _ACTIVE.set((self, conn))
            try:
                yield conn
            finally:
                _ACTIVE.reset(token)

    async def _may_stage(self, conn: AsyncConnection) -> bool:
        """Whether this database lets the user create the temporary staging tables of :class:`BulkUpsert`
        (PostgreSQL grants it to everyone by default; a locked-down role without it gets ``executemany``)."""
        if self._stage_allowed is None:
            found = await conn.exec_driver_sql("SELECT has_database_privilege(current_database(), 'TEMPORARY')")
            self._stage_allowed = bool(found.scalar())
            if not self._stage_allowed:
                log.info("no TEMPORARY privilege on this database: large batches are sent row by row")
        return self._stage_allowed

    async def write(self, prepared: Prepared, rows: Sequence[Sequence[Any]]) -> int:
        """Upsert records (tuples in the table's column order); returns the rows sent."""
        try:
            encoded = prepared.codec.encode(rows)
        except LoadError as exc:  # a value the codec refused (a naive datetime)
            raise LoadError(redact(f"writing {prepared.table} failed: {exc}")) from None
        return await self.write_encoded(prepared, encoded)

    async def write_encoded(self, prepared: Prepared, encoded: Encoded) -> int:
        """Upsert rows already encoded (perhaps in another process) by ``prepared``'s codec, in chunks, one
        short transaction each; returns the rows sent (a write-nothing upsert: those new or changed).

        A write-nothing upsert first reads what is stored for the chunk's keys (:class:`Prefilter`) and sends
        only the rows that differ; once a chunk finds none of its keys stored (a fresh load), the rest of the
        batch is sent without looking, and the statement's ``WHERE`` still writes nothing that is unchanged.
        When the first chunk does find stored rows and the batch spans more chunks, the batch is first cut to
        one row per key, its last (what the chunks leave stored), so that a key's earlier row in another chunk
        is not compared with its later one, stored, and written back and forth.
        """
        if encoded.codec != prepared.codec:
            raise LoadError(
                f"writing {prepared.table} failed: rows encoded for {encoded.codec.table} ({encoded.codec.form}), "
                f"the statement takes {prepared.codec.form} rows"
            )
        written = 0
        prefilter = prepared.prefilter
        rows: Sequence[Sequence[Any]] = encoded.rows
        start, size, cut = 0, self.chunk_size, False
        while start < len(rows):
            chunk: Sequence[Sequence[Any]] = rows[start : start + size]
            start += size
            try:
                async with self.transaction() as conn:
                    if prefilter is not None:
                        stored = await prefilter.stored(conn, chunk)
                        if stored and not cut and len(rows) > size:
                            latest, cut = prefilter.latest(rows), True
                            if len(latest) < len(rows):  # a key in two chunks: start again from its last rows
                                rows, start = latest, 0
                                continue
                        if stored:
                            chunk = prefilter.changed(chunk, stored)
                            if not chunk:
                                continue
                        else:
                            prefilter = None  # a fresh load: the next chunks will not be found either
                    if prepared.sql is None:
                        dicts = [dict(zip(prepared.columns, row, strict=True)) for row in chunk]
                        await conn.execute(prepared.statement, dicts)
                    elif prepared.bulk is not None and len(chunk) >= COPY_MIN_ROWS and await self._may_stage(conn):
                        await _copy_merge(prepared.bulk, conn, chunk)
                    else:
                        await _send(prepared, conn, chunk)
            except SQLAlchemyError as exc:
                message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                raise LoadError(redact(f"writing {prepared.table} failed: {message}")) from None
            except LoadError as exc:  # a value the codec or COPY refused
                raise LoadError(redact(f"writing {prepared.table} failed: {exc}")) from None
            written += len(chunk)
        return written


async def _send(prepared: Prepared, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    """``executemany`` of the rendered statement: on SQLite the groups of :class:`MultiRow` first."""
    assert prepared.sql is not None
    multirow = prepared.multirow
    if multirow is not None and len(rows) >= multirow.rows:
        groups, rows = multirow.split(rows)
        await conn.exec_driver_sql(multirow.sql, groups)
        if not rows:
            return
    await conn.exec_driver_sql(prepared.sql, rows)


async def _copy_merge(bulk: BulkUpsert, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    """:class:`BulkUpsert` inside the caller's transaction (its first statement opens it on the driver's
    connection too)."""
    await conn.exec_driver_sql(bulk.create)
    import asyncpg  # the optional driver: only PostgreSQL writers get here

    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    try:  # on the driver's own connection: its errors are asyncpg's, not SQLAlchemy's
        await driver.copy_records_to_table(bulk.stage, records=rows, columns=bulk.columns)
    except (TypeError, ValueError, OverflowError) as exc:  # asyncpg encodes each value as it sends it
        raise LoadError(f"a value does not fit its column's type ({exc})") from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise LoadError((str(exc) or type(exc).__name__).splitlines()[0]) from None
    await conn.exec_driver_sql(bulk.merge)
    await conn.exec_driver_sql(bulk.truncate)  # the next batch of this transaction starts empty
