"""From JSON record texts to per-key value columns that remember each value's JSON type.

DuckDB's JSON functions parse every record once, vectorized, and hand back each requested
key's value as JSON text, one column per key; NumPy then reads each token's kind from its
bytes (:mod:`engine.sources.json_kinds`). The oracle is Python's
``json.loads`` (what ``model_validate(json.loads(raw))`` sees), and DuckDB's parser differs from
it in places: it accepts trailing commas (``{"a": 1,}``), keeps the first of duplicate keys
(Python keeps the last) and rejects lone surrogate escapes (``"\\ud800"``, which Python reads).
So the records DuckDB rejects, and those where it could disagree (a comma before a closing
bracket, a requested key written twice or with a ``\\u`` escape), get Python's verdict instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from engine.batch import KEYS, MALFORMED, MALFORMED_MSG, RAW, Kind, kind_column
from engine.columns import NEEDS_PYTHON, token_column
from engine.sources.json_doubts import Mask, doubtful, key_pattern, more_keys, skip_spaces
from engine.sources.json_kinds import (
    Bytes,
    Offsets,
    first_bytes,
    string_buffers,
    token_kinds,
    token_text,
)
from engine.store.connect import connect

__all__ = ["JsonValues", "escape_surrogates", "token_column"]

SURROGATE = re.compile("[\ud800-\udfff]")
BACKSLASH = ord("\\")


def _path(key: str) -> str:
    """A JSON Pointer: needs no quoting, only ``~`` and ``/`` escaped."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


class JsonValues:
    """Extracts ``keys`` from JSON object texts; one in-memory DuckDB connection per reader."""

    def __init__(self, keys: Sequence[str], *, want_all_keys: bool) -> None:
        self.keys = tuple(keys)
        self.want_all_keys = want_all_keys
        self._con = connect(":memory:", config={"threads": 1})
        self._key_pattern = key_pattern(self.keys)
        paths = ", ".join("'" + _path(k).replace("'", "''") + "'" for k in self.keys)
        key_list = "json_keys(t)" if want_all_keys else "NULL::VARCHAR[]"
        extract = f"json_extract(t, [{paths}])" if self.keys else "[]::VARCHAR[]"
        # Each requested key's token as its own column (DuckDB's list indexing is cheap;
        # Polars' per-key ``list.get`` is not).
        self._tokens = [f"k{i}" for i in range(len(self.keys))]
        columns = "".join(f", tokens[{i + 1}] AS {name}" for i, name in enumerate(self._tokens))

        def query(tokens: str) -> str:
            return (
                f"SELECT tokens IS NOT NULL AS ok{columns}, "
                f"CASE WHEN tokens IS NOT NULL THEN {key_list} END AS keys FROM "
                f"(SELECT t, {tokens} AS tokens FROM texts)"
            )

        # Whether a text is JSON at all: ``json_valid`` first parses every text twice;
        # ``try`` of the extraction parses once, but DuckDB redoes a 2,048-row chunk row by
        # row when a text in it is not JSON (about 2 ms). So ``try`` while the texts are
        # clean, ``json_valid`` for the batch after one that held text DuckDB rejected. The
        # verdicts are the same (and a text DuckDB rejects gets Python's anyway).
        self._query_clean = query(
            f"try({extract})" if self.keys else "CASE WHEN json_valid(t) THEN []::VARCHAR[] END"
        )
        self._query_checked = query(f"CASE WHEN json_valid(t) THEN {extract} END")
        self._clean = True

    def close(self) -> None:
        self._con.close()

    def frame(self, records: pl.Series) -> pl.DataFrame:
        """Columns: MALFORMED, MALFORMED_MSG, KEYS, then per key its text, kind and JSON token."""
        # DuckDB reads the texts' Arrow C stream by a replacement scan of the local name
        # ``texts``: nothing registered (registered frames stay in memory), and none of the
        # relation API's per-call binding (a third of this call's fixed cost).
        texts = pl.DataFrame({"t": records}).__arrow_c_stream__()  # noqa: F841 - read by DuckDB
        query = self._query_clean if self._clean else self._query_checked
        table = self._con.sql(query).to_arrow_table()
        found = pl.from_arrow(table)
        assert isinstance(found, pl.DataFrame)
        ok = found["ok"].to_numpy()
        self._clean = bool(ok.all())
        offsets, buf = string_buffers(records.to_arrow())
        rejected = np.flatnonzero(~ok | self._doubtful(found, records, ok, offsets, buf))
        parsed = found.with_columns(
            pl.Series(RAW, records),
            pl.lit(None, pl.String).alias(MALFORMED),
            pl.lit(None, pl.String).alias(MALFORMED_MSG),
            pl.lit(False).alias(NEEDS_PYTHON),
            pl.col("keys").cast(pl.List(pl.String)),
        )
        tokens = [table.column(name) for name in self._tokens]
        if len(rejected):
            parsed = self._second_opinion(parsed, rejected.tolist())
            tokens = [parsed[name].to_arrow() for name in self._tokens]
        out = self._output(parsed, tokens, offsets, buf)
        if not np.count_nonzero(buf[offsets[0] : offsets[-1]] == BACKSLASH):
            return out  # the usual case: no escapes anywhere in the batch
        return _unescape_strings(out, self.keys)

    def _output(
        self,
        parsed: pl.DataFrame,
        tokens: list[pa.Array | pa.ChunkedArray],
        offsets: Offsets,
        buf: Bytes,
    ) -> pl.DataFrame:
        """The output columns; ``tokens`` are the keys' token columns as Arrow arrays."""
        # A record that is JSON but no object (an array, a number...): ``model_type``.
        first = first_bytes(skip_spaces(offsets, buf), offsets[1:], buf)
        odd = np.flatnonzero(parsed["ok"].to_numpy() & (first != ord("{")))
        not_object = np.zeros(parsed.height, dtype=np.bool_)
        if len(odd):  # what Python's ``str.lstrip`` would skip, beyond JSON's whitespace
            texts = parsed[RAW].gather(odd).str.strip_chars_start().str.head(1)
            not_object[odd[(texts != "{").to_numpy()]] = True
        wrong = pl.Series(not_object)
        columns: list[pl.Expr | pl.Series] = [
            pl.when(wrong).then(pl.lit("model_type")).otherwise(pl.col(MALFORMED)).alias(MALFORMED),
            pl.when(wrong)
            .then(pl.lit("Input should be a valid dictionary"))
            .otherwise(pl.col(MALFORMED_MSG))
            .alias(MALFORMED_MSG),
            pl.col("keys").alias(KEYS),
            pl.col(NEEDS_PYTHON),
        ]
        for key, name, arrow in zip(self.keys, self._tokens, tokens, strict=True):
            kinds = token_kinds(arrow)
            kind = pl.Series(kind_column(key), kinds)
            text = token_text(pl.col(name), pl.lit(kind), np.bincount(kinds, minlength=len(Kind)))
            columns += [text.alias(key), kind, pl.col(name).alias(token_column(key))]
        return parsed.select(columns)

    def _doubtful(
        self, found: pl.DataFrame, records: pl.Series, ok: Mask, offsets: Offsets, buf: Bytes
    ) -> Mask:
        """Records DuckDB accepted but Python's json might read differently."""
        if not self.keys:
            return doubtful(records, offsets, buf, ok, None, None, None)
        present = np.zeros(found.height, dtype=np.int64)
        for name in self._tokens:
            present += found[name].is_not_null().to_numpy()
        # How many keys a record holds (duplicates included), as DuckDB counts them.
        if self.want_all_keys:
            counts = found["keys"].list.len().fill_null(0).to_numpy()
        else:
            # An upper bound read from the bytes first: only a record that may hold more
            # keys than it has requested ones (none, usually) has DuckDB count them.
            counts = present.copy()
            more = more_keys(records, offsets, buf, ok, present)
            if len(more):
                texts = pl.DataFrame({"t": records.gather(more)}).__arrow_c_stream__()  # noqa: F841
                keys = self._con.sql("SELECT len(json_keys(t)) AS n FROM texts").fetchnumpy()
                counts[more] = keys["n"]
        return doubtful(records, offsets, buf, ok, counts, present, self._key_pattern)

    def _second_opinion(self, parsed: pl.DataFrame, rejected: list[int]) -> pl.DataFrame:
        """Re-parse doubtful records with Python's json, row by (rare) row."""
        raws = parsed[RAW].gather(rejected).to_list()
        ok: list[bool] = []
        tokens: list[list[str | None] | None] = []
        keys: list[list[str] | None] = []
        errors: list[str | None] = []
        messages: list[str | None] = []
        needs_python: list[bool] = []
        for raw in raws:
            try:
                value = json.loads(raw)
                # Written back too: a value nested deeper than the stack allows fails here
                # as it does in json.loads at other depths.
                found = (
                    [_to_token(value[k]) if k in value else None for k in self.keys]
                    if isinstance(value, dict)
                    else []
                )
            except (ValueError, RecursionError) as exc:
                ok.append(False)
                tokens.append(None)
                keys.append(None)
                errors.append("json_invalid")
                messages.append(f"Invalid JSON: {exc}")
                needs_python.append(False)
                continue
            ok.append(True)
            errors.append(None)
            messages.append(None)
            if isinstance(value, dict):
                names = [escape_surrogates(k) for k in value]
                # A lone surrogate cannot live in an Arrow string: Pydantic decides the row.
                lone = any(t is not None and t != escape_surrogates(t) for t in found) or any(
                    n != k for n, k in zip(names, value, strict=True)
                )
                tokens.append([None if t is None else escape_surrogates(t) for t in found])
                keys.append(names if self.want_all_keys else None)
                needs_python.append(lone)
            else:
                tokens.append(None)
                keys.append(None)
                needs_python.append(False)
        patch = pl.DataFrame(
            {
                "__i": pl.Series(rejected, dtype=pl.UInt32),
                "ok": ok,
                **{
                    name: pl.Series([None if t is None else t[i] for t in tokens], dtype=pl.String)
                    for i, name in enumerate(self._tokens)
                },
                "keys": pl.Series(keys, dtype=pl.List(pl.String)),
                MALFORMED: pl.Series(errors, dtype=pl.String),
                MALFORMED_MSG: pl.Series(messages, dtype=pl.String),
                NEEDS_PYTHON: pl.Series(needs_python, dtype=pl.Boolean),
            }
        )
        patch = patch.with_columns(pl.Series(RAW, raws))
        base = parsed.with_row_index("__i")
        kept = base.filter(~pl.col("__i").is_in(patch["__i"].implode()))
        return pl.concat([kept, patch.select(base.columns)]).sort("__i").drop("__i")


def escape_surrogates(text: str) -> str:
    """Lone surrogates (which UTF-8 cannot hold) as JSON ``\\uXXXX`` escapes."""
    return SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _to_token(value: Any) -> str:
    """A Python JSON value back to JSON text, keeping NaN/Infinity as Python's json writes them;
    an object or array compact, as DuckDB writes the records it reads itself."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _unescape_strings(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """JSON strings with backslash escapes are rare: decode just those, at Series level."""
    for key in keys:
        # A row holding a lone surrogate is Pydantic's (NEEDS_PYTHON): its text stays escaped.
        needs = (
            (pl.col(kind_column(key)) == Kind.STR)
            & pl.col(token_column(key)).str.contains("\\", literal=True)
            & ~pl.col(NEEDS_PYTHON)
        )
        index = frame.select(pl.arg_where(needs)).to_series()
        if len(index):
            decoded = frame[token_column(key)].gather(index).str.json_decode(pl.String)
            frame = frame.with_columns(frame[key].scatter(index, decoded))
    return frame
