"""What the requests of a run did, per source and per job: counts, failures, actions, time. No I/O."""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestStats:
    """What one source did during one run."""

    requests: Counter[str] = field(default_factory=Counter)  # per operation, every attempt
    failures: Counter[str] = field(default_factory=Counter)  # per error class, every failed attempt
    actions: Counter[str] = field(default_factory=Counter)  # "transient:retried", "auth:stopped_source", ...
    retries: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # "fetch" (request + body), "parse" (classify)

    def add_time(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "failures": dict(self.failures),
            "actions": dict(self.actions),
            "retries": self.retries,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


#: The stats of the job being run in this task (and the tasks it spawns); requests are counted there too.
job_stats: ContextVar[RequestStats | None] = ContextVar("job_stats", default=None)
