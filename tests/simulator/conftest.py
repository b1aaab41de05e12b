from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from pipeline.simulator import Simulator, SimulatorState

# Monday 2025-01-20 12:30 KST: newest AirKorea hour is 12:00, the now_playing window is 2024-12-11..2025-01-22.
FIXED_NOW = datetime(2025, 1, 20, 3, 30, tzinfo=UTC)


@pytest.fixture
def state() -> SimulatorState:
    return SimulatorState(clock=FIXED_NOW)


@pytest.fixture
async def sim(state: SimulatorState) -> AsyncIterator[Simulator]:
    async with Simulator(state) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
