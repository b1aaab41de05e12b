"""The two database backends of the test suite: SQLite files in tmp_path, and a throwaway PostgreSQL database.

PostgreSQL is found at ``$PIPELINE_TEST_POSTGRES`` (an admin DSN, default
``postgresql://postgres@127.0.0.1:5432/postgres``). The session creates one database with a unique name,
``pipeline_test_<pid>_<random>``, empties it before every test that asks for it, and drops it at the end
(terminating whatever is still connected). Helpers here run SQL on either backend from sync or async code.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")


def admin_dsn() -> str:
    return os.environ.get("PIPELINE_TEST_POSTGRES", DEFAULT_ADMIN_DSN)


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, whether or not this thread already runs a loop."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _admin(dsn: str, *statements: str) -> list[list[tuple[Any, ...]]]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return [[tuple(r) for r in await conn.fetch(sql)] for sql in statements]
    finally:
        await conn.close()


def unavailable_reason() -> str | None:
    """Why the PostgreSQL half cannot run here, or ``None`` when it can."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed (pip install -e '.[dev]')"
    try:
        run_sync(lambda: _admin(admin_dsn(), "SELECT 1"))
    except Exception as exc:
        shown = make_url(admin_dsn()).render_as_string(hide_password=True)
        return f"no PostgreSQL server answers at {shown} ({type(exc).__name__}: {exc})"
    return None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresServer:
    """The session's throwaway database on the test server."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.name = f"pipeline_test_{os.getpid()}_{secrets.token_hex(4)}"
        host, _, _db = dsn.rpartition("/")
        self.database_dsn = f"{host}/{self.name}"
        self.url = "postgresql+asyncpg://" + self.database_dsn.split("://", 1)[1]

    def _terminate(self) -> str:
        return (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
        )

    def create(self) -> None:
        run_sync(lambda: _admin(self.dsn, f"CREATE DATABASE {_quote(self.name)}"))

    def drop(self) -> None:
        run_sync(lambda: _admin(self.dsn, self._terminate(), f"DROP DATABASE IF EXISTS {_quote(self.name)}"))

    def reset(self) -> None:
        """An empty database: other connections ended (and their advisory locks with them), schema dropped."""
        run_sync(lambda: _admin(self.dsn, self._terminate()))
        run_sync(lambda: _admin(self.database_dsn, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"))

    def url_for(self, database: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + database


# --- running SQL on either backend -----------------------------------------------------------------------


async def fetch_async(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params or {})
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


def fetch(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (committed, for writes), from sync code."""
    return run_sync(lambda: fetch_async(url, sql, params))


async def names_async(url: str) -> tuple[set[str], set[str]]:
    """Table and view names."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: (set(inspect(sync).get_table_names()), set(inspect(sync).get_view_names()))
            )
    finally:
        await engine.dispose()


def plain(value: Any) -> Any:
    """One spelling for both backends: times as UTC ``YYYY-MM-DD HH:MM:SS`` text, dates as ISO text,
    ``Decimal`` as float, floats rounded to 9 digits (SQLite and PostgreSQL sum doubles differently)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return round(value, 9)
    return value


def plain_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(plain(v) for v in row) for row in rows]


async def wait_until(predicate: Callable[[], Awaitable[bool]], limit: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
