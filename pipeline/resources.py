"""What a process costs and how to keep it small: peak and current memory, CPU time, glibc's allocator.

One home for the readings the backfill, the daemon and the bench take of themselves and of other processes.
Linux first (``/proc``); elsewhere the ``resource`` module's figures, and the allocator calls do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import os
import resource
from collections.abc import Iterator
from pathlib import Path

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB.

    Linux: ``VmHWM``, the peak of this program image. Not ``ru_maxrss``: a process started by fork (or vfork)
    and exec keeps the peak of the image it replaced, its parent's, so a backfill started by a large process
    would report that process's memory.
    """
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, the fallback elsewhere


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU time of this process (or, with ``RUSAGE_CHILDREN``, of its ended children)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def proc_rss_mb(pid: int) -> float:
    """Another process's current resident memory (``VmRSS``), in MB; NaN when it cannot be read."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def proc_cpu_seconds(pid: int) -> float:
    """Another process's user + system CPU time so far, from ``/proc/PID/stat``."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas (one per thread by default, each keeping its own freed memory): the
    database and HTTP threads of a long backfill otherwise hold on to many megabytes they no longer use."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)


def release_memory() -> None:
    """Give freed heap back to the OS after a run, so an idle daemon stays small.

    glibc keeps freed memory in its arenas; ``malloc_trim`` returns it (a no-op elsewhere).
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def no_cyclic_gc() -> None:
    """For parse workers: they build millions of short-lived dicts and tuples with no reference cycles, which
    the cyclic garbage collector would only rescan (about 6% of a worker's CPU, measured); refcounting frees
    them."""
    gc.disable()


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a block builds many tuples of plain values (a batch's rows),
    which hold no reference cycles: otherwise each few hundred of them trigger a collection, and the oldest
    generation's collections rescan every object the process holds (a quarter of encoding 200,000 readings,
    measured). Re-enabled after the block only if it was enabled before it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
