"""Alembic environment: async engine, batch mode for SQLite, shares a caller's connection when given one.

On PostgreSQL the whole upgrade is one transaction that first takes a transaction-scoped advisory lock, so
that two processes migrating at once (a daemon and a ``run --once`` starting together) run one after the
other instead of both creating the same tables (for SQLite, ``pipeline.load.db`` holds a file lock).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import event, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from pipeline.load.tables import metadata

config = context.config

# Run in-process, the pipeline configures logging itself; never let fileConfig disable its loggers.
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata

#: key of the advisory lock that serialises migrations on PostgreSQL (any fixed 64-bit number)
MIGRATION_LOCK_KEY = 0x70697065_6D696772  # "pipemigr"


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # SQLite: the whole upgrade is one transaction too (BEGIN emitted below), so a process killed half-way
    # leaves the database as it was, never half-migrated with tables that block the next attempt.
    _configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def run_async_migrations() -> None:
    # NullPool and no foreign-key pragma: batch mode recreates tables, which FKs would block.
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    if engine.dialect.name == "sqlite":
        # Python's sqlite3 does not put DDL in a transaction; take over BEGIN (SQLAlchemy's documented recipe)
        @event.listens_for(engine.sync_engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL from the database's birth: switching a busy database to WAL later needs it to itself
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
