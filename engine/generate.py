"""A deterministic transactions dataset for demos, tests and benchmarks.

Same seed, same rows, same bytes: ids ``TXN-<n>``, amounts uniform in 10..5000 with a
fraction replaced by -50.0, currencies USD EUR GBP AUD JPY CAD (JPY and CAD are outside the
reference schema's default allowed set), channels CHANNEL1..CHANNEL4, timestamps in 2024.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

from engine.errors import ConfigError, OutputWriteError
from engine.reports.staging import is_loop, regular_or_absent, stage
from engine.store.paths import is_duckdb_file

CURRENCIES = ["USD", "EUR", "GBP", "AUD", "JPY", "CAD"]
CHANNELS = ["CHANNEL1", "CHANNEL2", "CHANNEL3", "CHANNEL4"]
CHUNK = 500_000
YEAR_2024 = np.datetime64("2024-01-01T00:00:00")
SECONDS_IN_2024 = 366 * 24 * 3600


def transactions(
    first: int, count: int, rng: np.random.Generator, bad_fraction: float
) -> pl.DataFrame:
    amount = np.round(rng.uniform(10, 5000, count), 2)
    amount = np.where(rng.random(count) < bad_fraction, -50.0, amount)
    currency = rng.integers(0, len(CURRENCIES), count)
    channel = rng.integers(0, len(CHANNELS), count)
    seconds = rng.integers(0, SECONDS_IN_2024, count)
    stamps = (YEAR_2024 + seconds.astype("timedelta64[s]")).astype("datetime64[ms]")
    return pl.DataFrame(
        {
            "external_id": pl.int_range(first, first + count, eager=True).cast(pl.String),
            "amount": amount,
            "currency": pl.Series(CURRENCIES).gather(currency),
            "source_channel": pl.Series(CHANNELS).gather(channel),
            "timestamp": pl.Series(stamps).dt.to_string("%Y-%m-%dT%H:%M:%S"),
        }
    ).with_columns((pl.lit("TXN-") + pl.col("external_id")).alias("external_id"))


NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".json")  # a .json file of lines is read as NDJSON
CSV_SUFFIXES = ("", ".csv", ".txt")


def output_format(path: Path, declared: str | None) -> str:
    """The format to write: ``declared``, else NDJSON for a name the engine reads as NDJSON,
    else CSV. Refused: a name the engine would read as another format (``.parquet``, a
    compressed ``.gz``...: the file is plain text), ``-``, a missing directory, and an
    existing DuckDB database (it would be overwritten)."""
    suffix = path.suffix.lower()
    if str(path) == "-":
        raise ConfigError("generate writes a file: give its path with -o")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: no such directory {str(path.parent)!r}")
    if path.is_file() and is_duckdb_file(path):
        raise ConfigError(f"{path}: a DuckDB database; generate would overwrite it")
    if suffix not in (*NDJSON_SUFFIXES, *CSV_SUFFIXES):
        raise ConfigError(
            f"{path.name}: generate writes plain CSV or NDJSON, which a run would not read "
            f"as {suffix}: name the file .csv, .ndjson, .jsonl or .json"
        )
    if declared is not None:
        return declared
    return "ndjson" if suffix in NDJSON_SUFFIXES else "csv"


def generate(
    path: Path,
    rows: int,
    *,
    seed: int = 42,
    bad_fraction: float = 0.05,
    fmt: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``rows`` transactions to ``path`` in bounded memory; returns rows written.
    ``fmt`` (csv or ndjson) defaults to what the name says (``output_format``)."""
    fmt = output_format(path, fmt)
    if rows < 0:
        raise ConfigError("--rows must be zero or more")
    if not 0.0 <= bad_fraction <= 1.0:
        raise ConfigError("--bad-fraction must be between 0 and 1")
    if fmt not in ("csv", "ndjson"):
        raise ConfigError(f"unknown format {fmt!r}; choose csv or ndjson")
    rng = np.random.default_rng(seed)
    try:
        with _staged(path) as target, target.open("wb") as fh:
            if fmt == "csv" and rows == 0:
                fh.write(b"external_id,amount,currency,source_channel,timestamp\n")
            for first in range(0, rows, CHUNK):
                count = min(CHUNK, rows - first)
                frame = transactions(first + 1, count, rng, bad_fraction)
                if fmt == "csv":
                    frame.write_csv(fh, include_header=first == 0)
                else:
                    frame.write_ndjson(fh)
                if progress is not None:
                    progress(count)
    except OSError as exc:  # a full disk, /dev/full: one line, not a traceback
        raise OutputWriteError(
            f"{path}: cannot write the generated rows: {exc.strerror or exc}",
            hint="free some space on its disk, or name another file; the old file is as it was",
        ) from exc
    return rows


@contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """The file to write: a temporary one beside ``path`` (``stage``, as exports do), renamed
    over it once complete and removed otherwise (an error, SIGINT, SIGTERM), so ``path`` is
    either its old self or the whole new file. A device or FIFO (``/dev/null``) is written
    directly: renamed over, it would be replaced by a regular file."""
    if is_loop(path):
        raise ConfigError(f"{path}: is a symlink loop", hint="-o takes a file name")
    path = Path(os.path.realpath(path))  # through a symlink: the file it leads to
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory", hint="-o takes a file name")
    if not regular_or_absent(path):
        yield path
        return
    staged = stage(path)
    try:
        yield staged
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
