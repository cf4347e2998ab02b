"""From JSON record texts to per-key value columns that remember each value's JSON type.

DuckDB's JSON functions parse every record once, vectorized, and hand back each requested
key's value as JSON text; Polars then classifies the texts into kinds. Records DuckDB rejects
get a second opinion from Python's ``json`` (which also accepts NaN and Infinity, as
``json.loads`` does for Pydantic) so that the verdict matches ``model_validate(json.loads(raw))``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from engine.batch import KEYS, MALFORMED, MALFORMED_MSG, RAW, Kind, kind_column

TOKENS = "__tokens"


def token_column(key: str) -> str:
    return f"__json:{key}"


def _path(key: str) -> str:
    """A JSON Pointer: needs no quoting, only ``~`` and ``/`` escaped."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


class JsonValues:
    """Extracts ``keys`` from JSON object texts; one in-memory DuckDB connection per reader."""

    def __init__(self, keys: Sequence[str], *, want_all_keys: bool) -> None:
        self.keys = tuple(keys)
        self.want_all_keys = want_all_keys
        self._con = duckdb.connect(":memory:", config={"threads": 1})
        paths = ", ".join("'" + _path(k).replace("'", "''") + "'" for k in self.keys)
        extract = f"json_extract(t, [{paths}])" if self.keys else "[]::VARCHAR[]"
        key_list = "json_keys(t)" if want_all_keys else "NULL::VARCHAR[]"
        self._query = (
            f"SELECT ok, CASE WHEN ok THEN {extract} END AS tokens, "
            f"CASE WHEN ok THEN {key_list} END AS keys FROM "
            "(SELECT t, json_valid(t) AS ok FROM texts)"
        )

    def close(self) -> None:
        self._con.close()

    def frame(self, records: pl.Series) -> pl.DataFrame:
        """Columns: MALFORMED, MALFORMED_MSG, KEYS, then per key its text, kind and JSON token."""
        # A relation over the Arrow data, not register(): registered frames stay in memory.
        arrow = pl.DataFrame({"t": records}).to_arrow(compat_level=pl.CompatLevel.newest())
        relation = self._con.from_arrow(arrow).query("texts", self._query)
        assert relation is not None
        found = pl.from_arrow(relation.to_arrow_table())
        assert isinstance(found, pl.DataFrame)
        parsed = found
        parsed = parsed.with_columns(
            pl.Series(RAW, records),
            pl.lit(None, pl.String).alias(MALFORMED),
            pl.lit(None, pl.String).alias(MALFORMED_MSG),
            pl.col("keys").cast(pl.List(pl.String)),
        )
        rejected = parsed.select(pl.arg_where(~pl.col("ok"))).to_series()
        if len(rejected):
            parsed = self._second_opinion(parsed, rejected.to_list())
        first = pl.col(RAW).str.strip_chars_start().str.head(1)
        not_object = pl.col("ok") & (first != "{")
        parsed = parsed.with_columns(
            pl.when(not_object)
            .then(pl.lit("model_type"))
            .otherwise(pl.col(MALFORMED))
            .alias(MALFORMED),
            pl.when(not_object)
            .then(pl.lit("Input should be a valid dictionary"))
            .otherwise(pl.col(MALFORMED_MSG))
            .alias(MALFORMED_MSG),
        )
        columns: list[pl.Expr] = [
            pl.col(MALFORMED),
            pl.col(MALFORMED_MSG),
            pl.col("keys").alias(KEYS),
        ]
        for i, key in enumerate(self.keys):
            columns.extend(_classify(pl.col("tokens").list.get(i, null_on_oob=True), key))
        out = parsed.select(columns)
        if not parsed[RAW].str.contains("\\", literal=True).any():
            return out  # the usual case: no escapes anywhere in the batch
        return _unescape_strings(out, self.keys)

    def _second_opinion(self, parsed: pl.DataFrame, rejected: list[int]) -> pl.DataFrame:
        """Re-parse the records DuckDB rejected with Python's json, row by (rare) row."""
        raws = parsed[RAW].gather(rejected).to_list()
        ok: list[bool] = []
        tokens: list[list[str | None] | None] = []
        keys: list[list[str] | None] = []
        errors: list[str | None] = []
        messages: list[str | None] = []
        for raw in raws:
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                ok.append(False)
                tokens.append(None)
                keys.append(None)
                errors.append("json_invalid")
                messages.append(f"Invalid JSON: {exc}")
                continue
            ok.append(True)
            errors.append(None)
            messages.append(None)
            if isinstance(value, dict):
                tokens.append([_to_token(value[k]) if k in value else None for k in self.keys])
                keys.append(list(value))
            else:
                tokens.append(None)
                keys.append(None)
        patch = pl.DataFrame(
            {
                "__i": pl.Series(rejected, dtype=pl.UInt32),
                "ok": ok,
                "tokens": pl.Series(tokens, dtype=pl.List(pl.String)),
                "keys": pl.Series(keys, dtype=pl.List(pl.String)),
                MALFORMED: pl.Series(errors, dtype=pl.String),
                MALFORMED_MSG: pl.Series(messages, dtype=pl.String),
            }
        )
        patch = patch.with_columns(pl.Series(RAW, raws))
        base = parsed.with_row_index("__i")
        kept = base.filter(~pl.col("__i").is_in(patch["__i"].implode()))
        return pl.concat([kept, patch.select(base.columns)]).sort("__i").drop("__i")


def _to_token(value: Any) -> str:
    """A Python JSON value back to JSON text, keeping NaN/Infinity as Python's json writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value, ensure_ascii=False)


def _classify(token: pl.Expr, key: str) -> list[pl.Expr]:
    first = token.str.head(1)
    kind = (
        pl.when(token.is_null())
        .then(pl.lit(Kind.ABSENT))
        .when(first == '"')
        .then(pl.lit(Kind.STR))
        .when(first == "n")
        .then(pl.lit(Kind.NULL))
        .when(first.is_in(["t", "f"]))
        .then(pl.lit(Kind.BOOL))
        .when(first == "{")
        .then(pl.lit(Kind.OBJECT))
        .when(first == "[")
        .then(pl.lit(Kind.ARRAY))
        .when(token.str.contains(r"^-?[0-9]+$"))
        .then(pl.lit(Kind.INT))
        .otherwise(pl.lit(Kind.FLOAT))
        .cast(pl.UInt8)
    )
    text = (
        pl.when(first == '"')
        .then(token.str.slice(1).str.head(-1))
        .when(first == "n")
        .then(None)
        .otherwise(token)
    )
    return [text.alias(key), kind.alias(kind_column(key)), token.alias(token_column(key))]


def _unescape_strings(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """JSON strings with backslash escapes are rare: decode just those, at Series level."""
    for key in keys:
        needs = (pl.col(kind_column(key)) == Kind.STR) & pl.col(token_column(key)).str.contains(
            "\\", literal=True
        )
        index = frame.select(pl.arg_where(needs)).to_series()
        if len(index):
            decoded = frame[token_column(key)].gather(index).str.json_decode(pl.String)
            frame = frame.with_columns(frame[key].scatter(index, decoded))
    return frame
