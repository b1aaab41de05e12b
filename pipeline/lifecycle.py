"""The lifecycle of every command that writes, written once: (the simulator), migrate, engine, writer, and the
runs a dead process left ``running`` marked as failed; everything closed after.

``run --once``, ``backfill``, the daemon and ``replay`` open their database through :func:`writing`, so a
``pipeline backfill`` killed by SIGKILL is cleaned up by the next command of any kind, not only by the daemon.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.config import Settings
from pipeline.keys import Secrets
from pipeline.load.db import create_engine, migrate
from pipeline.load.runs import mark_abandoned
from pipeline.load.writer import Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Opened:
    """What a writing command works with: settings and secrets (pointing at the simulator with
    ``simulate``), the engine and the process's one writer."""

    settings: Settings
    secrets: Secrets
    engine: AsyncEngine
    writer: Writer


@asynccontextmanager
async def writing(settings: Settings, secrets: Secrets, *, simulate: bool = False) -> AsyncIterator[Opened]:
    """Open the database for a writing command (see the module docstring); ``simulate`` starts the built-in
    simulator first and points every source at it, with its placeholder keys."""
    async with AsyncExitStack() as stack:
        if simulate:
            from pipeline.offline import simulated  # the simulator's web app: only when asked for

            settings, secrets, _simulator = await stack.enter_async_context(simulated(settings))
        await migrate(settings.database.url)
        engine = create_engine(settings.database.url)
        stack.push_async_callback(engine.dispose)
        writer = Writer(engine, settings.database.chunk_size)
        abandoned = await mark_abandoned(writer)
        if abandoned:
            log.warning("marked %d run(s) left running by a process that ended as failed", abandoned)
        yield Opened(settings, secrets, engine, writer)
