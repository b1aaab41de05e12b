from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipeline.load.db import create_engine, migrate
from pipeline.load.upsert import Writer


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[Writer]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    await migrate(url)
    engine = create_engine(url)
    try:
        yield Writer(engine, chunk_size=100)
    finally:
        await engine.dispose()
