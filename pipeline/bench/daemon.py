"""Section 5, ``daemon``: the footprint of the idle daemon after one cycle, without and with the web surface
(``web.enabled``, after one request of each page and ``/metrics``)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pipeline.bench.harness import Line, Sizes, _config, _env, free_port, register, simulator_process
from pipeline.resources import proc_cpu_seconds, proc_rss_mb

WEB_PATHS = ("/", "/air", "/movies", "/metrics", "/healthz")


def _idle_daemon(sizes: Sizes, web: bool) -> tuple[float, float]:
    """RSS (MB) after the first cycle, and CPU (% of a core) over ``sizes.idle_seconds`` of idling."""
    with simulator_process(0) as base, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = _config(Path(tmp), base, f"web: {{enabled: true, port: {port}}}\n" if web else "")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--log-level", "WARNING", "run", "--config", str(config)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    with sqlite3.connect(Path(tmp) / "bench.db") as conn:
                        done = conn.execute("SELECT count(DISTINCT job) FROM runs WHERE status = 'success'").fetchone()
                except sqlite3.Error:
                    continue
                if done[0] >= 3:
                    break
            else:
                raise RuntimeError("the daemon did not finish its first cycle")
            for path in WEB_PATHS if web else ():
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
                    response.read()
            time.sleep(1)
            rss = proc_rss_mb(proc.pid)
            cpu_before = proc_cpu_seconds(proc.pid)
            time.sleep(sizes.idle_seconds)
            cpu = (proc_cpu_seconds(proc.pid) - cpu_before) / sizes.idle_seconds * 100
        finally:
            proc.terminate()
            proc.wait(60)
    return rss, cpu


@register("daemon")
def bench_daemon(sizes: Sizes) -> list[Line]:
    rss, cpu = _idle_daemon(sizes, web=False)
    web_rss, web_cpu = _idle_daemon(sizes, web=True)
    return [
        Line("daemon", "RSS of the idle daemon after one cycle", rss, "MB", target="≤ 100", passed=rss <= 100),
        Line(
            "daemon",
            f"CPU of the idle daemon over {sizes.idle_seconds:.0f}s",
            cpu,
            "% of a core",
            target="report",
            note="scheduler timers only",
        ),
        Line(
            "daemon",
            "RSS of the idle daemon with the web surface on, after one cycle and a request of each page",
            web_rss,
            "MB",
            baseline=rss,
            baseline_name="the same daemon, web off (MB)",
            target="≤ 110",
            passed=web_rss <= 110,
            note=f"paths requested: {', '.join(WEB_PATHS)}; idle CPU {web_cpu:.2f} % of a core",
        ),
    ]
