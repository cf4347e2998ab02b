"""Other threads yield to the storing one (in a child process: priorities cannot go back)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA, ROOT

CHILD = """
import os, threading
from engine.priority import yield_to_current_thread

ready, done = threading.Event(), threading.Event()
ids = []

def worker():
    ids.append(threading.get_native_id())
    ready.set()
    done.wait()

thread = threading.Thread(target=worker)
thread.start()
ready.wait()
os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # already niced, say by cron
lowered = yield_to_current_thread(3)
again = yield_to_current_thread(3)
mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
theirs = os.getpriority(os.PRIO_PROCESS, ids[0])
done.set()
thread.join()
print(lowered >= 1, again, mine, theirs)
"""


def test_every_other_thread_is_lowered_once_and_the_caller_is_not() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["True", "0", "10", "13"]


RUN = """
import os, sys
from pathlib import Path
from engine.cli import main

os.setpriority(os.PRIO_PROCESS, 0, 4)  # before any thread starts: all of them inherit it

main.main(["run", sys.argv[1], "--db", sys.argv[2], "--quiet"], standalone_mode=False)
me = os.getpriority(os.PRIO_PROCESS, 0)
tasks = Path("/proc/self/task")
polars = [
    os.getpriority(os.PRIO_PROCESS, int(t.name)) - me
    for t in tasks.iterdir()
    if (t / "comm").read_text().startswith("polars")
]
print(len(polars) > 0, set(polars))
"""


def test_a_cli_run_lowers_polars_threads_below_the_storing_thread(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", RUN, str(DATA / "transactions_sample.csv"), str(tmp_path / "db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "True {5}"  # relative to the storing thread
