"""One daemon per database, on both backends: a flock next to the SQLite file, an advisory lock in PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import parse_settings
from pipeline.errors import AlreadyRunning, LockLost
from pipeline.load.db import migrate
from pipeline.lock import DaemonLock, advisory_key, daemon_pid
from pipeline.offline import simulated
from pipeline.scheduler import Daemon
from pipeline.simulator import SimulatorState
from tests.backends import fetch, fetch_async, wait_until

HOLDER = """
import asyncio, sys
from pipeline.lock import DaemonLock

async def main():
    lock = DaemonLock(sys.argv[1])
    await lock.acquire()
    print("locked", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_the_advisory_key_is_stable() -> None:
    # two versions of the pipeline must compute the same key, or both would run on one database
    assert advisory_key("pipeline") == 0x192FA37F95C3E9EF  # blake2b-64 of "pipeline daemon:pipeline"
    assert advisory_key("pipeline") != advisory_key("pipeline2")
    assert -(2**63) <= advisory_key("x") < 2**63


async def test_a_second_daemon_is_refused_until_the_first_releases(db_url: str) -> None:
    first = DaemonLock(db_url)
    await first.acquire()
    try:
        assert await daemon_pid(db_url) == os.getpid()
        with pytest.raises(AlreadyRunning, match=rf"another pipeline daemon \(pid {os.getpid()}\) is already running"):
            await DaemonLock(db_url).acquire()
    finally:
        await first.release()
    assert await daemon_pid(db_url) is None
    async with DaemonLock(db_url):  # free again
        assert await daemon_pid(db_url) == os.getpid()


async def test_a_killed_holder_releases_the_lock(db_url: str, backend: str) -> None:
    if backend == "sqlite":
        await migrate(db_url)  # the lock file lives beside the database file
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, db_url, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"locked\n"
        assert await daemon_pid(db_url) == proc.pid
        with pytest.raises(AlreadyRunning, match=rf"\(pid {proc.pid}\)"):
            await DaemonLock(db_url).acquire()
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    async def free() -> bool:
        return await daemon_pid(db_url) is None

    await wait_until(free, 20)  # the kernel closed the file / the socket: the lock went with the process
    async with DaemonLock(db_url):
        pass


@pytest.mark.backends("postgresql")
async def test_a_lost_lock_connection_is_noticed(db_url: str, postgres_server: Any) -> None:
    lock = DaemonLock(db_url)
    await lock.acquire()
    try:
        watch = asyncio.create_task(lock.wait_lost(0.05))
        await asyncio.sleep(0.2)
        assert not watch.done()
        terminated = await fetch_async(
            postgres_server.dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name",
            {"name": f"pipeline daemon pid={os.getpid()}"},
        )
        assert terminated == [(True,)]
        await asyncio.wait_for(watch, 10)
        assert await daemon_pid(db_url) is None
    finally:
        await lock.release()


@pytest.fixture
async def pg_daemon(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Daemon, asyncio.Task[None]]]:
    settings = parse_settings(
        {"database": {"url": db_url},
         "sources": {"tmdb": {"enabled": False}, "airkorea": {"sidos": ["세종"], "stations": ["종로구"], "rate_limit": 50}},
         "schedule": {"shutdown_grace": 5, "jobs": {j: {"cron": "0 3 1 1 *"} for j in ("airkorea_sido", "airkorea_stations")}}}
    )  # fmt: skip
    async with simulated(settings, SimulatorState()) as (local, secrets, _sim):
        daemon = Daemon(local, secrets)
        daemon.lock_check_interval = 0.1
        task = asyncio.create_task(daemon.run())
        try:
            yield daemon, task
        finally:
            daemon.stop_event.set()
            await asyncio.wait([task], timeout=30)


@pytest.mark.backends("postgresql")
async def test_the_daemon_stops_when_its_lock_connection_dies(
    pg_daemon: tuple[Daemon, asyncio.Task[None]], db_url: str, postgres_server: Any
) -> None:
    daemon, task = pg_daemon

    async def caught_up() -> bool:
        rows = await fetch_async(db_url, "SELECT count(*) FROM runs WHERE status = 'success'") if daemon.writer else []
        return bool(rows) and rows[0][0] >= 2

    await wait_until(caught_up, 60)
    assert await daemon_pid(db_url) == os.getpid()
    fetch(postgres_server.dsn.replace("postgresql://", "postgresql+asyncpg://"),
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name",
          {"name": f"pipeline daemon pid={os.getpid()}"})  # fmt: skip
    with pytest.raises(LockLost, match="connection holding the daemon lock closed"):
        await asyncio.wait_for(task, 30)
    assert await fetch_async(db_url, "SELECT count(*) FROM daemon_jobs") == [(0,)]
