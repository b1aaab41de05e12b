"""One daemon per database.

For SQLite the lock is an exclusive ``flock`` on ``<database>.lock``: the kernel releases it when the process
ends, however it ends (SIGKILL, a crash, a reboot), so a dead daemon can never leave it stuck. The file also
holds the owner's pid, for the error message and ``pipeline status``.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from pipeline.errors import PipelineError
from pipeline.load.db import sqlite_path


class AlreadyRunning(PipelineError):
    """Another daemon holds the lock of this database."""


def lock_path(url: str) -> Path | None:
    path = sqlite_path(url)
    return path.with_name(path.name + ".lock") if path is not None else None


class DaemonLock:
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = lock_path(url)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
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
            raise AlreadyRunning(
                f"another pipeline daemon (pid {owner}) is already running on this database "
                f"({self.path.with_suffix('')}); stop it first, or point database.url elsewhere"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def daemon_pid(url: str) -> int | None:
    """The pid of the daemon running on this database, or ``None`` when none is."""
    path = lock_path(url)
    if path is None or not path.exists():
        return None
    with path.open("r", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
