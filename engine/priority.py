"""Scheduling: in a process whose only job is a file run, the storing thread goes first.

A run is two stages sharing two cores: reading and validating (a Python thread plus Polars'
pool) and storing (DuckDB on one thread, the slower stage and so the critical path: about 8 s
of a 10M-row run). When every thread wants a core, the scheduler shares them evenly and the
storing thread gets about half of one. With every other thread 5 nice levels below it, it
keeps its core and validation takes the other: faster in 7 of 9 paired 10M-row runs, by 5-8%
at the median.

Only for processes that end with their runs (the CLI): a thread's priority cannot be raised
back without privileges, and an API server's other threads should not wait for an upload.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

NICE = 5  # below the storing thread's own priority
LOWEST = 19
TASKS = Path("/proc/self/task")


def yield_to_current_thread(steps: int = NICE) -> int:
    """Lower every other thread of this process to at least ``steps`` nice levels below the
    calling thread (Linux; elsewhere nothing). Threads they start later inherit it. Returns
    how many were lowered."""
    if not TASKS.is_dir() or not hasattr(os, "setpriority"):
        return 0
    me = threading.get_native_id()
    target = min(os.getpriority(os.PRIO_PROCESS, me) + steps, LOWEST)
    lowered = 0
    for entry in TASKS.iterdir():
        tid = int(entry.name)
        if tid == me:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
                lowered += 1
        except OSError:  # the thread has ended meanwhile
            continue
    return lowered
