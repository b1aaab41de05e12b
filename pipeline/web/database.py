"""The web surface's database handle: read-only, whatever the backend.

SQLite: the file is opened ``mode=ro`` (the same as ``pipeline sql``) with ``PRAGMA query_only``, so no
statement of the dashboard can write, even by mistake; a daemon writing the file meanwhile is read in WAL
snapshots. PostgreSQL: every transaction of the session is read-only (``default_transaction_read_only``).
Every query of the web surface is our own, with its values bound; nothing a request sends becomes SQL text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pipeline.errors import ConfigError
from pipeline.load.db import APPLICATION_NAME, DEFAULT_BUSY_TIMEOUT_MS, backend, require_driver, sqlite_path

#: SQLite page cache of a web connection (KiB): the dashboard's queries read recent hours of large tables
CACHE_KIB = 32_768


def read_only_engine(url: str) -> AsyncEngine:
    """An engine that can only read ``url``'s database (see the module docstring)."""
    require_driver(url)
    if backend(url) == "sqlite":
        path = sqlite_path(url)
        if path is None:
            raise ConfigError("database.url: the web surface reads a SQLite file, not an in-memory database")
        if not path.exists():
            raise ConfigError(f"database.url: {path} does not exist yet; run 'pipeline migrate' or 'pipeline run'")
        read_only = make_url(url).set(database=f"file:{path.resolve()}", query={"mode": "ro", "uri": "true"})
        engine = create_async_engine(
            read_only, connect_args={"timeout": DEFAULT_BUSY_TIMEOUT_MS / 1000}, pool_size=2, max_overflow=2
        )
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        return engine
    session = {"application_name": f"{APPLICATION_NAME} web", "default_transaction_read_only": "on"}
    return create_async_engine(
        url, pool_size=2, max_overflow=2, pool_pre_ping=True, connect_args={"server_settings": session}
    )


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.execute(f"PRAGMA busy_timeout = {DEFAULT_BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    cursor.close()
