"""The ``pipeline`` command: thin glue over the library. Exit codes: 0 ok, 1 run failed, 2 usage/config error.

Every error reaches the user as one line on stderr (``error: …``), never as a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from pipeline import __version__, clock, output
from pipeline.config import SIDOS, JobName, Settings, load_settings
from pipeline.errors import ConfigError, PipelineError
from pipeline.jobs import JOB_NAMES
from pipeline.keys import Secrets, load_secrets, require_secrets
from pipeline.load.db import display_url, prepare_database
from pipeline.logs import configure
from pipeline.redaction import redact
from pipeline.transform.common import KST

if TYPE_CHECKING:
    from pipeline.backfill import BackfillReport, DayRange, DryRun
    from pipeline.runner import RunReport

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("pipeline")


def _config_option(func: F) -> F:
    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            ctx.ensure_object(dict)["config"] = value
        return value

    return click.option(
        "--config",
        "config_path",
        metavar="PATH",
        callback=remember,
        expose_value=False,
        is_eager=True,
        help="config file (default: $PIPELINE_CONFIG, else ./config.yaml)",
    )(func)


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().ensure_object(dict)
    return load_settings(obj.get("config") or ctx.ensure_object(dict).get("config"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipeline")
@_config_option
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json: one JSON object per log line",
)
def cli(log_level: str, log_format: str) -> None:
    """Collect TMDB now-playing movies and AirKorea air quality into a SQL database."""
    configure(log_level, "json" if log_format == "json" else "text")


@cli.command()
@_config_option
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or upgrade the database schema to the newest version."""
    from pipeline.load.db import migrate as apply

    settings = _settings(ctx)
    asyncio.run(apply(settings.database.url))
    click.echo(f"database at the newest schema: {display_url(settings.database.url)}")


@cli.command()
@_config_option
@click.option("--once", is_flag=True, help="run every enabled job once, then exit (default: run the daemon)")
@click.option("--simulate", is_flag=True, help="use the built-in simulator of both APIs (no keys, no network)")
@click.option(
    "--job", "jobs", multiple=True, type=click.Choice(JOB_NAMES), help="with --once: only this job (repeatable)"
)
@click.pass_context
def run(ctx: click.Context, once: bool, simulate: bool, jobs: Sequence[JobName]) -> None:
    """Collect data: the scheduled daemon, or one cycle with --once."""
    settings = _settings(ctx)
    if jobs and not once:
        raise click.UsageError("--job only applies with --once; the daemon runs the timetable in config.yaml")
    secrets = Secrets() if simulate else load_secrets()
    if not simulate:
        require_secrets(settings, secrets)
    prepare_database(settings.database.url)  # a missing driver or an unwritable path fails now, before anything
    if not once:
        asyncio.run(_daemon(settings, secrets, simulate))
        return
    report, counts = asyncio.run(_run_once(settings, secrets, simulate, list(jobs) or None))
    output.print_run(report, counts, settings)
    ctx.exit(0 if report.status == "success" else 1)


async def _daemon(settings: Settings, secrets: Secrets, simulate: bool) -> None:
    from pipeline.scheduler import run_daemon

    await run_daemon(settings, secrets, simulate=simulate)


async def _run_once(
    settings: Settings, secrets: Secrets, simulate: bool, jobs: list[JobName] | None
) -> tuple[RunReport, dict[str, int]]:
    from pipeline.runner import run_once

    return await run_once(settings, secrets, jobs, simulate=simulate)


@cli.group()
def backfill() -> None:
    """Fill history once: AirKorea station series or TMDB releases over a date range (resumable)."""


def _range_options(func: F) -> F:
    func = click.option("--to", "last", required=True, metavar="YYYY-MM-DD", help="last KST day (inclusive)")(func)
    func = click.option("--from", "first", required=True, metavar="YYYY-MM-DD", help="first KST day")(func)
    return click.option("--dry-run", is_flag=True, help="print the plan and its cost; send no request")(func)


@backfill.command("airkorea")
@_config_option
@_range_options
@click.option("--station", "stations", multiple=True, metavar="NAME", help="a station (repeatable)")
@click.option("--sido", "sidos", multiple=True, metavar="NAME", help="every known station of a province (repeatable)")
@click.option("--all-stations", is_flag=True, help="every station the database knows (or the nationwide list)")
@click.option("--simulate", is_flag=True, help="use the built-in simulator (no keys, no network)")
@click.pass_context
def backfill_airkorea(
    ctx: click.Context,
    first: str,
    last: str,
    stations: tuple[str, ...],
    sidos: tuple[str, ...],
    all_stations: bool,
    dry_run: bool,
    simulate: bool,
) -> None:
    """Hourly readings per station for a range (within the API's ~3 months)."""
    from pipeline import backfill as bf

    settings = _settings(ctx)
    secrets = Secrets() if simulate or dry_run else load_secrets()
    if not (simulate or dry_run):
        require_secrets(settings, secrets, sources=("airkorea",))
    days = bf.parse_range(first, last, datetime.now(KST).date())
    report = asyncio.run(
        _backfill(
            settings,
            secrets,
            simulate,
            dry_run,
            "airkorea",
            days,
            dict(stations=stations, sidos=sidos, all_stations=all_stations),
        )
    )
    ctx.exit(output.print_backfill(report))


@backfill.command("tmdb")
@_config_option
@_range_options
@click.option("--region", default=None, metavar="CC", help="ISO 3166-1 country (default: sources.tmdb.region)")
@click.option("--simulate", is_flag=True, help="use the built-in simulator (no keys, no network)")
@click.pass_context
def backfill_tmdb(ctx: click.Context, first: str, last: str, region: str | None, dry_run: bool, simulate: bool) -> None:
    """Movies released in theatres in the range (/discover/movie), with details, as backfill snapshots."""
    from pipeline import backfill as bf

    settings = _settings(ctx)
    region = (region or settings.sources.tmdb.region).upper()
    if len(region) != 2 or not region.isalpha():
        raise click.BadParameter(f"not a 2-letter country code: {region!r}", param_hint="--region")
    secrets = Secrets() if simulate or dry_run else load_secrets()
    if not (simulate or dry_run):
        require_secrets(settings, secrets, sources=("tmdb",))
    days = bf.parse_range(first, last, datetime.now(KST).date())
    report = asyncio.run(_backfill(settings, secrets, simulate, dry_run, "tmdb", days, {"region": region}))
    ctx.exit(output.print_backfill(report))


async def _backfill(
    settings: Settings,
    secrets: Secrets,
    simulate: bool,
    dry_run: bool,
    source: Literal["airkorea", "tmdb"],
    days: DayRange,
    selection: dict[str, Any],
) -> BackfillReport | DryRun:
    from pipeline import backfill as bf
    from pipeline.lifecycle import writing
    from pipeline.progress import make_progress

    async with writing(settings, secrets, simulate=simulate and not dry_run) as opened:
        progress = None if dry_run else make_progress(f"backfill {source}")
        return await bf.run(opened, source, days, selection, dry_run=dry_run, progress=progress)


@cli.command()
@click.option("--quick", is_flag=True, help="a smaller version of every section (under a minute or two)")
@click.option(
    "--only",
    "sections",
    multiple=True,
    type=click.Choice(["extract", "loader", "backfill", "daemon", "queries", "day", "archive", "web"]),
    help="run only this section (repeatable)",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE",
    help="also write the figures as JSON",
)
@_config_option
@click.pass_context
def bench(ctx: click.Context, quick: bool, sections: tuple[str, ...], json_path: str | None) -> None:
    """Measure extraction, loading, backfill, daemon footprint and queries against their baselines.

    When the config's database is PostgreSQL, the loader is also measured there, in a throwaway database.
    """
    from pathlib import Path

    from pipeline import bench as benchmarks
    from pipeline.load.db import backend

    url = _settings(ctx).database.url
    postgres = url if backend(url) == "postgresql" else None
    if postgres:
        prepare_database(postgres)
    chosen = list(sections) or list(benchmarks.SECTIONS)
    lines = benchmarks.run(chosen, quick, lambda line: click.echo(benchmarks.format_line(line)), postgres)
    if json_path:
        benchmarks.write_json(lines, Path(json_path), quick)


@cli.command()
@_config_option
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="first KST day (default: all)")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="last KST day (default: all)")
@click.option("--sido", type=click.Choice(SIDOS), metavar="PROVINCE", help="only this province's stations (서울, …)")
@click.option("--station", metavar="NAME", help="only this station")
@click.option("--all", "every_day", is_flag=True, help="list every station-day, not only those with holes")
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of station-days instead of a table")
@click.pass_context
def gaps(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    sido: str | None,
    station: str | None,
    every_day: bool,
    as_json: bool,
) -> None:
    """Missing station-hours per station and KST day; exit 1 when some the API can still serve are missing."""
    from pipeline.gaps import Selection, collect_gaps

    if since and until and since > until:
        raise click.BadParameter(f"--since {since:%Y-%m-%d} is after --until {until:%Y-%m-%d}", param_hint="--since")
    settings = _settings(ctx)
    selection = Selection(since.date() if since else None, until.date() if until else None, sido, station)
    report = asyncio.run(collect_gaps(settings.database.url, selection, clock.now(), every_day=every_day))
    if as_json:
        click.echo(json.dumps([day.as_dict() for day in report.days], ensure_ascii=False, indent=1))
    else:
        output.print_gaps(report)
    ctx.exit(0 if report.ok else 1)


@cli.command()
@_config_option
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="bodies fetched from this KST day"
)
@click.option(
    "--until", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="bodies fetched up to this KST day"
)
@click.option("--run", "run_id", type=click.IntRange(min=1), metavar="N", help="only the bodies run N fetched")
@click.option("--source", type=click.Choice(["tmdb", "airkorea"]), help="only this source's bodies")
@click.option("--dry-run", is_flag=True, help="say how many bodies and records it would process; write nothing")
@click.pass_context
def replay(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    run_id: int | None,
    source: str | None,
    dry_run: bool,
) -> None:
    """Rebuild the tables from the raw archive: re-parse, re-transform and upsert, without one request."""
    from pipeline.replay import ReplaySelection

    if since and until and since > until:
        raise click.BadParameter(f"--since {since:%Y-%m-%d} is after --until {until:%Y-%m-%d}", param_hint="--since")
    selection = ReplaySelection(since.date() if since else None, until.date() if until else None, run_id, source)
    report = asyncio.run(_replay(_settings(ctx), selection, dry_run))
    ctx.exit(output.print_replay(report))


async def _replay(settings: Settings, selection: Any, dry_run: bool) -> Any:
    from pipeline.lifecycle import writing
    from pipeline.progress import make_progress
    from pipeline.replay import replay as run_replay

    async with writing(settings, Secrets()) as opened:
        progress = None if dry_run else make_progress("replay")
        return await run_replay(opened, selection, dry_run=dry_run, progress=progress)


@cli.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.pass_context
def archive(ctx: click.Context, as_json: bool) -> None:
    """What the raw archive holds: bodies and bytes per source, operation and KST day; what retention prunes next."""
    from pipeline.archive_report import collect_archive

    report = asyncio.run(collect_archive(_settings(ctx), clock.now()))
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        output.print_archive(report)


@cli.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Freshness of every job; exit 0 when all enabled jobs are fresh, 1 when one is stale."""
    from pipeline.status import collect_status

    report = asyncio.run(collect_status(_settings(ctx)))
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        output.print_status(report)
    ctx.exit(0 if report.healthy else 1)


@cli.command()
@_config_option
@click.argument("query", required=False, metavar="[QUERY]")
@click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row")
@click.option("--json", "fmt", flag_value="json", help="a JSON array of objects")
@click.option("--tables", is_flag=True, help="list tables and views with their row counts")
@click.pass_context
def sql(ctx: click.Context, query: str | None, fmt: str | None, tables: bool) -> None:
    """Run one read-only SQL query (QUERY, or standard input) against the database."""
    from pipeline.sqlquery import list_tables, render, run_query

    url = _settings(ctx).database.url
    if tables:
        result = list_tables(url)
    else:
        if query is None or query == "-":
            query = "" if sys.stdin.isatty() else sys.stdin.read()
        result = run_query(url, query)
    click.echo(render(result, fmt or "table"))


@cli.command()
@_config_option
@click.option("--host", default=None, help="address to listen on (default: web.host in the config, 127.0.0.1)")
@click.option(
    "--port", default=None, type=click.IntRange(0, 65535), help="port (default: web.port in the config; 0: any free)"
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve /healthz, /metrics and the dashboard, read-only, until stopped (no daemon needed)."""
    settings = _settings(ctx)
    asyncio.run(_serve_web(settings, host, port))


async def _serve_web(settings: Settings, host: str | None, port: int | None) -> None:
    from pipeline.web.app import is_loopback, open_surface

    surface = await open_surface(settings, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        exposure = "" if is_loopback(surface.host) else " (reachable from other machines)"
        click.echo(f"serving {surface.url}{exposure}: read-only; stop with Ctrl-C", err=True)
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await surface.close()


@cli.command()
@_config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="port (0: any free)")
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 60_000),
    help="delay added to every API response",
)
@click.option(
    "--clock", default=None, metavar="ISO-TIME", help="freeze the simulated clock, e.g. 2026-11-27T15:20:00+09:00"
)
@click.option(
    "--revisions",
    default=0.0,
    show_default=True,
    metavar="SHARE",
    type=click.FloatRange(0, 1),
    help="share (0-1) of AirKorea station-hours first served provisional, and of TMDB Korean titles that arrive late",
)
def simulate(host: str, port: int, latency_ms: float, clock: str | None, revisions: float) -> None:
    """Serve the built-in simulator of TMDB and AirKorea, for trying the tool without keys."""
    from pipeline.simulator import SimulatorState, serve

    state = SimulatorState(latency=latency_ms / 1000)
    state.quirks.revision_share = state.tmdb_quirks.late_title_share = revisions
    if clock is not None:
        try:
            frozen = datetime.fromisoformat(clock)
        except ValueError:
            raise click.BadParameter(f"not an ISO time: {clock!r}", param_hint="--clock") from None
        if frozen.tzinfo is None:
            raise click.BadParameter("give a time zone, e.g. +09:00", param_hint="--clock")
        state.clock = frozen
    try:
        asyncio.run(serve(host, port, state))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: every failure is one line on stderr and an exit code."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="pipeline", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {redact(exc.format_message())}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {redact(exc.format_message())}", err=True)
        return exc.exit_code
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except ConfigError as exc:  # QueryError too: a usage error
        click.echo(f"error: {redact(str(exc))}", err=True)
        return 2
    except PipelineError as exc:
        click.echo(f"error: {redact(str(exc))}", err=True)
        return 1
    except Exception as exc:  # a bug: say so in one redacted line, keep the traceback for --log-level DEBUG
        log.debug("unexpected error", exc_info=True)
        click.echo(f"error: unexpected {type(exc).__name__}: {redact(str(exc))}", err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
