"""One daemon per database.

SQLite: an exclusive ``flock`` on ``<database>.lock``. The kernel releases it when the process ends, however
it ends (SIGKILL, a crash, a reboot), so a dead daemon can never leave it stuck. The file also holds the
owner's pid, for the error message and ``pipeline status``.

PostgreSQL: a session-level advisory lock, ``pg_try_advisory_lock(key)`` with a stable 64-bit key derived
from the database name, held on a dedicated autocommit connection for the daemon's lifetime. The server
releases it when that connection closes, however the process ends. The connection's ``application_name``
carries the owner's pid, which ``pipeline status`` reads back from ``pg_locks`` and ``pg_stat_activity``.
If the connection is lost while the daemon runs (a server restart), the lock is gone with it:
:meth:`DaemonLock.wait_lost` tells the daemon, which then stops rather than run unguarded.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from pipeline.errors import AlreadyRunning, LoadError
from pipeline.load.db import APPLICATION_NAME, backend, create_engine, display_url, error_message, sqlite_path

#: ``application_name`` of the connection that holds a daemon's lock: ``pipeline daemon pid=<pid>``
DAEMON_APPLICATION_NAME = f"{APPLICATION_NAME} daemon"
_OWNER = re.compile(rf"^{re.escape(DAEMON_APPLICATION_NAME)} pid=(\d+)")
#: seconds between two checks that the PostgreSQL lock connection is still alive
DEFAULT_CHECK_INTERVAL = 30.0

_HOLDER_SQL = text(
    "SELECT a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid)"
)


def lock_path(url: str) -> Path | None:
    path = sqlite_path(url)
    return path.with_name(path.name + ".lock") if path is not None else None


def advisory_key(database: str) -> int:
    """The daemon lock's key for a PostgreSQL database: stable across processes, versions and machines."""
    digest = hashlib.blake2b(f"pipeline daemon:{database}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _key_halves(key: int) -> dict[str, int]:
    """``pg_locks`` shows a bigint advisory key as ``classid`` (high 32 bits) and ``objid`` (low 32 bits)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}


async def _database_key(conn: AsyncConnection) -> int:
    name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
    return advisory_key(str(name))


async def _holder_pid(conn: AsyncConnection, key: int) -> int | None:
    """The pid of the daemon holding ``key`` (-1 when held by a process that does not say), or ``None``."""
    rows = (await conn.execute(_HOLDER_SQL, _key_halves(key))).all()
    if not rows:
        return None
    match = _OWNER.match(rows[0][0] or "")
    return int(match.group(1)) if match else -1


def _already_running(owner: object, where: str) -> AlreadyRunning:
    return AlreadyRunning(
        f"another pipeline daemon (pid {owner}) is already running on this database ({where}); "
        "stop it first, or point database.url elsewhere"
    )


class DaemonLock:
    """``await lock.acquire()`` … ``await lock.release()``, or ``async with DaemonLock(url):``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend = backend(url)
        self.path = lock_path(url)
        self._file: IO[str] | None = None
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> None:
        if self.backend == "postgresql":
            await self._acquire_advisory()
        else:
            self._acquire_flock()

    async def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None
        conn, engine = self._conn, self._engine
        self._conn = self._engine = None
        if conn is not None:
            try:
                await conn.execute(text("SELECT pg_advisory_unlock_all()"))
                await conn.close()
            except (SQLAlchemyError, OSError):
                pass  # the connection is gone already, and the lock with it
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> DaemonLock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    async def wait_lost(self, interval: float = DEFAULT_CHECK_INTERVAL) -> None:
        """Return when the lock is no longer held: its PostgreSQL connection died (a flock cannot be lost)."""
        if self.backend != "postgresql":
            await asyncio.Event().wait()
        while True:
            await asyncio.sleep(interval)
            if self._conn is None:
                return
            try:
                await self._conn.execute(text("SELECT 1"))
            except (SQLAlchemyError, OSError):
                return

    def _acquire_flock(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise _already_running(owner, str(self.path.with_suffix(""))) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    async def _acquire_advisory(self) -> None:
        # a dedicated connection, outside any pool: the lock lives exactly as long as it does
        engine = create_engine(
            self.url,
            poolclass=NullPool,
            connect_args={"server_settings": {"application_name": f"{DAEMON_APPLICATION_NAME} pid={os.getpid()}"}},
        )
        try:
            conn = await engine.connect()
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            key = await _database_key(conn)
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})).scalar_one()
            if not got:
                owner = await _holder_pid(conn, key)
                await conn.close()
                raise _already_running("unknown" if owner in (None, -1) else owner, display_url(self.url))
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise LoadError(f"cannot take the daemon lock on {display_url(self.url)}: {error_message(exc)}") from None
        except BaseException:
            await engine.dispose()
            raise
        self._engine, self._conn = engine, conn


async def daemon_pid(url: str, engine: AsyncEngine | None = None) -> int | None:
    """The pid of the daemon running on this database (-1 when it cannot be told), or ``None`` when none is.

    For PostgreSQL ``engine`` is used when given (else a short-lived one is made); nothing is locked.
    """
    if backend(url) == "postgresql":
        own = engine is None
        engine = engine or create_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await _holder_pid(conn, await _database_key(conn))
        finally:
            if own:
                await engine.dispose()
    path = lock_path(url)
    if path is None or not path.exists():
        return None
    with path.open("r", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            content = handle.read().strip()
            return int(content) if content.isdigit() else -1
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
