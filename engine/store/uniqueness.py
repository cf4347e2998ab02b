"""Unique keys: a row whose key is already stored (or earlier in its run) is invalid.

Pydantic validates one row at a time and cannot say this; a schema declares it with
``__unique__ = ("external_id",)``. The first valid occurrence is kept and later ones become
invalid rows with a ``duplicate`` error naming where the first one is. Batches are checked
in order against the table itself (which, inside the run's transaction, already holds the
run's earlier batches), so the outcome does not depend on how the input was chunked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl

from engine.columns import ROW as BATCH_ROW
from engine.store.ddl import quote
from engine.store.store import Store
from engine.validation.common import json_text
from engine.validation.error_list import INPUT, LOC, MSG, RULE, SEQ, TYPE, VIOLATION_SCHEMA

FIRST_RUN = "__first_run"
FIRST_ROW = "__first_row"
ROW = "row_number"
SCHEMA = {ROW if name == BATCH_ROW else name: dtype for name, dtype in VIOLATION_SCHEMA.items()}


def split_duplicates(
    store: Store,
    table: str,
    key: Sequence[str],
    loc: Sequence[str],
    run_id: int,
    valid: pl.DataFrame,
    stored: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows to keep, the duplicates' violations: a ``duplicate`` error each, given whole).

    ``valid`` is shaped like its table (``row_number`` first); so are the violations.
    ``stored``: what ``stored_firsts`` says of their keys, when the caller asked already."""
    columns = list(key)
    complete = pl.all_horizontal([pl.col(c).is_not_null() for c in columns])
    ordered = valid.sort(ROW)
    first_in_batch = pl.col(ROW).first().over(columns)
    marked = ordered.with_columns(
        pl.when(complete & (pl.col(ROW) != first_in_batch)).then(pl.lit(run_id)).alias(FIRST_RUN),
        pl.when(complete & (pl.col(ROW) != first_in_batch)).then(first_in_batch).alias(FIRST_ROW),
    )
    # Keys already stored win over a first occurrence in this batch: a row repeating a key
    # that an earlier row of the batch repeated from the table names the stored row.
    if stored is None:
        stored = stored_firsts(store, table, columns, marked.filter(complete))
    if stored.height:
        marked = marked.join(
            stored, on=columns, how="left", suffix="_stored", maintain_order="left"
        ).with_columns(
            pl.coalesce(f"{FIRST_RUN}_stored", FIRST_RUN).alias(FIRST_RUN),
            pl.coalesce(f"{FIRST_ROW}_stored", FIRST_ROW).alias(FIRST_ROW),
        )
    duplicate = pl.col(FIRST_ROW).is_not_null()
    keep = marked.filter(~duplicate).select(valid.columns)
    dupes = marked.filter(duplicate)
    if dupes.height == 0:
        return keep, pl.DataFrame(schema=SCHEMA)
    names = ", ".join(loc)
    # The input is the key as stored (what makes the rows duplicates), decimals as numbers,
    # NaN and the infinities as Python's json writes them (Polars would write null).
    texts = [_key_text(c, valid.schema[c]) for c in columns]
    if len(columns) == 1:
        value = texts[0]
    else:
        parts: list[pl.Expr] = []
        for number, (column, text) in enumerate(zip(columns, texts, strict=True)):
            opening = "{" if number == 0 else ","
            parts += [pl.lit(opening + json.dumps(column, ensure_ascii=False) + ":"), text]
        value = pl.concat_str([*parts, pl.lit("}")])
    msg = pl.format(
        f"Duplicate {names}: first seen in run {{}}, row {{}}", pl.col(FIRST_RUN), pl.col(FIRST_ROW)
    )
    where = list(loc) if len(loc) == 1 else []
    violations = dupes.select(
        ROW,
        pl.lit(0, pl.Int32).alias(SEQ),
        pl.lit(None, pl.Int32).alias(RULE),
        value.alias(INPUT),
        pl.lit("duplicate").alias(TYPE),
        pl.lit(where, pl.List(pl.String)).alias(LOC),
        msg.alias(MSG),
    )
    return keep, violations.cast(SCHEMA)  # type: ignore[arg-type]


def stored_firsts(store: Store, table: str, key: Sequence[str], rows: pl.DataFrame) -> pl.DataFrame:
    """The keys of ``rows`` that ``table`` holds, with the first row holding each."""
    columns = list(key)
    keys = rows.select(columns).unique()
    if keys.height == 0:
        return pl.DataFrame()
    condition = " AND ".join(f"k.{quote(c)} = t.{quote(c)}" for c in columns)
    selected = ", ".join(f"k.{quote(c)}" for c in columns)
    return store.frame_over(
        "__keys",
        keys,
        f"SELECT {selected}, min(t.run_id) AS {FIRST_RUN}, "
        f"arg_min(t.row_number, (t.run_id, t.row_number)) AS {FIRST_ROW} "
        f"FROM __keys k JOIN {quote(table)} t ON {condition} GROUP BY ALL",
    )


def _key_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """One key column's value as JSON text."""
    value = pl.col(column)
    if isinstance(dtype, pl.Decimal):
        return pl.when(value.is_null()).then(pl.lit("null")).otherwise(value.cast(pl.String))
    if dtype.is_float():
        return (
            pl.when(value.is_nan())
            .then(pl.lit("NaN"))
            .when(value == float("inf"))
            .then(pl.lit("Infinity"))
            .when(value == float("-inf"))
            .then(pl.lit("-Infinity"))
            .otherwise(json_text(value))
        )
    return json_text(value)
