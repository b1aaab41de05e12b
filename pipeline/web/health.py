"""``GET /healthz``: 200 when every enabled job is fresh, 503 when one is stale.

The rule and the words are :func:`pipeline.status.collect_status`'s, the report behind ``pipeline status``
(one implementation): each job's state is ``fresh``, ``STALE`` or ``disabled``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pipeline.status import StatusReport, collect_status
from pipeline.web.app import context


def health_body(report: StatusReport) -> dict[str, Any]:
    """The JSON answer: the verdict, then per job its state and the figures behind it."""
    return {
        "status": "ok" if report.healthy else "stale",
        "healthy": report.healthy,
        "daemon_pid": report.daemon_pid,
        "jobs": {
            job.job: {
                "state": job.state,
                "enabled": job.enabled,
                "last_status": job.last_status,
                "last_success_at": job.last_success_at.isoformat() if job.last_success_at else None,
                "age_seconds": job.age_seconds,
                "freshness_seconds": job.freshness_seconds,
                "running": job.running,
            }
            for job in report.jobs
        },
    }


async def healthz(request: web.Request) -> web.Response:
    ctx = context(request)
    report = await collect_status(ctx.settings, engine=ctx.engine, totals=False)
    return web.json_response(health_body(report), status=200 if report.healthy else 503)
