"""Run the simulator on a loopback port: ``async with Simulator() as sim: ...`` or ``await serve(...)``."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Final

from aiohttp import web

from pipeline.simulator import tmdb_data
from pipeline.simulator.app import create_app
from pipeline.simulator.state import SimulatorState

logger = logging.getLogger(__name__)

# In-flight handlers (e.g. a "slow" fault whose client already gave up) get this long on stop().
SHUTDOWN_TIMEOUT: Final = 1.0


class Simulator:
    """Both fake APIs on one port (0 = any free port; read the real one back from ``port``)."""

    def __init__(self, state: SimulatorState | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state = state if state is not None else SimulatorState()
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None

    @property
    def state(self) -> SimulatorState:
        return self._state

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("Simulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def tmdb_base_url(self) -> str:
        return f"{self.base_url}/3"

    @property
    def airkorea_base_url(self) -> str:
        return f"{self.base_url}/B552584"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("Simulator is already started")
        # Build the movie catalogue off the event loop now, so the first TMDB request is not slow.
        await asyncio.to_thread(tmdb_data.catalogue)
        runner = web.AppRunner(create_app(self._state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(host: str, port: int, state: SimulatorState) -> None:
    """Serve until cancelled (``pipeline simulate --port N``)."""
    simulator = Simulator(state, host, port)
    await simulator.start()
    try:
        logger.info("simulator listening: TMDB %s, AirKorea %s", simulator.tmdb_base_url, simulator.airkorea_base_url)
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
