"""Lake benchmark (issue 17): `run` into a lake against `run` into a DuckDB file, and the
aggregate rate of 1, 2 and 4 writers into one lake at once.

    python benchmarks/bench_lake.py [--rows 1000000] [--rounds 3]

One pass, interleaved rounds (each round runs every case once) so that ratios hold on a
shared machine: ``cli.py run FILE --db`` and ``cli.py run FILE --lake`` on the same file
(fresh targets each time); then N writers (1, 2, 4), each running its own file of ``rows``
rows, into one fresh lake at once, their aggregate rows/s being N * rows over the wall time
until the last one finished; and one writer pinned to one core with ``taskset`` (the figure
two writers on two cores should come close to twice).
Prints medians and ratios and writes benchmarks/results/lake.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, ROOT, WORK, Measurement, measure, median_run, report
from engine.generate import generate

WRITERS = (1, 2, 4)


def writers_at_once(count: int, files: list[Path], lake: Path) -> Measurement:
    """``count`` run processes into one lake at once; wall time until the last is done."""
    shutil.rmtree(lake, ignore_errors=True)
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [sys.executable, "cli.py", "run", str(f), "--lake", str(lake), "-q"], cwd=ROOT
        )
        for f in files[:count]
    ]
    waited = [os.wait4(child.pid, 0) for child in children]
    seconds = time.perf_counter() - started
    codes = [os.waitstatus_to_exitcode(status) for _pid, status, _usage in waited]
    if any(codes):
        raise SystemExit(f"{count} writers: exit codes {codes}")
    rows = sum(int(f.stem.rsplit("-", 1)[1]) for f in files[:count])
    # the largest writer's own peak RSS (each writer is one process)
    peak = max(usage.ru_maxrss for _pid, _status, usage in waited) / 1024
    return Measurement(f"{count} writer(s) into one lake, aggregate", rows, seconds, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(max(WRITERS)):
        path = WORK / f"lake-{n}-{args.rows}.csv"
        if not path.exists():
            generate(path, args.rows, seed=100 + n)
        files.append(path)
    db, lake = WORK / "lake-bench.duckdb", WORK / "lake-bench"
    runs: dict[str, list[Measurement]] = {}

    def keep(m: Measurement) -> None:
        runs.setdefault(m.name, []).append(m)

    for _ in range(args.rounds):
        db.unlink(missing_ok=True)
        keep(
            measure(
                "run into a DuckDB file",
                args.rows,
                [sys.executable, "cli.py", "run", str(files[0]), "--db", str(db), "-q"],
            )
        )
        shutil.rmtree(lake, ignore_errors=True)
        keep(
            measure(
                "run into a lake",
                args.rows,
                [sys.executable, "cli.py", "run", str(files[0]), "--lake", str(lake), "-q"],
            )
        )
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
            shutil.rmtree(lake, ignore_errors=True)
            keep(
                measure(
                    "run into a lake, pinned to one core",
                    args.rows,
                    [
                        "taskset",
                        "-c",
                        "0",
                        sys.executable,
                        "cli.py",
                        "run",
                        str(files[0]),
                        "--lake",
                        str(lake),
                        "-q",
                    ],
                )
            )
        for count in WRITERS:
            keep(writers_at_once(count, files, lake))
    medians = [median_run(found) for found in runs.values()]
    by_name = {m.name: m for m in medians}
    extra = {
        "lake / duckdb time": round(
            by_name["run into a lake"].seconds / by_name["run into a DuckDB file"].seconds, 2
        ),
        "2 writers / 1 writer aggregate rows/s": round(
            by_name["2 writer(s) into one lake, aggregate"].rows_per_s
            / by_name["1 writer(s) into one lake, aggregate"].rows_per_s,
            2,
        ),
    }
    pinned = by_name.get("run into a lake, pinned to one core")
    if pinned is not None:
        extra["2 writers / 1 pinned writer rows/s"] = round(
            by_name["2 writer(s) into one lake, aggregate"].rows_per_s / pinned.rows_per_s, 2
        )
    shutil.rmtree(lake, ignore_errors=True)
    db.unlink(missing_ok=True)
    report("run into a lake (issue 17)", medians, extra, RESULTS / "lake.json")


if __name__ == "__main__":
    main()
