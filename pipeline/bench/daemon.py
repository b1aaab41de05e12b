"""Section 5, ``daemon``: the footprint of the idle daemon after one cycle."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.bench.harness import Line, Sizes, _config, _env, register, simulator_process
from pipeline.resources import proc_cpu_seconds, proc_rss_mb


@register("daemon")
def bench_daemon(sizes: Sizes) -> list[Line]:
    with simulator_process(0) as base, tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), base)
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
            time.sleep(1)
            rss = proc_rss_mb(proc.pid)
            cpu_before = proc_cpu_seconds(proc.pid)
            time.sleep(sizes.idle_seconds)
            cpu = (proc_cpu_seconds(proc.pid) - cpu_before) / sizes.idle_seconds * 100
        finally:
            proc.terminate()
            proc.wait(60)
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
    ]
