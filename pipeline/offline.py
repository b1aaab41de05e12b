"""``--simulate``: run against the built-in simulator on a free loopback port, with placeholder keys."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pipeline.clock import following
from pipeline.config import Settings
from pipeline.keys import Secrets
from pipeline.simulator import SIM_DATA_GO_KEY, SIM_TMDB_READ_TOKEN, Simulator, SimulatorState

log = logging.getLogger(__name__)


@asynccontextmanager
async def simulated(
    settings: Settings, state: SimulatorState | None = None
) -> AsyncIterator[tuple[Settings, Secrets, Simulator]]:
    """Start the simulator, and yield settings and secrets that point every source at it."""
    simulator = Simulator(state)
    await simulator.start()
    log.info("simulator serving TMDB at %s and AirKorea at %s", simulator.tmdb_base_url, simulator.airkorea_base_url)
    try:
        local = settings.with_base_urls(simulator.tmdb_base_url, simulator.airkorea_base_url)
        with following(simulator.state.now):  # the jobs plan by the simulator's clock (fixed, or moving)
            yield local, Secrets(tmdb_api_key=SIM_TMDB_READ_TOKEN, data_go_api_key=SIM_DATA_GO_KEY), simulator
    finally:
        await simulator.stop()
