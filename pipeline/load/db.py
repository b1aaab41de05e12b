"""Engines and migrations. SQLite gets WAL, a busy timeout and foreign keys on every connection."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pipeline.errors import ConfigError, LoadError
from pipeline.redaction import redact

log = logging.getLogger(__name__)

#: Milliseconds a connection waits for another writer before "database is locked".
DEFAULT_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (``None`` for other backends and in-memory databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def prepare_sqlite_file(url: str) -> None:
    """Create the directory of a SQLite database, or say clearly why it cannot be written."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"database.url: cannot create directory {path.parent}: {exc.strerror}") from None
    target = path if path.exists() else path.parent
    if path.is_dir() or not os.access(target, os.W_OK):
        raise ConfigError(f"database.url: {target} is not writable")


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={DEFAULT_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """The application engine. On SQLite every connection gets the pragmas above."""
    if make_url(url).get_backend_name() == "sqlite":
        prepare_sqlite_file(url)
        kwargs.setdefault("connect_args", {"timeout": DEFAULT_BUSY_TIMEOUT_MS / 1000})
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    return engine


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Apply migrations (blocking; runs the async env.py on its own event loop)."""
    if make_url(url).get_backend_name() == "sqlite":
        prepare_sqlite_file(url)
    try:
        command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as exc:
        raise LoadError(redact(f"migration failed: {exc.__class__.__name__}: {exc}").splitlines()[0]) from None


async def migrate(url: str, revision: str = "head") -> None:
    """Apply migrations from inside a running loop (Alembic's env.py runs in a worker thread)."""
    await asyncio.to_thread(upgrade_sync, url, revision)
    log.debug("database at revision %s", revision)
