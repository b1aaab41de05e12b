"""Engines and migrations, for SQLite (the embedded default) and PostgreSQL (``postgresql+asyncpg://``).

SQLite gets WAL, a busy timeout and foreign keys on every connection. PostgreSQL needs the optional asyncpg
driver (``pip install 'pipeline[postgres]'``); its connections are checked before use (a long-running daemon
outlives server restarts) and carry an ``application_name``.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
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

DEFAULT_CACHE_KIB = 16_384
#: Milliseconds a connection waits for another writer before "database is locked".
DEFAULT_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
POSTGRES_INSTALL_HINT = "pip install 'pipeline[postgres]'"
#: ``application_name`` of the pipeline's PostgreSQL connections (visible in ``pg_stat_activity``).
APPLICATION_NAME = "pipeline"


def backend(url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    return make_url(url).get_backend_name()


def display_url(url: str) -> str:
    """The URL as it may be shown: the password, if any, masked."""
    return make_url(url).render_as_string(hide_password=True)


def require_driver(url: str) -> None:
    """A PostgreSQL URL needs asyncpg, an optional extra; say how to install it. Registers the password
    with the redactor, so that it can never reach a log line or an error message."""
    parsed = make_url(url)
    if parsed.password:
        redact.add(str(parsed.password))
    if parsed.get_backend_name() == "postgresql" and importlib.util.find_spec("asyncpg") is None:
        raise ConfigError(
            f"database.url: PostgreSQL needs the asyncpg driver, which is not installed: {POSTGRES_INSTALL_HINT}"
        )


def prepare_database(url: str) -> None:
    """Everything that can be checked before connecting: the driver, and a SQLite file's directory."""
    require_driver(url)
    prepare_sqlite_file(url)


def error_message(exc: BaseException) -> str:
    """One redacted line for a database error: the driver's own message, without SQLAlchemy's wrapping."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    text = re.sub(r"^\([\w.]+\) ", "", text)  # "(sqlalchemy.dialects.postgresql.asyncpg.Error) ..."
    first = text.strip().splitlines()[0] if text.strip() else ""
    return redact(first or type(exc).__name__)


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
    if path.is_dir():
        raise ConfigError(f"database.url: {path} is not writable")
    # the directory too: SQLite creates its -wal and -shm files there, and migrations their lock file
    for target in (path, path.parent) if path.exists() else (path.parent,):
        if not os.access(target, os.W_OK):
            raise ConfigError(f"database.url: {target} is not writable")


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={DEFAULT_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 16 MB of page cache instead of SQLite's 2 MB (allocated only as used): fewer page reads on large tables
    cursor.execute(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """The application engine. On SQLite every connection gets the pragmas above."""
    require_driver(url)
    if backend(url) == "sqlite":
        prepare_sqlite_file(url)
        kwargs.setdefault("connect_args", {"timeout": DEFAULT_BUSY_TIMEOUT_MS / 1000})
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("connect_args", {"server_settings": {"application_name": APPLICATION_NAME}})
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


@contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    """Processes migrating one SQLite file at once take turns (Alembic's DDL there is not one transaction);
    PostgreSQL's equivalent is the advisory lock that migrations/env.py takes."""
    path = sqlite_path(url)
    if path is None:
        yield
        return
    with path.with_name(path.name + ".migrate.lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes, or the process ends
        yield


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Apply migrations (blocking; runs the async env.py on its own event loop)."""
    prepare_database(url)
    try:
        with _sqlite_migration_lock(url):
            command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as exc:
        raise LoadError(f"migration failed: {exc.__class__.__name__}: {error_message(exc)}") from None
    except OSError as exc:  # the server is down or unreachable (asyncpg raises these unwrapped)
        raise LoadError(f"migration failed: cannot connect to {display_url(url)}: {error_message(exc)}") from None


async def migrate(url: str, revision: str = "head") -> None:
    """Apply migrations from inside a running loop (Alembic's env.py runs in a worker thread)."""
    await asyncio.to_thread(upgrade_sync, url, revision)
    log.debug("database at revision %s", revision)
