"""``pipeline sql``: run one read-only query against the collected data.

SQLite is opened three times over read-only: the file in ``mode=ro``, ``PRAGMA query_only``, and an
authorizer that allows reading and nothing else (no INSERT/UPDATE/DELETE/DDL, no ATTACH, no writing
PRAGMA, no VACUUM INTO). A refused statement leaves the file byte-identical.

PostgreSQL: the session defaults to read-only transactions (``default_transaction_read_only``), the query
runs inside ``BEGIN READ ONLY`` after a first ``SELECT 1`` has taken the snapshot (from then on not even
``SET TRANSACTION READ WRITE`` can lift it), is sent as one prepared statement (one statement only), and the
transaction is rolled back; a statement that got a transaction id anyway (functions such as ``lo_import``
write without checking) is reported as refused. Statements that start with a writing keyword are refused
before the server sees them, as for SQLite. For defence in depth, give ``pipeline sql`` a role that may
only ``SELECT``: a read-only transaction still runs functions such as ``pg_terminate_backend()`` for a
superuser.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sqlite3
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import NullPool

from pipeline.errors import ConfigError, QueryError
from pipeline.load.db import APPLICATION_NAME, backend, create_engine, display_url, error_message, sqlite_path

READ_PRAGMAS = frozenset(
    {
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
        "database_list", "collation_list", "function_list", "module_list", "pragma_list", "compile_options",
        "user_version", "schema_version", "application_id", "journal_mode", "page_count", "page_size",
        "freelist_count", "encoding", "foreign_keys", "integrity_check", "quick_check", "data_version",
    }
)  # fmt: skip  # a word list: packed, not one per line
#: pragmas that *set* something when given a value: only their bare form is allowed
VALUE_PRAGMAS = frozenset(
    {"user_version", "schema_version", "application_id", "journal_mode", "page_size", "encoding", "foreign_keys"}
)
#: statements refused before SQLite sees them (the authorizer and the read-only file refuse the rest)
WRITE_WORDS = frozenset(
    {
        "insert", "update", "delete", "replace", "upsert", "create", "drop", "alter", "attach", "detach", "vacuum",
        "reindex", "analyze", "begin", "commit", "end", "rollback", "savepoint", "release",
    }
)  # fmt: skip  # a word list: packed, not one per line
#: more statements PostgreSQL refuses up front (the read-only transaction refuses the rest)
POSTGRES_WRITE_WORDS = WRITE_WORDS | frozenset(
    {
        "truncate", "copy", "grant", "revoke", "comment", "lock", "set", "reset", "call", "do", "merge", "prepare",
        "execute", "deallocate", "discard", "listen", "notify", "unlisten", "cluster", "refresh", "security",
        "import", "load", "checkpoint", "reassign", "abort", "start", "declare",
    }
)  # fmt: skip  # a word list: packed, not one per line
_COMMENT = re.compile(r"(--[^\n]*\n?|/\*.*?\*/)", re.S)


@dataclass(frozen=True, slots=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _first_word(sql: str) -> str:
    stripped = _COMMENT.sub(" ", sql).lstrip(" \t\r\n(")
    match = re.match(r"[A-Za-z]+", stripped)
    return match.group(0).lower() if match else ""


def _authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in READ_PRAGMAS and not (arg2 is not None and name in VALUE_PRAGMAS):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def connect_read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise ConfigError(f"database.url: {path} does not exist yet; run 'pipeline migrate' or 'pipeline run'")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(_authorizer)
    return conn


def database_file(url: str) -> Path:
    path = sqlite_path(url)
    if path is None:
        raise ConfigError(f"database.url: pipeline sql reads SQLite files; {url.split('://')[0]} is not supported here")
    return path


def run_query(url: str, sql: str) -> Result:
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise QueryError("no query given (pass it as an argument or on standard input)")
    postgres = backend(url) == "postgresql"
    word = _first_word(sql)
    if word in (POSTGRES_WRITE_WORDS if postgres else WRITE_WORDS):
        raise QueryError(f"pipeline sql is read-only: {word.upper()} is refused")
    if postgres:
        return asyncio.run(_postgres(url, lambda conn: _postgres_query(conn, sql)))
    conn = connect_read_only(database_file(url))
    try:
        cursor = conn.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return Result(columns, cursor.fetchall())
    except sqlite3.DatabaseError as exc:
        message = str(exc).splitlines()[0]
        if "not authorized" in message or "readonly" in message or "query_only" in message:
            raise QueryError(f"pipeline sql is read-only: the statement was refused ({message})") from None
        if "one statement at a time" in message:
            raise QueryError("give one statement at a time") from None
        raise QueryError(f"SQL error: {message}") from None
    finally:
        conn.close()


def list_tables(url: str) -> Result:
    if backend(url) == "postgresql":
        return asyncio.run(_postgres(url, _postgres_tables))
    conn = connect_read_only(database_file(url))
    try:
        objects = conn.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()
        rows = []
        for name, kind in objects:
            count = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            rows.append((name, kind, count))
        return Result(["name", "type", "rows"], rows)
    finally:
        conn.close()


# --- PostgreSQL ------------------------------------------------------------------------------------------

_READ_ONLY_SESSION = {"application_name": f"{APPLICATION_NAME} sql", "default_transaction_read_only": "on"}


async def _postgres(url: str, work: Callable[[AsyncConnection], Awaitable[Result]]) -> Result:
    """Run ``work`` in a read-only transaction on a connection of its own, then roll back."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"server_settings": _READ_ONLY_SESSION})
    try:
        try:
            conn = await engine.connect()
        except (SQLAlchemyError, OSError) as exc:
            raise ConfigError(f"database.url: cannot connect to {display_url(url)}: {error_message(exc)}") from None
        try:
            await conn.execution_options(postgresql_readonly=True)  # BEGIN READ ONLY
            await conn.exec_driver_sql("SELECT 1")  # the snapshot is taken: the transaction stays read-only
            return await work(conn)
        except DBAPIError as exc:
            raise _postgres_error(exc) from None
        finally:
            try:
                await conn.rollback()
                await conn.close()
            except (SQLAlchemyError, OSError):
                pass
    finally:
        await engine.dispose()


def _postgres_error(exc: DBAPIError) -> QueryError:
    message = error_message(exc)
    state = str(getattr(exc.orig, "sqlstate", None) or "")
    if state.startswith("25"):  # 25006 read_only_sql_transaction, 25001 read-write mode after the snapshot
        return QueryError(f"pipeline sql is read-only: the statement was refused ({message})")
    if "multiple commands" in message:
        return QueryError("give one statement at a time")
    return QueryError(f"SQL error: {message}")


async def _postgres_query(conn: AsyncConnection, sql: str) -> Result:
    # the driver's own SQL: no bind-parameter parsing of the user's colons or percent signs
    result = await conn.exec_driver_sql(sql)
    found = Result(list(result.keys()), [tuple(row) for row in result.all()]) if result.returns_rows else Result([], [])
    # a few functions write without asking (lo_import, txid_current): any write assigns a transaction id
    if (await conn.exec_driver_sql("SELECT pg_current_xact_id_if_assigned()")).scalar() is not None:
        raise QueryError("pipeline sql is read-only: the statement wrote to the database (rolled back)")
    return found


async def _postgres_tables(conn: AsyncConnection) -> Result:
    objects = await conn.exec_driver_sql(
        "SELECT table_name AS name, CASE table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END AS kind "
        "FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    found = sorted((str(m["kind"]), str(m["name"])) for m in objects.mappings())  # as SQLite orders them
    rows: list[tuple[Any, ...]] = []
    for kind, name in found:
        quoted = '"' + name.replace('"', '""') + '"'
        count = (await conn.exec_driver_sql(f"SELECT count(*) FROM {quoted}")).scalar_one()
        rows.append((name, kind, count))
    return Result(["name", "type", "rows"], rows)


# --- output ----------------------------------------------------------------------------------------------


NUMBERS = (int, float, Decimal)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):  # PostgreSQL's timestamps; shown as SQLite's UTC text is, plus the offset
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(_plain(value))


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


def format_table(result: Result) -> str:
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(result.columns)]
    numeric = [
        all(isinstance(row[i], NUMBERS) or row[i] is None for row in result.rows) and bool(result.rows)
        for i in range(len(result.columns))
    ]
    lines = ["  ".join(_pad(c, w, False) for c, w in zip(result.columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(_pad(c, w, n) for c, w, n in zip(row, widths, numeric, strict=True)).rstrip())
    lines.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(lines)


def format_csv(result: Result) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([[_plain(v) for v in row] for row in result.rows])
    return out.getvalue().rstrip("\n")


def format_json(result: Result) -> str:
    records = [dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows]
    return json.dumps(records, ensure_ascii=False, indent=2, default=str)


def render(result: Result, fmt: str) -> str:
    return {"table": format_table, "csv": format_csv, "json": format_json}[fmt](result)
