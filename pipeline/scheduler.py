"""The daemon: an APScheduler 3 timetable from ``config.yaml``, run inside the asyncio loop.

Start-up: take the database's daemon lock (a flock for SQLite, an advisory lock for PostgreSQL), migrate,
mark runs left ``running`` by a dead process as failed, then start the scheduler and catch up any job whose
last success is older than its period. Should the PostgreSQL lock's connection close (a server restart),
the daemon stops as on SIGTERM and exits 1, so that a supervisor restarts it under a fresh lock.

Every job run goes through :class:`JobTracker`, which knows the in-flight tasks. On SIGTERM or SIGINT the
scheduler is paused (no new runs), in-flight runs get ``schedule.shutdown_grace`` seconds to finish, then are
cancelled (recorded ``failed``, "cancelled (shutdown)"); the HTTP session and the engine are closed, and the
process exits 0. APScheduler's own ``shutdown()`` would cancel coroutine jobs at once, hence the tracker.

A job may ask to run again (``JobReport.retry_at``): the province poll does when the newest hour is not
published yet, and gets one extra run (trigger ``late``) unless its next scheduled run comes first (at most
:data:`MAX_LATE_RUNS` between two scheduled runs). A job
waits for the running jobs it comes ``after`` (the station job for the province poll), as in a cycle.

Missed windows (the loop was blocked or the machine asleep for longer than ``misfire_grace_time``) and
skipped ones (the previous run of the job still going) are written to ``runs`` as ``missed``/``skipped``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.config import JobName, JobSchedule, Settings, cron_fields
from pipeline.errors import LockLost
from pipeline.extract.http import make_session
from pipeline.jobs import JOBS, JobReport, enabled_jobs
from pipeline.keys import Secrets
from pipeline.lifecycle import writing
from pipeline.load.archive import prune
from pipeline.load.runs import last_runs, record_window, save_timetable
from pipeline.load.writer import Writer
from pipeline.lock import DEFAULT_CHECK_INTERVAL, DaemonLock
from pipeline.redaction import redact
from pipeline.resources import release_memory
from pipeline.runner import run_jobs
from pipeline.timetable import period

if TYPE_CHECKING:
    from pipeline.web.app import Surface

log = logging.getLogger(__name__)

JobFunc = Callable[[JobName, str], Awaitable[None]]
#: the id of a job's extra run when it asked for one (``airkorea_sido:late``: the hour was not published yet)
LATE_SUFFIX = ":late"
#: an extra run this close to the next scheduled one is not worth it
LATE_MARGIN = timedelta(minutes=5)
#: the raw archive's retention runs after a job run at most this often
PRUNE_EVERY = timedelta(hours=1)
#: extra runs at most between two scheduled ones (an API hours behind must not multiply the calls)
MAX_LATE_RUNS = 3


def extra_run_allowed(retry_at: datetime, next_run: datetime, extra_runs: int) -> bool:
    """Whether a job that asks to run again at ``retry_at`` gets that extra run: not when its next scheduled
    run comes within :data:`LATE_MARGIN` after, nor after :data:`MAX_LATE_RUNS` extra runs since its last
    scheduled one (``extra_runs``). Pure: the bench's simulated day replays the daemon with it."""
    return retry_at < next_run - LATE_MARGIN and extra_runs < MAX_LATE_RUNS


def build_trigger(schedule: JobSchedule, timezone: ZoneInfo) -> BaseTrigger:
    jitter = int(schedule.jitter) or None
    if schedule.cron is not None:
        return CronTrigger(**cron_fields(schedule.cron), timezone=timezone, jitter=jitter)
    assert schedule.interval is not None
    return IntervalTrigger(seconds=schedule.interval, timezone=timezone, jitter=jitter)


def build_scheduler(settings: Settings, func: JobFunc) -> AsyncIOScheduler:
    """The timetable: one job per enabled collection. Call ``start()`` inside the running loop."""
    timezone = ZoneInfo(settings.schedule.timezone)
    options = {
        "coalesce": True,  # a backlog of missed windows collapses into one run
        "max_instances": 1,  # never two runs of one job at once: an overlapping window is skipped
        "misfire_grace_time": int(settings.schedule.misfire_grace_time) or None,  # APScheduler's default: 1 s
    }
    scheduler = AsyncIOScheduler(timezone=timezone, job_defaults=options)
    for job in enabled_jobs(settings):
        scheduler.add_job(
            func,
            build_trigger(settings.schedule.jobs[job.name], timezone),
            args=(job.name, "schedule"),
            id=job.name,
            name=job.name,
            replace_existing=True,
            **options,
        )
    return scheduler


@dataclass
class JobTracker:
    """Knows the in-flight job tasks, so shutdown can wait for them instead of cancelling them."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def track(self, work: Awaitable[None]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await work
        finally:
            self.tasks.discard(task)

    async def drain(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for in-flight runs, then cancel the rest; returns how many were cancelled."""
        pending = set(self.tasks)
        if pending:
            log.info("waiting up to %.0fs for %d running job(s) to finish", grace, len(pending))
            _done, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=30)
        return len(pending)


class Daemon:
    """``pipeline run``: the long-running collector."""

    def __init__(self, settings: Settings, secrets: Secrets, *, simulate: bool = False) -> None:
        self.settings = settings
        self.secrets = secrets
        self.simulate = simulate
        self.timezone = ZoneInfo(settings.schedule.timezone)
        self.tracker = JobTracker()
        self.stop_event = asyncio.Event()
        self.writer: Writer | None = None
        self.session: aiohttp.ClientSession | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.background: set[asyncio.Task[Any]] = set()
        self.running: dict[JobName, asyncio.Task[Any]] = {}  # the job runs in flight, by job
        self.late_runs: dict[JobName, int] = {}  # extra runs since the job's last scheduled one
        self.pruned_at: datetime | None = None  # the raw archive's last retention pass
        self.lock_check_interval = DEFAULT_CHECK_INTERVAL
        self.lock_lost = False
        self.surface: Surface | None = None  # /healthz, /metrics and the dashboard, when web.enabled

    async def run(self) -> None:
        # Signals first: a SIGTERM during start-up (the lock, migrations, marking abandoned runs) is a graceful
        # stop too, not the default action that would kill the process half-way.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self._run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _run(self) -> None:
        lock = DaemonLock(self.settings.database.url)
        await lock.acquire()
        try:
            async with writing(self.settings, self.secrets, simulate=self.simulate) as opened:
                self.settings, self.secrets, self.writer = opened.settings, opened.secrets, opened.writer
                self.session = make_session()
                try:
                    # the web surface (web.enabled) listens once the database is migrated; a taken port stops
                    # the daemon here, before any run, with one line
                    if self.settings.web.enabled:
                        from pipeline.web.app import open_surface  # aiohttp.web, jinja2: only when serving

                        self.surface = await open_surface(self.settings)
                        log.info("web: serving %s (read-only)", self.surface.url)
                    try:
                        await self._serve(lock)
                    finally:
                        if self.surface is not None:
                            await self.surface.close()
                finally:
                    await self.session.close()
        finally:
            await lock.release()
        if self.lock_lost:
            raise LockLost(
                "stopped: the connection holding the daemon lock closed (database restarted?); start the daemon again"
            )

    async def _watch_lock(self, lock: DaemonLock) -> None:
        await lock.wait_lost(self.lock_check_interval)
        log.error("the connection holding the daemon lock closed: stopping, since another daemon may now start")
        self.lock_lost = True
        self.stop_event.set()

    async def _serve(self, lock: DaemonLock) -> None:
        if self.stop_event.is_set():  # stopped while starting: no scheduler, no catch-up runs
            log.info("daemon stopped before its first run")
            return
        loop = asyncio.get_running_loop()
        watch = loop.create_task(self._watch_lock(lock))
        scheduler = self.scheduler = build_scheduler(self.settings, self.run_job)
        scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        scheduler.start()
        try:
            await self._catch_up()
            await self._save_timetable()
            await self._prune_archive()
            log.info("daemon started (pid %d); jobs: %s", os.getpid(), self._describe_jobs())
            await self.stop_event.wait()
            log.info("stopping: no new runs")
            scheduler.pause()
            cancelled = await self.tracker.drain(self.settings.schedule.shutdown_grace)
            if cancelled:
                log.warning("cancelled %d run(s) that outlived the shutdown grace period", cancelled)
        finally:
            watch.cancel()
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
            if self.background:
                await asyncio.wait(set(self.background), timeout=10)
            await asyncio.gather(watch, return_exceptions=True)
            if self.writer is not None:
                try:
                    await save_timetable(self.writer, {}, os.getpid())
                except Exception:
                    log.warning("could not clear the timetable", exc_info=True)
        log.info("daemon stopped")

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        self.stop_event.set()

    def _describe_jobs(self) -> str:
        assert self.scheduler is not None
        return ", ".join(
            f"{job.id} next at {job.next_run_time:%Y-%m-%d %H:%M:%S%z}" for job in self.scheduler.get_jobs()
        )

    async def _catch_up(self) -> None:
        """Run at once every job that never succeeded or whose last success is older than its period."""
        assert self.writer is not None
        assert self.scheduler is not None
        history = await last_runs(self.writer)
        now = datetime.now(UTC)
        for job in self.scheduler.get_jobs():
            name: JobName = job.id
            success = history.get(name, {}).get("success")
            age = now - success["started_at"] if success else None
            if age is None or age > period(self.settings.schedule.jobs[name], self.timezone):
                log.info("catching up %s (last success: %s)", name, success["started_at"] if success else "never")
                job.modify(args=(name, "catchup"), next_run_time=now)
        self.scheduler.wakeup()

    async def run_job(self, job: JobName, trigger: str) -> None:
        """The function APScheduler calls. Never raises: failures are recorded in ``runs``."""
        await self.tracker.track(self._run_job(job, trigger))

    async def _run_job(self, job: JobName, trigger: str) -> None:
        assert self.writer is not None
        assert self.session is not None
        if trigger == "catchup" and self.scheduler is not None:
            self.scheduler.modify_job(job, args=(job, "schedule"))
        before = [self.running[name] for name in JOBS[job].after if name in self.running]
        if before:  # a cycle's order in the daemon too: the station job heals what the running poll leaves
            await asyncio.wait(before)
        current = asyncio.current_task()
        assert current is not None
        self.running[job] = current
        started = datetime.now(UTC)
        try:
            report = await run_jobs(
                self.settings,
                self.secrets,
                self.writer,
                [job],
                run_name=job,
                trigger=trigger,
                session=self.session,
            )
            self._retry_late(job, trigger, report.jobs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the run could not even be recorded (database unavailable…)
            message = redact(f"{type(exc).__name__}: {exc}")
            log.error("%s failed before it could be recorded: %s", job, message)
            try:
                await record_window(self.writer, job, "failed", started, message, trigger)
            except Exception:
                log.exception("could not record the failure of %s", job)
        finally:
            if self.running.get(job) is current:
                del self.running[job]
            await self._save_timetable()
            await self._prune_archive()
            release_memory()

    async def _prune_archive(self) -> None:
        """Retention of the raw archive (``archive.keep``), at most once every :data:`PRUNE_EVERY`."""
        keep = self.settings.archive.keep
        now = datetime.now(UTC)
        if self.writer is None or not keep or (self.pruned_at is not None and now - self.pruned_at < PRUNE_EVERY):
            return
        self.pruned_at = now
        try:
            pruned = await prune(self.writer, timedelta(seconds=keep), now)
        except Exception as exc:  # retention must never stop collection
            log.warning("could not prune the raw archive: %s", redact(str(exc)))
            return
        if pruned.responses or pruned.bodies:
            log.info("raw archive: pruned %d responses and %d bodies older than %s", pruned.responses,
                     pruned.bodies, f"{now - timedelta(seconds=keep):%Y-%m-%d %H:%M %Z}")  # fmt: skip

    def _retry_late(self, job: JobName, trigger: str, reports: Sequence[JobReport]) -> None:
        """A job that asks to run again (the newest hour not yet published) gets one run then, unless its next
        scheduled run comes first or it already had :data:`MAX_LATE_RUNS` since its last scheduled one."""
        if self.scheduler is None:
            return
        self.late_runs[job] = self.late_runs.get(job, 0) + 1 if trigger == "late" else 0
        retry_at = next((r.retry_at for r in reports if r.retry_at is not None), None)
        scheduled = self.scheduler.get_job(job)
        if retry_at is None or scheduled is None or scheduled.next_run_time is None:
            return
        if not extra_run_allowed(retry_at, scheduled.next_run_time, self.late_runs[job]):
            log.info("%s: no extra poll (the next scheduled one comes first, or %d were made)", job, MAX_LATE_RUNS)
            return
        self.scheduler.add_job(
            self.run_job,
            DateTrigger(run_date=retry_at),
            args=(job, "late"),
            id=f"{job}{LATE_SUFFIX}",
            name=f"{job}{LATE_SUFFIX}",
            replace_existing=True,
            misfire_grace_time=int(self.settings.schedule.misfire_grace_time) or None,
        )
        log.info("%s: polling again at %s", job, f"{retry_at:%H:%M:%S %Z}")

    async def _save_timetable(self) -> None:
        if self.writer is None or self.scheduler is None:
            return
        next_runs = {job.id: job.next_run_time for job in self.scheduler.get_jobs() if job.id in JOBS}
        try:
            await save_timetable(self.writer, next_runs, os.getpid())
        except Exception:
            log.warning("could not save the timetable", exc_info=True)

    def _on_event(self, event: JobEvent) -> None:
        """APScheduler listener (synchronous, in the loop): misses, skips and errors go to ``runs``."""
        scheduled = getattr(event, "scheduled_run_time", None)
        if isinstance(event, JobSubmissionEvent) and event.scheduled_run_times:
            scheduled = event.scheduled_run_times[0]
        at = scheduled if isinstance(scheduled, datetime) else datetime.now(UTC)
        if event.code == EVENT_JOB_MISSED:
            status, message = "missed", f"window {at:%Y-%m-%d %H:%M %Z} missed by more than the misfire grace time"
            log.warning("%s: %s", event.job_id, message)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            status, message = "skipped", f"window {at:%Y-%m-%d %H:%M %Z} skipped: the previous run was still going"
            log.warning("%s: %s", event.job_id, message)
        elif isinstance(event, JobExecutionEvent) and event.exception is not None:
            # run_job records its own failures; this only fires for an escape (cancellation at shutdown)
            log.warning("%s ended with %s", event.job_id, type(event.exception).__name__)
            return
        else:
            return
        if self.writer is None:
            return
        name = event.job_id.removesuffix(LATE_SUFFIX)
        task = asyncio.get_running_loop().create_task(
            record_window(self.writer, name, status, at.astimezone(UTC), message)  # type: ignore[arg-type]
        )
        self.background.add(task)
        task.add_done_callback(self.background.discard)


async def run_daemon(settings: Settings, secrets: Secrets, *, simulate: bool = False) -> None:
    await Daemon(settings, secrets, simulate=simulate).run()
