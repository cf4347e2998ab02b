"""Reading an edited ``export errors`` file for ``replay --from``: which invalid rows to
validate again, and the corrected raw text of each."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from engine.errors import ConfigError, SourceError

COLUMNS = ("run_id", "row_number", "raw")
READERS = {
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
}


def read_edits(path: str | os.PathLike[str]) -> dict[tuple[int, int], str]:
    """``(run_id, row_number) -> raw`` from an errors export (CSV, NDJSON, JSON or Parquet)
    whose ``raw`` cells were corrected by hand."""
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(
            f"{path}: replay --from reads an errors export as .csv, .ndjson, .json or .parquet"
        )
    if not path.is_file():
        raise SourceError(path, "no such file")
    try:
        if kind == "csv":
            frame = pl.read_csv(path, infer_schema=False)
        elif kind == "ndjson":
            frame = pl.read_ndjson(path)
        elif kind == "json":
            frame = pl.read_json(path)
        else:
            frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(path, f"cannot read it as {kind} ({first})") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SourceError(
            path,
            f"no column {', '.join(missing)} (replay --from needs run_id, row_number and raw, "
            "as `export errors` writes them)",
        )
    try:
        rows = frame.select(
            pl.col("run_id").cast(pl.Int64, strict=True),
            pl.col("row_number").cast(pl.Int64, strict=True),
            pl.col("raw").cast(pl.String),
        )
    except pl.exceptions.PolarsError as exc:
        raise SourceError(path, "run_id and row_number must be whole numbers") from exc
    edits: dict[tuple[int, int], str] = {}
    for line, (run_id, row_number, raw) in enumerate(rows.iter_rows(), 2):
        if run_id is None or row_number is None or raw is None:
            raise SourceError(path, "run_id, row_number and raw must all be given", line=line)
        key = (int(run_id), int(row_number))
        if key in edits:
            raise SourceError(path, f"run {key[0]}, row {key[1]} is given twice", line=line)
        edits[key] = str(raw)
    return edits
