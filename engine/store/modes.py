"""Load modes: how a run's valid rows meet the rows its table already holds.

- ``append`` (the default): added; with a unique key, a row whose key is stored is invalid
  (``engine.store.uniqueness``).
- ``replace``: the table is emptied and holds this run's valid rows only, in the run's own
  transaction (so atomically); the rows it held are recorded in ``replaced_rows`` (by this
  run), and their runs' lineage (raw text, invalid rows) is kept.
- ``merge``: an upsert on the model's unique key (``__unique__``): the latest valid row of a
  key wins, within the run (a later row replaces an earlier one) and over the table; each
  row it replaces is recorded in ``replaced_rows`` with the row that replaced it.

``latest_by_key`` is the store-independent part of a merge (which rows of a batch survive);
the rest reads and writes DuckDB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import polars as pl

from engine.errors import ConfigError
from engine.store.ddl import RUNS, quote
from engine.store.history import REPLACED_ROWS
from engine.store.store import Store

LoadMode = Literal["append", "replace", "merge"]
MODES: tuple[str, ...] = get_args(LoadMode)
ROW = "row_number"
BY_ROW = "by_row_number"


def check_mode(mode: str, unique: Sequence[str], schema_name: str) -> LoadMode:
    """The mode, if it is one and the model allows it."""
    if mode not in MODES:
        raise ConfigError(f"unknown load mode {mode!r} (use append, replace or merge)")
    if mode == "merge" and not unique:
        raise ConfigError(
            f"mode merge upserts on the model's unique key, and schema {schema_name} has none "
            "(declare __unique__ = ('field',) in the model, or use mode append or replace)"
        )
    return mode  # type: ignore[return-value]


def latest_by_key(valid: pl.DataFrame, key: Sequence[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows that survive: per complete key the one with the highest row number, and every
    row with a null in its key; the replaced rows: ``row_number`` and ``by_row_number``)."""
    columns = list(key)
    complete = pl.all_horizontal([pl.col(c).is_not_null() for c in columns])
    winner = pl.when(complete).then(pl.col(ROW).max().over(columns))
    marked = valid.with_columns(winner.alias(BY_ROW))
    survives = pl.col(BY_ROW).is_null() | (pl.col(BY_ROW) == pl.col(ROW))
    keep = marked.filter(survives).select(valid.columns)
    replaced = marked.filter(~survives).select(ROW, BY_ROW)
    return keep, replaced


def replace_table(store: Store, table: str, run_id: int) -> int:
    """Empty ``table`` for a ``replace`` run (inside its transaction); returns the rows it held,
    each recorded as replaced by the run."""
    moved = store.rows(
        f"INSERT INTO {REPLACED_ROWS} SELECT ?, run_id, row_number, ?, NULL, 'replace' "
        f"FROM {quote(table)}",
        [table, run_id],
    )
    store.execute(f"DELETE FROM {quote(table)}")
    return int(moved[0][0]) if moved else 0


def merge_batch(
    store: Store, table: str, key: Sequence[str], run_id: int, valid: pl.DataFrame
) -> pl.DataFrame:
    """The rows of a ``merge`` batch to append; rows they replace (earlier in the batch, or in
    the table: earlier runs and earlier batches of this one) are recorded and removed."""
    keep, within = latest_by_key(valid, key)
    if within.height:
        store.append(
            REPLACED_ROWS,
            within.select(
                pl.lit(table).alias("target_table"),
                pl.lit(run_id, pl.Int64).alias("run_id"),
                ROW,
                pl.lit(run_id, pl.Int64).alias("by_run_id"),
                BY_ROW,
                pl.lit("merge").alias("how"),
            ),
        )
    columns = list(key)
    keys = keep.filter(pl.all_horizontal([pl.col(c).is_not_null() for c in columns])).select(
        *columns, pl.col(ROW).alias(BY_ROW)
    )
    if keys.height == 0:
        return keep
    store.flush_held(table)  # the earlier batches of this run are in the table
    condition = " AND ".join(f"k.{quote(c)} = t.{quote(c)}" for c in columns)
    stored = store.frame_over(
        "__keys",
        keys,
        f"SELECT t.run_id, t.row_number, k.{BY_ROW} FROM __keys k "
        f"JOIN {quote(table)} t ON {condition}",
    )
    if stored.height:
        store.append(
            REPLACED_ROWS,
            stored.select(
                pl.lit(table).alias("target_table"),
                "run_id",
                ROW,
                pl.lit(run_id, pl.Int64).alias("by_run_id"),
                BY_ROW,
                pl.lit("merge").alias("how"),
            ),
        )
        store.flush_held(REPLACED_ROWS)
        low, high = keys[BY_ROW].min(), keys[BY_ROW].max()
        store.execute(
            f"DELETE FROM {quote(table)} AS t USING {REPLACED_ROWS} AS r "
            "WHERE t.run_id = r.run_id AND t.row_number = r.row_number AND r.by_run_id = ? "
            "AND r.how = 'merge' AND r.target_table = ? AND r.by_row_number BETWEEN ? AND ?",
            [run_id, table, low, high],
        )
    return keep


def record_load(
    store: Store, run_id: int, mode: LoadMode, read_options: Mapping[str, Any] | None
) -> None:
    """A run's mode, and how its raw text is read again (a CSV run's header and dialect)."""
    store.execute(
        f"UPDATE {RUNS} SET load_mode = ?, read_options = ? WHERE run_id = ?",
        [mode, json.dumps(read_options) if read_options is not None else None, run_id],
    )


def latest_completed(store: Store, run_ids: Sequence[int]) -> list[int]:
    """Those of ``run_ids`` that are the latest completed run into their table: content whose
    re-run in ``replace`` or ``merge`` mode would change nothing."""
    if not run_ids:
        return []
    rows = store.rows(
        f"SELECT run_id FROM {RUNS} AS r WHERE run_id IN (SELECT unnest(?)) AND run_id = ("
        f"SELECT max(run_id) FROM {RUNS} WHERE status = 'completed' "
        "AND target_table = r.target_table)",
        [list(run_ids)],
    )
    return [int(row[0]) for row in rows]
