"""The time the jobs plan with: the wall clock, or the simulator's while a simulator serves the sources.

The jobs ask :func:`now` what hour AirKorea should have published, which holes are still inside the API's
window and which KST day's quota and heal budget a call counts against. Against the simulator those answers
must follow the simulator's clock (fixed in tests, moving in the bench's simulated day), so
:func:`pipeline.offline.simulated` makes it the clock of everything run inside it (a context variable: a
task started inside inherits it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


_CLOCK: ContextVar[Clock] = ContextVar("pipeline_clock", default=wall_clock)


def now() -> datetime:
    """The current time, aware UTC, by the clock in force."""
    return _CLOCK.get()()


def current() -> Clock:
    return _CLOCK.get()


@contextmanager
def following(clock: Clock) -> Iterator[None]:
    """Make ``clock`` the time of everything run inside the block (and of tasks it starts)."""
    token = _CLOCK.set(clock)
    try:
        yield
    finally:
        _CLOCK.reset(token)
