"""An aiohttp.web fake of the TMDB v3 and AirKorea (data.go.kr) APIs, faithful to the recorded formats.

Offline runs are a feature: point the ``base_url``s at a running simulator. See ``shared/reference`` for the
behaviour it reproduces, including faults (429, 5xx HTML, resets, truncated bodies, gateway envelopes).
"""

from __future__ import annotations

from pipeline.simulator.app import create_app
from pipeline.simulator.server import Simulator, serve
from pipeline.simulator.state import (
    OPERATIONS,
    SIM_DATA_GO_KEY,
    SIM_TMDB_API_KEY,
    SIM_TMDB_READ_TOKEN,
    Fault,
    Quirks,
    SimulatorState,
    TmdbQuirks,
)

__all__ = [
    "OPERATIONS",
    "SIM_DATA_GO_KEY",
    "SIM_TMDB_API_KEY",
    "SIM_TMDB_READ_TOKEN",
    "Fault",
    "Quirks",
    "Simulator",
    "SimulatorState",
    "TmdbQuirks",
    "create_app",
    "serve",
]
