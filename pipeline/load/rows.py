"""Row codecs: records and columns → the rows a database driver takes, in the table's column order.

A :class:`RowCodec` belongs to one table on one backend; the writer hands it out with its compiled statement
(:class:`~pipeline.load.statements.Prepared`). It is a plain, picklable value, so a backfill's worker process
can encode rows with the very codec the writer will check them against (:class:`Encoded` carries it): no
caller keeps a flag in step with the loader. Encoding is column by column, in C-level passes where a column
needs no work, which is most of them; values the database stores differently are converted here:

* SQLite: aware datetimes → UTC text ``YYYY-MM-DD HH:MM:SS`` (the form :class:`~pipeline.load.tables.UTCDateTime`
  stores; the same hours recur, so the text is cached), dates → ISO text, booleans → 0/1;
* PostgreSQL (asyncpg): datetimes checked aware and made UTC, booleans made ``bool`` (asyncpg refuses 0/1);
* the Core fallback (a column type whose own bind processing these do not reproduce): nothing, since
  SQLAlchemy processes the values.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import repeat
from typing import Any, Literal

from sqlalchemy import Boolean, Date, Table
from xxhash import xxh3_64_intdigest

from pipeline.errors import LoadError
from pipeline.load.tables import UTCDateTime, air_readings
from pipeline.resources import cyclic_gc_paused
from pipeline.transform.airkorea import AirBatch, AirReading

Form = Literal["sqlite", "asyncpg", "core"]
#: encodes one column (a list of values, ``None`` for NULL) into what the driver takes
ColumnEncoder = Callable[[Sequence[Any]], list[Any]]

_SIGNED = 1 << 63  # an unsigned 64-bit digest, shifted into a signed BIGINT's range
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


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise LoadError(f"naive datetime {value!r}: the pipeline stores aware UTC times only")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def sqlite_times(column: Sequence[Any]) -> list[Any]:
    try:
        return list(map(_SQLITE_TIMES.__getitem__, column))  # hours already seen: one C-level pass
    except (KeyError, TypeError):
        return [None if value is None else sqlite_datetime(value) for value in column]


def iso_dates(column: Sequence[Any]) -> list[Any]:
    return [None if value is None else date.isoformat(value) for value in column]


def ints(column: Sequence[Any]) -> list[Any]:
    return [None if value is None else int(value) for value in column]


def bools(column: Sequence[Any]) -> list[Any]:
    return [None if value is None else bool(value) for value in column]


def aware_times(column: Sequence[Any]) -> list[Any]:
    return [value if value is None or value.tzinfo is UTC else _aware_utc(value) for value in column]


def _encoder(form: Form, column_type: Any) -> ColumnEncoder | None:
    if form == "sqlite":
        if isinstance(column_type, UTCDateTime):
            return sqlite_times
        if isinstance(column_type, Date):
            return iso_dates
        if isinstance(column_type, Boolean):
            return ints
    elif form == "asyncpg":
        if isinstance(column_type, UTCDateTime):
            return aware_times
        if isinstance(column_type, Boolean):
            return bools
    return None


@dataclass(frozen=True, slots=True)
class Constant:
    """A column that holds one value in every row (``run_id``, ``updated_at``): encoded once."""

    value: Any


@dataclass(frozen=True, slots=True)
class RowCodec:
    """How rows of one table are encoded for one backend's driver. Picklable: functions are module-level."""

    table: str
    form: Form
    columns: tuple[str, ...]
    encoders: tuple[ColumnEncoder | None, ...]

    @classmethod
    def for_table(cls, table: Table, form: Form) -> RowCodec:
        columns = tuple(c.name for c in table.columns)
        return cls(table.name, form, columns, tuple(_encoder(form, c.type) for c in table.columns))

    def encode_columns(self, columns: Sequence[Sequence[Any] | Constant], count: int) -> Encoded:
        """Rows from one sequence (or :class:`Constant`) per table column, each ``count`` long."""
        if len(columns) != len(self.columns):
            raise LoadError(f"{self.table}: {len(columns)} columns given for {len(self.columns)}")
        out: list[Any] = []
        for column, encode in zip(columns, self.encoders, strict=True):
            if isinstance(column, Constant):
                value = column.value if encode is None or column.value is None else encode([column.value])[0]
                out.append(repeat(value, count))
            else:
                out.append(column if encode is None else encode(column))
        with cyclic_gc_paused():
            return Encoded(self, list(zip(*out, strict=True)) if count else [])

    def encode(self, rows: Sequence[Sequence[Any]]) -> Encoded:
        """Rows given as records (tuples in column order)."""
        if not rows:
            return Encoded(self, [])
        return self.encode_columns(list(zip(*rows, strict=True)), len(rows))


@dataclass(frozen=True, slots=True)
class Encoded:
    """Rows in a codec's form; the writer takes them only with a statement of the same codec."""

    codec: RowCodec
    rows: list[tuple[Any, ...]]

    def __len__(self) -> int:
        return len(self.rows)


def values_digests(values: Sequence[Sequence[Any]]) -> list[int]:
    """Per row, a 64-bit fingerprint of its values (one sequence per column): XXH3-64 of their ``marshal``
    (version 2: no back-references, so equal values give equal bytes whatever the objects), shifted into a
    signed BIGINT. Equal values always give the same digest; a value of another type (``41.0`` for ``41``)
    gives another, which only costs a comparison in SQL. About 0.9 µs a reading (BLAKE2b took 1.8)."""
    xxh, dumps = xxh3_64_intdigest, marshal.dumps
    return [xxh(dumps(row, 2)) - _SIGNED for row in zip(*values, strict=True)]


def reading_columns(batch: AirBatch, run_id: int, now: datetime) -> list[Sequence[Any] | Constant]:
    """``air_readings``'s columns from a transform batch: the batch's, then ``run_id``, ``updated_at`` and the
    values' digest."""
    return [batch.station_names, batch.measured_at, *batch.values, Constant(run_id), Constant(now),
            values_digests(batch.values)]  # fmt: skip


def encode_readings(codec: RowCodec, batch: AirBatch, run_id: int, now: datetime) -> Encoded:
    """A batch as ``air_readings`` rows in ``codec``'s form. Pure, so a worker process can run it. One pause of
    the cyclic collector covers the digests and the rows (each re-enabling costs a collection)."""
    with cyclic_gc_paused():
        return codec.encode_columns(reading_columns(batch, run_id, now), len(batch))


# the batch's columns are AirReading's fields, in order: they must follow the table's
if [*AirReading.__dataclass_fields__, "run_id", "updated_at", "values_digest"] != [
    c.name for c in air_readings.columns
]:
    raise AssertionError("air_readings: AirReading's fields do not follow the table's columns")
