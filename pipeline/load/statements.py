"""Upsert statements, compiled once per table, backend and options, with the row codec that feeds them.

``INSERT … ON CONFLICT (pk) DO UPDATE SET c = excluded.c`` for every non-key column, as sqlite-utils does; a
statement is pre-rendered in the driver's parameter style and run with ``exec_driver_sql`` on tuples
(per-row SQLAlchemy parameter processing of dictionaries was most of the loader's cost on both backends).
Where a dialect renders parameters out of column order, or a column type processes values in a way the
codecs do not reproduce, the Core statement runs with dictionaries instead.

On SQLite a chunk is sent as statements of many rows each, ``INSERT … VALUES (…), (…), … ON CONFLICT …``
(:class:`MultiRow`), and the rest of it row by row. On PostgreSQL a large batch goes by ``COPY`` into a
temporary staging table and one ``INSERT … SELECT … ON CONFLICT DO UPDATE`` from it (:class:`BulkUpsert`), both
built from the same Core objects as the row upsert.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Dialect, Identity, MetaData, Table, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnElement

from pipeline.errors import LoadError
from pipeline.load.rows import Form, RowCodec
from pipeline.load.tables import UTCDateTime

UpsertInsert = sqlite.Insert | postgresql.Insert

#: PostgreSQL: a batch of at least this many rows is upserted by ``COPY`` (see :class:`BulkUpsert`)
COPY_MIN_ROWS = 1000
#: SQLite: the bound parameters one statement may take, whatever the library's build (999 before 3.32.0)
SQLITE_MAX_PARAMETERS = 999


@dataclass(frozen=True, slots=True)
class UpsertOptions:
    """Everything that makes one upsert statement differ from another: the statement cache's key.

    ``keep`` columns are written on insert only (``first_seen_at``); ``coalesce`` columns keep the stored
    value when the new one is NULL (a station seen without its province must not lose it); ``do_nothing``
    leaves an existing row as it is (a bare list item must not overwrite a movie's details).

    Bit masks (the completeness ledger): ``union`` columns gain the new bits (``old | new``); ``overlay``
    columns are a group of exclusive states, where each bit the new row sets in any of them replaces the old
    state of that bit (``(old & ~(new_a | new_b | …)) | new``).

    Write-nothing upserts (readings, movies): with ``compare``, a stored row is rewritten only when one of
    those columns differs (``IS DISTINCT FROM``, values compared exactly as stored); an unchanged row keeps its
    ``updated_at`` and run. ``newer`` names the row's write time and writing run: a stored row is replaced
    only by values written after it (in the same second, which SQLite's timestamps cannot tell apart, by a
    later run), or by the run that wrote it (a replay after a transform was fixed), so that replaying older
    bodies never turns a row back to older values. ``digest`` names a column holding a fingerprint of the
    compared values, which :class:`Prefilter` reads instead of the values.
    """

    table: str
    keep: tuple[str, ...] = ()
    coalesce: tuple[str, ...] = ()
    do_nothing: bool = False
    union: tuple[str, ...] = ()
    overlay: tuple[str, ...] = ()
    compare: tuple[str, ...] = ()
    newer: tuple[str, str] | None = None
    digest: str | None = None


def dialect_insert(dialect_name: str, table: Table) -> UpsertInsert:
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    raise LoadError(f"no upsert for database dialect {dialect_name!r}")


def _update_set(ins: UpsertInsert, table: Table, options: UpsertOptions) -> dict[str, ColumnElement[Any]]:
    keys = {c.name for c in table.primary_key.columns}
    update: dict[str, ColumnElement[Any]] = {}
    overlaid: ColumnElement[Any] | None = None
    for name in options.overlay:
        overlaid = ins.excluded[name] if overlaid is None else overlaid.bitwise_or(ins.excluded[name])
    for column in table.columns:
        if column.name in keys or column.name in options.keep:
            continue
        new = ins.excluded[column.name]
        if column.name in options.coalesce:
            update[column.name] = func.coalesce(new, column)
        elif column.name in options.union:
            update[column.name] = column.bitwise_or(new)
        elif column.name in options.overlay and overlaid is not None:
            update[column.name] = column.bitwise_and(overlaid.bitwise_not()).bitwise_or(new)
        else:
            update[column.name] = new
    return update


def _update_where(ins: UpsertInsert, table: Table, options: UpsertOptions) -> ColumnElement[bool] | None:
    """The ``DO UPDATE … WHERE`` of a write-nothing upsert (see :class:`UpsertOptions`), or ``None``."""
    if not options.compare:
        return None
    where = or_(*(table.c[name].is_distinct_from(ins.excluded[name]) for name in options.compare))
    if options.newer is not None:
        at, run = options.newer
        written, stored = ins.excluded, table.c
        not_older = or_(
            written[run] == stored[run],  # the run that wrote the row (a replay after a transform fix)
            written[at] > stored[at],
            and_(written[at] == stored[at], written[run] > stored[run]),  # the same second (SQLite): the later run
        )
        where = and_(where, not_older)
    return where


def upsert_statement(dialect_name: str, table: Table, options: UpsertOptions) -> UpsertInsert:
    """``INSERT … ON CONFLICT (pk) DO UPDATE SET c = excluded.c [WHERE …]`` (or ``DO NOTHING``) as ``options``
    say."""
    ins = dialect_insert(dialect_name, table)
    keys = [c.name for c in table.primary_key.columns]
    if options.do_nothing:
        return ins.on_conflict_do_nothing(index_elements=keys)
    return ins.on_conflict_do_update(
        index_elements=keys, set_=_update_set(ins, table, options), where=_update_where(ins, table, options)
    )


@dataclass(frozen=True, slots=True)
class BulkUpsert:
    """PostgreSQL's fast way to upsert a large batch: ``COPY`` (binary) into a temporary staging table, then
    one ``INSERT … SELECT … ON CONFLICT DO UPDATE`` from it — about twice asyncpg's ``executemany`` (see the
    bench's loader lines). One statement cannot update a row twice, so when a key comes more than once the
    last one wins (``DISTINCT ON`` by the staging order), as it does when rows are sent one by one.
    """

    stage: str
    create: str
    merge: str
    truncate: str
    columns: tuple[str, ...]

    @classmethod
    def for_upsert(cls, table: Table, options: UpsertOptions, dialect: Dialect) -> BulkUpsert | None:
        if options.do_nothing:  # DO NOTHING keeps the first of a key: leave it to executemany
            return None
        stage = Table(
            f"pipeline_stage_{table.name}",
            MetaData(),
            *(Column(c.name, c.type) for c in table.columns),
            Column("stage_order", BigInteger, Identity()),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DELETE ROWS",
        )
        names = [c.name for c in table.columns]
        keys = [stage.c[c.name] for c in table.primary_key.columns]
        latest = (
            select(*(stage.c[name] for name in names))
            .ext(postgresql.distinct_on(*keys))
            .order_by(*keys, stage.c.stage_order.desc())
            .subquery("latest")
        )
        ins = postgresql.insert(table).from_select(names, select(*(latest.c[name] for name in names)))
        merge = ins.on_conflict_do_update(
            index_elements=[c.name for c in table.primary_key.columns],
            set_=_update_set(ins, table, options),
            where=_update_where(ins, table, options),
        )
        quoted = dialect.identifier_preparer.quote(stage.name)
        return cls(
            stage=stage.name,
            create=str(CreateTable(stage, if_not_exists=True).compile(dialect=dialect)).strip(),
            merge=str(merge.compile(dialect=dialect)),
            truncate=f"TRUNCATE {quoted}",
            columns=tuple(names),
        )


@dataclass(frozen=True, slots=True)
class Prefilter:
    """The stored values of a chunk's keys, read in one query, so that a write-nothing upsert does not even
    send the rows that equal them: sending a row costs more than reading it (binding every column, one
    statement step each), and the statement's ``WHERE`` keeps the guarantee for whatever is sent.

    With a ``digest`` column (``air_readings.values_digest``) only the keys and the digest are read and
    compared, not every value: turning 24 stored values a row into Python objects would cost about as much as
    sending the row. A row whose digest differs, or is not stored, is sent, and the statement compares the
    values themselves.

    SQLite takes the keys as one JSON array (``json_each``, one index lookup a key); PostgreSQL as one array
    per key column (``unnest``). The query runs on the driver's connection: its rows are plain tuples.
    """

    sql: str
    keys: tuple[int, ...]  # positions of the key columns in the codec's rows
    values: tuple[int, ...]  # positions of the compared columns (the digest's alone, when there is one)
    arrays: bool  # PostgreSQL: one array parameter per key column; SQLite: one JSON text

    @classmethod
    def for_upsert(cls, table: Table, options: UpsertOptions, dialect: Dialect, columns: Sequence[str]) -> Prefilter:
        keys = [c.name for c in table.primary_key.columns]
        compared = (options.digest,) if options.digest else options.compare
        quote = dialect.identifier_preparer.quote
        selected = ", ".join(f"t.{quote(name)}" for name in (*keys, *compared))
        if dialect.name == "postgresql":
            casts = ", ".join(f"${i}::{table.c[k].type.compile(dialect=dialect)}[]" for i, k in enumerate(keys, 1))
            aliases = ", ".join(f"k{i}" for i in range(len(keys)))
            on = " AND ".join(f"t.{quote(k)} = j.k{i}" for i, k in enumerate(keys))
            sql = f"SELECT {selected} FROM unnest({casts}) AS j({aliases}) JOIN {quote(table.name)} AS t ON {on}"
        else:  # the keys' loop first (CROSS JOIN keeps SQLite's order); per leading key, one range of the last
            *lead, last = keys
            on = " AND ".join(
                [
                    *(f"t.{quote(k)} = json_extract(j.value, '$[{i}]')" for i, k in enumerate(lead)),
                    f"t.{quote(last)} BETWEEN json_extract(j.value, '$[{len(lead)}]') "
                    f"AND json_extract(j.value, '$[{len(lead) + 1}]')",
                ]
            )
            sql = f"SELECT {selected} FROM json_each(?) AS j CROSS JOIN {quote(table.name)} AS t ON {on}"
        position = {name: i for i, name in enumerate(columns)}
        return cls(
            sql, tuple(position[k] for k in keys), tuple(position[c] for c in compared), dialect.name == "postgresql"
        )

    def parameters(self, rows: Sequence[Sequence[Any]]) -> tuple[Any, ...]:
        """PostgreSQL: the keys, one array per column. SQLite: per distinct leading key, the range of the last
        one (a station's hours in a chunk are few ranges, and one range scan reads them all; rows inside a
        range that the chunk does not hold are read too, and ignored)."""
        if self.arrays:
            return tuple([row[i] for row in rows] for i in self.keys)
        *lead, last = self.keys
        spans: dict[tuple[Any, ...], list[Any]] = {}
        for row in rows:
            key, value = tuple([row[i] for i in lead]), row[last]
            span = spans.get(key)
            if span is None:
                spans[key] = [value, value]
            elif value < span[0]:
                span[0] = value
            elif value > span[1]:
                span[1] = value
        ranges = [[*key, low, high] for key, (low, high) in spans.items()]
        return (json.dumps(ranges, ensure_ascii=False),)

    async def stored(self, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """What the database holds for the rows' keys: ``(key…, compared…)`` tuples, read through the driver."""
        driver: Any = (await conn.get_raw_connection()).driver_connection
        parameters = self.parameters(rows)
        if not self.arrays:
            try:  # aiosqlite: its rows are tuples already
                return list(await driver.execute_fetchall(self.sql, parameters))
            except sqlite3.Error as exc:  # the driver's own errors, not SQLAlchemy's: one line, as the writer's
                raise LoadError(f"reading the stored rows failed: {exc}") from None
        import asyncpg  # the optional driver: only PostgreSQL writers get here

        try:
            return [tuple(record) for record in await driver.fetch(self.sql, *parameters)]
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise LoadError(
                f"reading the stored rows failed: {(str(exc) or type(exc).__name__).splitlines()[0]}"
            ) from None

    def latest(self, rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
        """``rows`` with one row per key, its last (at the place of its first), as the statement would leave
        them stored; ``rows`` itself when no key comes twice."""
        last = dict(zip(map(itemgetter(*self.keys), rows), rows, strict=True))
        return rows if len(last) == len(rows) else list(last.values())

    def changed(self, rows: Sequence[Sequence[Any]], stored: Iterable[Sequence[Any]]) -> list[Sequence[Any]]:
        """The rows that are new or differ from what is stored (``stored``: :meth:`stored`'s result)."""
        held = {tuple(found) for found in stored}
        picked = itemgetter(*self.keys, *self.values)  # a key and a compared column at least: always a tuple
        return [row for row in self.latest(rows) if picked(row) not in held]  # a key twice: its last row


@dataclass(frozen=True, slots=True)
class MultiRow:
    """SQLite's fast way to upsert a chunk: the row statement with ``rows`` rows in its ``VALUES`` list, as many
    as fit in :data:`SQLITE_MAX_PARAMETERS`, sent with ``executemany`` on one tuple per group of rows; the
    chunk's last rows, fewer than a group, go by the row statement. One statement step then inserts ``rows``
    rows, where ``executemany`` of the row statement steps (and binds, and resets) once a row: 15–20 % less time
    for the same rows (the bench's loader lines). SQLite runs the ``VALUES`` rows in order, each with its own
    conflict check, ``WHERE`` and triggers, so the result is the row-by-row one: a key given twice is updated by
    its later row.
    """

    sql: str
    rows: int

    @classmethod
    def for_statement(cls, sql: str, columns: int) -> MultiRow | None:
        """From the row statement rendered in qmark style; ``None`` when fewer than two rows fit."""
        rows = SQLITE_MAX_PARAMETERS // columns
        one = "(" + ", ".join("?" * columns) + ")"
        clause = f" VALUES {one}"
        if rows < 2 or sql.count(clause) != 1 or sql.count("?") != columns:
            return None
        return cls(sql.replace(clause, " VALUES " + ", ".join([one] * rows)), rows)

    def split(self, rows: Sequence[Sequence[Any]]) -> tuple[list[tuple[Any, ...]], Sequence[Sequence[Any]]]:
        """The rows as one flat tuple per full group (row after row), and the rows left over."""
        full = len(rows) - len(rows) % self.rows
        groups = list(map(tuple, map(chain.from_iterable, zip(*[iter(rows[:full])] * self.rows, strict=True))))
        return groups, rows[full:]


@dataclass(frozen=True, slots=True)
class Prepared:
    """An upsert compiled once: rows are tuples in ``codec.columns`` order, encoded by ``codec``.

    ``sql`` is the statement rendered in the driver's parameter style, or ``None`` when the Core
    ``statement`` must run with dictionaries (then the codec encodes nothing).
    """

    statement: UpsertInsert
    options: UpsertOptions
    codec: RowCodec
    sql: str | None
    bulk: BulkUpsert | None = None  # PostgreSQL: large batches by COPY
    multirow: MultiRow | None = None  # SQLite: many rows a statement
    prefilter: Prefilter | None = None  # a write-nothing upsert: unchanged rows are not sent

    @property
    def table(self) -> str:
        return self.options.table

    @property
    def columns(self) -> tuple[str, ...]:
        return self.codec.columns

    def encode(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Records in the driver's form (what :meth:`~pipeline.load.writer.Writer.write` sends)."""
        return self.codec.encode(rows).rows


def _needs_sqlalchemy(table: Table, dialect: Dialect) -> bool:
    """A column whose type processes bound values in a way the row codecs do not reproduce."""
    return any(
        column.type.dialect_impl(dialect).bind_processor(dialect) is not None
        and not isinstance(column.type, UTCDateTime | Boolean)
        for column in table.columns
    )


def prepare_upsert(table: Table, options: UpsertOptions, dialect: Dialect) -> Prepared:
    """Compile the upsert of ``table`` for ``dialect``; see :class:`Prepared`."""
    statement = upsert_statement(dialect.name, table, options)
    columns = [c.name for c in table.columns]
    compiled = statement.compile(dialect=dialect, column_keys=columns)
    driver_ready = dialect.name == "sqlite" or not _needs_sqlalchemy(table, dialect)
    if not (driver_ready and list(compiled.positiontup or ()) == columns):
        return Prepared(statement, options, RowCodec.for_table(table, "core"), None)
    form: Form = "sqlite" if dialect.name == "sqlite" else "asyncpg"
    bulk = BulkUpsert.for_upsert(table, options, dialect) if dialect.name == "postgresql" else None
    sql = str(compiled)
    multirow = MultiRow.for_statement(sql, len(columns)) if dialect.name == "sqlite" else None
    prefilter = Prefilter.for_upsert(table, options, dialect, columns) if options.compare else None
    return Prepared(statement, options, RowCodec.for_table(table, form), sql, bulk, multirow, prefilter)
