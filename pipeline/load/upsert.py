"""Idempotent writes: chunked executemany ``INSERT … ON CONFLICT DO UPDATE``, one short transaction a chunk.

The statement is compiled once per table and dialect and reused for every chunk; rows are passed as dicts
of already-typed values. All writes of a process go through one :class:`Writer`, whose lock keeps SQLite's
single-writer rule inside the process (other processes wait on the busy timeout).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from datetime import UTC, date, datetime
from itertools import compress, repeat
from operator import attrgetter
from typing import Any

from sqlalchemy import Boolean, Date, Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline.errors import LoadError
from pipeline.load.tables import UTCDateTime, air_readings, air_stations, movie_snapshots, movies, rejects
from pipeline.redaction import redact
from pipeline.transform.airkorea import AirColumns, AirReading, AirStation
from pipeline.transform.common import Reject
from pipeline.transform.tmdb import Movie, MovieSnapshot

log = logging.getLogger(__name__)

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


_SQLITE_TIMES: dict[datetime, str] = {}  # UTC datetime → stored text; backfills repeat the same hours


def sqlite_datetime(value: datetime) -> str:
    """The UTC text SQLite stores (the same as :class:`~pipeline.load.tables.UTCDateTime` writes)."""
    text = _SQLITE_TIMES.get(value)
    if text is None:
        if value.tzinfo is None:
            raise LoadError(f"naive datetime {value!r}: the pipeline stores aware UTC times only")
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        if len(_SQLITE_TIMES) > 100_000:
            _SQLITE_TIMES.clear()
        _SQLITE_TIMES[value] = text
    return text


def _sqlite_encoder(column_type: Any) -> Callable[[Any], Any] | None:
    if isinstance(column_type, UTCDateTime):
        return sqlite_datetime
    if isinstance(column_type, Date):
        return date.isoformat
    if isinstance(column_type, Boolean):
        return int
    return None


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise LoadError(f"naive datetime {value!r}: the pipeline stores aware UTC times only")
    return value.astimezone(UTC)


def _driver_encoder(column_type: Any) -> Callable[[Any], Any] | None:
    """PostgreSQL (asyncpg) takes Python values as they are; times are checked and made UTC, and booleans
    made ``bool`` (asyncpg refuses 0 and 1 for a boolean)."""
    if isinstance(column_type, UTCDateTime):
        return _aware_utc
    if isinstance(column_type, Boolean):
        return bool
    return None


def _needs_sqlalchemy(table: Table, dialect: Any) -> bool:
    """A column whose type processes bound values in a way the encoders above do not reproduce."""
    return any(
        column.type.dialect_impl(dialect).bind_processor(dialect) is not None
        and not isinstance(column.type, UTCDateTime | Boolean)
        for column in table.columns
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """An upsert compiled once: rows are tuples in ``columns`` order.

    The statement is pre-rendered in the driver's parameter style and executed with ``exec_driver_sql``,
    values encoded here: on SQLite datetimes as UTC text, dates as ISO text, booleans as 0/1; on PostgreSQL
    datetimes checked aware and made UTC, booleans as ``bool``, the rest as asyncpg takes them. Per-row
    SQLAlchemy parameter processing of dictionaries was most of the loader's cost on both. ``sql`` is
    ``None`` when a dialect renders parameters out of column order, or a column's type processes values in
    a way these encoders do not; the Core statement then runs with dictionaries.
    """

    statement: UpsertInsert
    table: str
    columns: tuple[str, ...]
    sql: str | None
    encoders: tuple[tuple[int, Callable[[Any], Any]], ...]
    bulk: BulkUpsert | None = None  # PostgreSQL: large batches by COPY

    def encode(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        if not self.encoders:
            return [tuple(row) for row in rows]
        out: list[tuple[Any, ...]] = []
        for row in rows:
            values = list(row)
            for index, encode in self.encoders:
                value = values[index]
                if value is not None:
                    values[index] = encode(value)
            out.append(tuple(values))
        return out


#: PostgreSQL: a batch of at least this many rows is upserted by ``COPY`` (see :class:`BulkUpsert`)
COPY_MIN_ROWS = 1000


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
    columns: tuple[str, ...]

    @classmethod
    def for_upsert(cls, table: Table, columns: tuple[str, ...], sql: str) -> BulkUpsert | None:
        if " DO UPDATE SET " not in sql:  # DO NOTHING keeps the first of a key: leave it to executemany
            return None
        stage = f"pipeline_stage_{table.name}"
        names = ", ".join(columns)
        keys = ", ".join(c.name for c in table.primary_key.columns)
        create = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
            f"(LIKE {table.name}, stage_order bigserial) ON COMMIT DELETE ROWS"
        )
        latest = f"SELECT DISTINCT ON ({keys}) {names} FROM {stage} ORDER BY {keys}, stage_order DESC"
        insert, on_conflict = sql[: sql.index(" VALUES (")], sql[sql.index(" ON CONFLICT ") :]
        merge = f"{insert} SELECT {names} FROM ({latest}) AS latest{on_conflict}"
        return cls(stage, create, merge, columns)

    async def run(self, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
        """Inside the caller's transaction (the first statement opens it on the driver's connection too)."""
        await conn.exec_driver_sql(self.create)
        import asyncpg  # the optional driver: only PostgreSQL writers get here

        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        try:  # on the driver's own connection: its errors are asyncpg's, not SQLAlchemy's
            await driver.copy_records_to_table(self.stage, records=rows, columns=self.columns)
        except (TypeError, ValueError, OverflowError) as exc:  # asyncpg encodes each value as it sends it
            raise LoadError(f"a value does not fit its column's type ({exc})") from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise LoadError((str(exc) or type(exc).__name__).splitlines()[0]) from None
        await conn.exec_driver_sql(self.merge)
        await conn.exec_driver_sql(f"TRUNCATE {self.stage}")  # the next batch of this transaction starts empty


#: the connection of the write transaction open in this task, per writer (see Writer.transaction)
_ACTIVE: ContextVar[tuple[Writer, AsyncConnection] | None] = ContextVar("active_write", default=None)


class Writer:
    """The process's single database writer."""

    def __init__(self, engine: AsyncEngine, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.engine = engine
        self.chunk_size = chunk_size
        self.lock = asyncio.Lock()
        self._prepared: dict[tuple[str, bool], Prepared] = {}
        self._stage_allowed: bool | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def sqlite_form(self) -> bool:
        """Whether reading rows are built in SQLite's stored forms (see :func:`reading_rows`)."""
        return self.dialect == "sqlite" and self.prepare(air_readings).sql is not None

    def prepare(self, table: Table, *, keep: Sequence[str] = (), coalesce: Sequence[str] = (),
                do_nothing: bool = False) -> Prepared:  # fmt: skip
        key = (table.name, do_nothing)
        if key not in self._prepared:
            statement = upsert_statement(self.dialect, table, keep=keep, coalesce=coalesce, do_nothing=do_nothing)
            columns = tuple(c.name for c in table.columns)
            sql: str | None = None
            encoders: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
            compiled = statement.compile(dialect=self.engine.dialect, column_keys=list(columns))
            driver_ready = self.dialect == "sqlite" or not _needs_sqlalchemy(table, self.engine.dialect)
            if driver_ready and list(compiled.positiontup or ()) == list(columns):
                sql = str(compiled)
                encoder = _sqlite_encoder if self.dialect == "sqlite" else _driver_encoder
                found = ((i, encoder(c.type)) for i, c in enumerate(table.columns))
                encoders = tuple((i, enc) for i, enc in found if enc is not None)
            bulk = BulkUpsert.for_upsert(table, columns, sql) if sql and self.dialect == "postgresql" else None
            self._prepared[key] = Prepared(statement, table.name, columns, sql, encoders, bulk)
        return self._prepared[key]

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

    async def write(self, prepared: Prepared, rows: Sequence[Sequence[Any]], *, encoded: bool = False) -> int:
        """Upsert ``rows`` in chunks, one short transaction each; returns the rows sent.

        ``encoded``: the rows already hold the driver's forms (the readings' fast path, see :func:`reading_rows`).
        """
        written = 0
        for chunk in chunked(rows, self.chunk_size):
            try:
                if prepared.sql is not None:
                    params = chunk if encoded else prepared.encode(chunk)
                    async with self.transaction() as conn:
                        if prepared.bulk is not None and len(chunk) >= COPY_MIN_ROWS and await self._may_stage(conn):
                            await prepared.bulk.run(conn, params)
                        else:
                            await conn.exec_driver_sql(prepared.sql, params)
                else:
                    dicts = [dict(zip(prepared.columns, row, strict=True)) for row in chunk]
                    async with self.transaction() as conn:
                        await conn.execute(prepared.statement, dicts)
            except SQLAlchemyError as exc:
                message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                raise LoadError(redact(f"writing {prepared.table} failed: {message}")) from None
            except LoadError as exc:  # a value the encoders or COPY refused
                raise LoadError(redact(f"writing {prepared.table} failed: {exc}")) from None
            written += len(chunk)
        return written

    async def upsert_air_stations(self, stations: Sequence[AirStation], now: datetime) -> int:
        rows = [(s.station_name, s.sido_name, s.station_code, s.mang_name, now, now) for s in stations]
        prepared = self.prepare(
            air_stations, keep=("first_seen_at",), coalesce=("sido_name", "station_code", "mang_name")
        )
        return await self.write(prepared, rows)

    async def upsert_air_readings(self, readings: Sequence[AirReading], run_id: int, now: datetime) -> int:
        return await self.upsert_reading_rows(reading_rows(readings, run_id, now, sqlite_form=self.sqlite_form))

    async def upsert_reading_rows(self, rows: Sequence[Sequence[Any]]) -> int:
        """Readings already made into rows by :func:`reading_rows` (possibly in another process)."""
        prepared = self.prepare(air_readings)
        return await self.write(prepared, rows, encoded=prepared.sql is not None)

    async def upsert_movies(self, items: Sequence[Movie], run_id: int, now: datetime, *, details: bool = True) -> int:
        fields = _MOVIE_FIELDS
        rows = [(*fields(m), details, now, now, run_id) for m in items]
        if details:
            return await self.write(self.prepare(movies, keep=("first_seen_at",)), rows)
        # a bare list item must never overwrite what the details told us
        return await self.write(self.prepare(movies, do_nothing=True), rows)

    async def insert_snapshots(self, snapshots: Sequence[MovieSnapshot], run_id: int, captured_at: datetime) -> int:
        rows = [(run_id, s.tmdb_id, s.list_name, captured_at, *_SNAPSHOT_VALUES(s)) for s in snapshots]
        return await self.write(self.prepare(movie_snapshots), rows)

    async def insert_rejects(self, items: Sequence[Reject], run_id: int) -> int:
        if not items:
            return 0
        now = datetime.now(UTC)
        rows = [{**asdict(r), "run_id": run_id, "created_at": now} for r in items]
        try:
            async with self.transaction() as conn:
                await conn.execute(rejects.insert(), rows)
        except SQLAlchemyError as exc:
            raise LoadError(redact(f"writing rejects failed: {exc}").splitlines()[0]) from None
        return len(rows)


def reading_rows(
    readings: Sequence[AirReading], run_id: int, now: datetime, *, sqlite_form: bool
) -> list[tuple[Any, ...]]:
    """``air_readings`` rows in column order. Pure, so a worker process can build them.

    ``sqlite_form``: the values SQLite stores (UTC text times) in one pass — the hot path of every run and
    backfill; otherwise Python values (aware datetimes), which asyncpg and SQLAlchemy take as they are.
    """
    if not sqlite_form:
        fields = _READING_FIELDS
        return [(*fields(r), run_id, now) for r in readings]
    rest, times, stamp = _READING_REST, _SQLITE_TIMES, sqlite_datetime(now)
    return [
        (r.station_name, times.get(r.measured_at) or sqlite_datetime(r.measured_at), *rest(r), run_id, stamp)
        for r in readings
    ]


def column_rows(
    columns: AirColumns, run_id: int, now: datetime, *, sqlite_form: bool, keep: Sequence[bool] | None = None
) -> list[tuple[Any, ...]]:
    """:func:`reading_rows` for a page normalised column by column (:func:`to_air_columns`), in C-level passes;
    ``keep`` selects rows (a backfill's date range)."""
    times: list[Any] = columns.measured_at
    stamp: Any = now
    if sqlite_form:
        stamp = sqlite_datetime(now)
        try:
            times = list(map(_SQLITE_TIMES.__getitem__, times))
        except KeyError:
            times = list(map(sqlite_datetime, times))
    n = len(times)
    rows = zip(columns.station_names, times, *columns.values, repeat(run_id, n), repeat(stamp, n), strict=True)
    return list(compress(rows, keep) if keep is not None else rows)


def _check_order(table: Table, fields: Sequence[str], extra: Sequence[str], prefix: Sequence[str] = ()) -> None:
    """The row builders above rely on the record fields being in the table's column order."""
    expected = [c.name for c in table.columns]
    if [*prefix, *fields, *extra] != expected:
        raise AssertionError(f"{table.name}: record fields do not follow the table's columns")


_READING_NAMES = [f.name for f in dataclass_fields(AirReading)]
_READING_FIELDS = attrgetter(*_READING_NAMES)
_READING_REST = attrgetter(*_READING_NAMES[2:])  # everything after station_name and measured_at
_check_order(air_readings, _READING_NAMES, ("run_id", "updated_at"))
if _READING_NAMES[:2] != ["station_name", "measured_at"]:
    raise AssertionError("air_readings: the fast path expects station_name, measured_at first")
_MOVIE_NAMES = [f.name for f in dataclass_fields(Movie)]
_MOVIE_FIELDS = attrgetter(*_MOVIE_NAMES)
_check_order(movies, _MOVIE_NAMES, ("details_fetched", "first_seen_at", "updated_at", "last_run_id"))
_SNAPSHOT_NAMES = [f.name for f in dataclass_fields(MovieSnapshot) if f.name not in ("tmdb_id", "list_name")]
_SNAPSHOT_VALUES = attrgetter(*_SNAPSHOT_NAMES)
_check_order(movie_snapshots, _SNAPSHOT_NAMES, (), prefix=("run_id", "tmdb_id", "list_name", "captured_at"))
