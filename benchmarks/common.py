"""Shared by the benchmark scripts: child processes measured for wall time and peak RSS."""

from __future__ import annotations

import compileall
import functools
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"


@dataclass
class Measurement:
    name: str
    rows: int
    seconds: float
    peak_rss_mib: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s)}


@functools.cache
def compile_bytecode() -> None:
    """Write the project's bytecode before anything is timed, as installing a wheel does and
    as a checkout's first run does unless PYTHONDONTWRITEBYTECODE is set (it is on some
    machines, this one included): without it, each child compiles about 100 modules from
    source first, about 0.1 s of every start-up."""
    for folder in ("engine", "schemas", "benchmarks"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def measure(
    name: str, rows: int, argv: list[str], *, env: dict[str, str] | None = None
) -> Measurement:
    """Run argv as a child; wall time and that child's own peak RSS (os.wait4)."""
    compile_bytecode()
    started = time.perf_counter()
    child = subprocess.Popen(argv, env={**os.environ, **(env or {})}, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: child exited with {os.waitstatus_to_exitcode(status)}")
    return Measurement(name, rows, seconds, usage.ru_maxrss / 1024)


def median_run(runs: list[Measurement]) -> Measurement:
    """The run with the median time (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda m: m.seconds)
    return ordered[(len(ordered) - 1) // 2]


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def report(title: str, measurements: list[Measurement], extra: dict[str, Any], out: Path) -> None:
    print(f"\n{title}")
    print(f"{'what':44} {'rows':>12} {'seconds':>9} {'rows/s':>12} {'peak RSS MiB':>13}")
    for m in measurements:
        print(
            f"{m.name:44} {m.rows:>12,} {m.seconds:>9.2f} {m.rows_per_s:>12,.0f} {m.peak_rss_mib:>13,.0f}"
        )
    for key, value in extra.items():
        print(f"{key}: {value}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "title": title,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "measurements": [m.as_dict() for m in measurements],
        **extra,
    }
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")
