from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


@pytest.fixture(autouse=True)
def _clean_redactor() -> Any:
    from pipeline.redaction import redact

    redact.clear()
    yield
    redact.clear()


# --- database backends: every test that asks for `backend` (or `db_url`) runs on SQLite and PostgreSQL ---

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):  # the test parametrizes it itself
        names = marker.args[0]
        if "backend" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)):
            return
    marker = metafunc.definition.get_closest_marker("backends")
    names = marker.args if marker else BACKENDS
    params = [pytest.param(n, id=n, marks=[pytest.mark.postgres] if n == "postgresql" else []) for n in names]
    metafunc.parametrize("backend", params, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql`` (parametrized by ``pytest_generate_tests``; narrow with ``@backends``)."""
    return str(request.param)


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    """The session's throwaway PostgreSQL database (unique name, dropped at the end).

    No server: the PostgreSQL tests are skipped with the reason, except under CI=true, where they fail.
    """
    from tests.backends import PostgresServer, admin_dsn, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true requires PostgreSQL for the test suite: {reason}", pytrace=False)
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    server = PostgresServer(admin_dsn())
    server.create()
    try:
        yield server
    finally:
        server.drop()


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """The session database, emptied for this test."""
    postgres_server.reset()
    return str(postgres_server.url)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the test's backend."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def writer(db_url: str) -> Any:
    """The process's writer on a freshly migrated database of each backend (tests/load overrides the chunk size)."""
    from pipeline.load.db import create_engine, migrate
    from pipeline.load.writer import Writer

    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        yield Writer(engine)
    finally:
        await engine.dispose()
