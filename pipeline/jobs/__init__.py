"""The jobs, declared once: what each collects, from which source, what it costs, how it catches up.

The runner, the scheduler, the CLI and ``pipeline status`` ask these declarations instead of comparing job
names. Adding a job is one :class:`Job` here (its name in :data:`pipeline.config.JobName`, with a default
schedule in ``pipeline.config``) and its ``collect`` function in the source's module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pipeline.config import DataTerm, JobName, Settings, SourceSettings
from pipeline.jobs import airkorea, stations, tmdb
from pipeline.jobs.context import JobReport, RunContext

Source = Literal["tmdb", "airkorea"]
Collect = Callable[[RunContext, JobReport], Awaitable[None]]
PlannedCalls = Callable[[Settings, DataTerm | None], dict[str, int]]


def _always(_settings: Settings) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Job:
    name: JobName
    source: Source
    collects: str
    collect: Collect
    planned_calls: PlannedCalls
    """Calls per operation one run makes (checked against the daily quota before it starts)."""
    ready: Callable[[Settings], bool] = _always
    """What the job needs beyond its source and schedule entry being enabled."""
    after: tuple[JobName, ...] = ()
    """Jobs that, when they run in the same run (a cycle), finish before this one starts."""

    def source_settings(self, settings: Settings) -> SourceSettings:
        return settings.sources.tmdb if self.source == "tmdb" else settings.sources.airkorea

    def enabled(self, settings: Settings) -> bool:
        """The job runs when its source is enabled, its schedule entry is, and it has what it needs."""
        schedule = settings.schedule.jobs.get(self.name)
        return (
            schedule is not None
            and schedule.enabled
            and self.source_settings(settings).enabled
            and self.ready(settings)
        )


JOBS: dict[JobName, Job] = {
    job.name: job
    for job in (
        Job(
            name="tmdb",
            source="tmdb",
            collects="now-playing movies with their details",
            collect=tmdb.collect_now_playing,
            planned_calls=tmdb.planned_calls,
        ),
        Job(
            name="airkorea_sido",
            source="airkorea",
            collects="every station's newest hour, per province",
            collect=airkorea.collect_sido,
            planned_calls=airkorea.sido_calls,
        ),
        Job(
            name="airkorea_stations",
            source="airkorea",
            collects="hourly series of the watch-list stations and of stations with holes (self-healing)",
            collect=stations.collect_stations,
            planned_calls=stations.station_calls,
            after=("airkorea_sido",),
        ),
    )
}
JOB_NAMES: tuple[JobName, ...] = tuple(JOBS)


def enabled_jobs(settings: Settings) -> list[Job]:
    return [job for job in JOBS.values() if job.enabled(settings)]


__all__ = ["JOBS", "JOB_NAMES", "Job", "JobReport", "RunContext", "enabled_jobs"]
