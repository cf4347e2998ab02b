"""Rows already in memory (Polars, pandas and Arrow frames, dicts) as RawBatches.

Each row becomes its JSON form (``engine.sources.json_forms``): its lineage text, which then
goes down the one data path exactly like an NDJSON record. What Pydantic sees for such a row
is the row itself (``model_validate(row)``, with ``row`` as ``frame.iter_rows(named=True)``
gives it): for JSON's own types the JSON form is the same data. A value of a type JSON lacks
(a date, a datetime, a decimal...) is written as text; where the field it goes to takes that
type laxly (a ``datetime`` field and a Datetime column), Pydantic gives the value and its
``isoformat()`` text the same verdict, so the vectorized rules decide. Anywhere else (a
strict field, a ``str`` field given a date, bytes, nested values) the row goes to Pydantic
itself, which validates the row as the frame holds it: the verdict is Pydantic's either way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import polars as pl

from engine.batch import LINE, MALFORMED, MALFORMED_MSG, RAW, ROW, RawBatch
from engine.columns import NEEDS_PYTHON
from engine.errors import Remedy, SourceError
from engine.sources.frame_budget import LineageDigest, cut
from engine.sources.frame_values import frame_values
from engine.sources.json import json_batch
from engine.sources.json_forms import column_tokens, object_text, odd_offset, row_json
from engine.sources.json_values import JsonValues
from engine.store.connect import connect
from engine.validation.compiler import CompiledSchema

FRAME_ROWS = 100_000  # rows per batch when a frame or an iterable of rows is cut
# The dtypes whose values are JSON's own types in Python (None, bool, int, float, str).
FAMILIES: dict[type[pl.DataType], str] = {
    pl.Date: "date",
    pl.Datetime: "datetime",
    pl.Time: "time",
    pl.Decimal: "decimal",
}
# Wrappers Pydantic passes a value through unchanged to the type they wrap (an after
# validator sees the validated value).
TRANSPARENT = ("default", "nullable", "function-after")


def _json_native(dtype: pl.DataType) -> bool:
    return (
        dtype in (pl.Null(), pl.Boolean())
        or dtype.is_integer()
        or dtype.is_float()
        or isinstance(dtype, pl.String | pl.Categorical | pl.Enum)
    )


def lax_types(schema: CompiledSchema) -> dict[str, str]:
    """Input key -> the core-schema type of its field (``datetime``, ``date``...) where the
    field takes a value of that type laxly: no strict mode, no validator before the type."""
    definitions: dict[str, Any] = {}

    def resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
        while node["type"] in ("definitions", "definition-ref"):
            if node["type"] == "definitions":
                definitions.update({d["ref"]: d for d in node["definitions"]})
                node = node["schema"]
            else:
                node = definitions[node["schema_ref"]]
        return node

    node = resolve(schema.model.__pydantic_core_schema__)
    while node["type"] != "model" and "schema" in node:
        node = resolve(node["schema"])
    if node["type"] != "model":
        return {}
    fields_node = resolve(node["schema"])
    config = node.get("config") or {}
    if config.get("strict") or fields_node.get("strict") or node.get("strict"):
        return {}
    keys = {program.name: program.keys for program in schema.fields}
    found: dict[str, str] = {}
    for name, spec in (fields_node.get("fields") or {}).items():
        leaf = resolve(spec["schema"])
        while leaf["type"] in TRANSPARENT:
            leaf = resolve(leaf["schema"])
        if leaf["type"] in FAMILIES.values() and not leaf.get("strict"):
            for key in keys.get(name, ()):
                found[key] = leaf["type"]
    return found


class FrameEncoder:
    """Turns chunks of in-memory rows into RawBatches for one compiled schema."""

    def __init__(self, schema: CompiledSchema) -> None:
        self.keys = schema.input_keys
        self.read = set(self.keys)
        self.lax = lax_types(schema)
        self.values = JsonValues(self.keys, want_all_keys=schema.extra == "forbid")
        self.parsers: dict[tuple[str, ...], JsonValues] = {}  # by the keys parsed
        self.duck: duckdb.DuckDBPyConnection | None = None  # writes floats as JSON

    def close(self) -> None:
        self.values.close()
        for values in self.parsers.values():
            values.close()
        if self.duck is not None:
            self.duck.close()

    def _floats(self, numbers: pl.Series) -> pl.Series:
        """Float64 values as JSON texts, as DuckDB writes them (``frame_values``)."""
        if self.duck is None:
            self.duck = connect(":memory:", config={"threads": 1})
        values = pl.DataFrame({"x": numbers}).__arrow_c_stream__()  # noqa: F841 - read by DuckDB
        found: pl.DataFrame = self.duck.sql("SELECT to_json(x)::VARCHAR AS j FROM values").pl()
        return found.get_column("j")

    def _parse(self, keys: tuple[str, ...], texts: pl.Series) -> pl.DataFrame:
        """Some keys' values parsed from JSON object texts of theirs (``frame_values``)."""
        if keys not in self.parsers:
            self.parsers[keys] = JsonValues(keys, want_all_keys=False)
        return self.parsers[keys].frame(texts)

    def _python_columns(self, frame: pl.DataFrame) -> list[str]:
        """Columns the model reads whose values only Pydantic can judge as they are."""
        found = []
        for name, dtype in frame.schema.items():
            if name not in self.read or _json_native(dtype):
                continue
            family = FAMILIES.get(type(dtype))  # lists, structs, durations, bytes: never native
            if family is None or self.lax.get(name) != family:
                found.append(name)
        return found

    def _python_rows(self, frame: pl.DataFrame) -> Iterator[pl.Series]:
        """Masks of the rows only Pydantic can judge: those with a value in a column of
        ``_python_columns``, and zoned datetimes whose offset has seconds (their text would
        be refused where Pydantic takes the value)."""
        for name in self._python_columns(frame):
            yield frame.get_column(name).is_not_null()
        for index, (name, dtype) in enumerate(frame.schema.items()):
            if name in self.read and isinstance(dtype, pl.Datetime) and dtype.time_zone:
                column = frame.to_series(index)
                yield column.to_frame().select(odd_offset(pl.first(), dtype)).to_series()

    def frame_batch(self, frame: pl.DataFrame, first_row: int) -> RawBatch:
        tokens = column_tokens(frame)
        raw = object_text(frame, tokens)
        values = None
        if frame.width:  # the values from the columns' types, parsed only where they must be
            values = frame_values(
                frame,
                tokens,
                self.keys,
                want_all_keys=self.values.want_all_keys,
                parse=self._parse,
                floats=self._floats,
            )
        needs = None
        for present in self._python_rows(frame):
            needs = present if needs is None else needs | present

        def row(number: int) -> Any:
            return frame.row(number - first_row, named=True)

        return self._batch(raw, needs, None, first_row, row, values, tuple(frame.columns))

    def rows_batch(self, rows: list[Any], first_row: int) -> RawBatch:
        texts: list[str] = []
        python: list[bool] = []
        not_object: list[str | None] = []
        for item in rows:
            text, own = row_json(item)
            texts.append(text)
            python.append(own)
            not_object.append(None if isinstance(item, Mapping) else "model_type")
        raw = pl.Series(RAW, texts, dtype=pl.String)
        malformed = pl.Series(MALFORMED, not_object, dtype=pl.String)
        return self._batch(
            raw,
            pl.Series(python, dtype=pl.Boolean),
            malformed,
            first_row,
            lambda n: rows[n - first_row],
        )

    def _batch(
        self,
        raw: pl.Series,
        needs_python: pl.Series | None,
        malformed: pl.Series | None,
        first_row: int,
        python_input: Any,
        values: pl.DataFrame | None = None,
        columns: tuple[str, ...] | None = None,
    ) -> RawBatch:
        """``values``: the key columns of a frame read natively (``frame_values``); the
        texts are parsed when not given."""
        height = len(raw)
        if malformed is None:
            malformed = pl.repeat(None, height, dtype=pl.String, eager=True)
        frame = pl.DataFrame(
            {
                LINE: pl.int_range(first_row, first_row + height, dtype=pl.Int64, eager=True),
                RAW: raw,
                MALFORMED: malformed,
            }
        ).with_columns(
            # A row that is not a dict: the validator words it for the model (model_type).
            pl.when(pl.col(MALFORMED).is_not_null())
            .then(pl.lit("Input should be a valid dictionary"))
            .otherwise(pl.lit(None, pl.String))
            .alias(MALFORMED_MSG)
        )
        if values is None:
            out = json_batch(frame, self.values, first_row).frame
        else:
            rows = pl.int_range(first_row, first_row + height, dtype=pl.Int64, eager=True)
            out = pl.concat(
                [frame.select(LINE, RAW), values, rows.alias(ROW).to_frame()], how="horizontal"
            )
        if needs_python is not None and needs_python.any():
            out = out.with_columns(pl.col(NEEDS_PYTHON) | pl.lit(needs_python))
        return RawBatch(out, self.keys, typed=True, python_inputs=python_input, columns=columns)


# -- what in-memory data can be ------------------------------------------------------------


def is_frame(data: Any) -> bool:
    """A Polars or pandas DataFrame, or an Arrow table or record batch."""
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return True
    package = type(data).__module__.split(".")[0]
    return package in ("pandas", "pyarrow") and hasattr(data, "columns")


def to_polars(data: Any, name: str = "python:frame") -> pl.DataFrame:
    """A frame as Polars: pandas through ``pl.from_pandas`` (its NaN and None are nulls),
    Arrow through ``pl.from_arrow``. ``name``: the input, for a frame Polars cannot read."""
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, pl.DataFrame):
        return data
    if type(data).__module__.split(".")[0] == "pandas":
        import pyarrow as pa

        repeated = sorted({str(c) for c in data.columns if list(data.columns).count(c) > 1})
        if repeated:
            raise SourceError(
                name,
                f"the frame has more than one column named {repeated[0]!r}",
                column=repeated[0],
                hint="rename the columns so that each name is used once",
            )
        try:
            return pl.from_pandas(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise _mixed_types(data, name, exc) from exc
    names = list(getattr(getattr(data, "schema", None), "names", None) or ())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SourceError(
            name,
            f"more than one column is named {repeated[0]!r}",
            column=repeated[0],
            hint="rename the columns so that each name is used once",
        )
    try:
        frame = pl.from_arrow(data)
    except pl.exceptions.ComputeError as exc:
        raise _unreadable_zone(data, name) or SourceError(
            name, f"Arrow data Polars cannot read ({str(exc).splitlines()[0]})"
        ) from exc
    assert isinstance(frame, pl.DataFrame)
    uuids = [
        field.name
        for field in getattr(data, "schema", ())
        if getattr(field.type, "extension_name", None) == "arrow.uuid"
    ]
    return frame.with_columns(_uuid_text(n) for n in uuids) if uuids else frame


UUID_PARTS = ((0, 8), (8, 4), (12, 4), (16, 4), (20, 12))  # of its 32 hex digits


def _uuid_text(name: str) -> pl.Expr:
    """An Arrow UUID column (16 bytes each; what DuckDB writes for a UUID) as the UUIDs'
    text: the row holds, and its lineage shows, ``8ca59966-66ce-...``, not escaped bytes."""
    digits = pl.col(name).bin.encode("hex")
    parts = [digits.str.slice(start, length) for start, length in UUID_PARTS]
    return pl.concat_str(parts, separator="-").alias(name)


def _mixed_types(data: Any, name: str, exc: Exception) -> SourceError:
    """A pandas column Arrow cannot hold: an object column whose values are of several types
    (``[1, "2"]``). Its values as they are can only be given as rows (dicts)."""
    import pyarrow as pa

    column = None
    for label in data.columns:
        try:
            pa.array(data[label], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            column = str(label)
            break
    kinds = ""
    if column is not None:
        found = dict.fromkeys(type(v).__name__ for v in data[column] if v is not None)
        kinds = f" ({', '.join(found)})"
    return SourceError(
        name,
        f"a column holds values of several types{kinds}, which one Arrow column cannot hold "
        f"({str(exc).splitlines()[0]})",
        column=column,
        hint="cast the column to one type, or pass df.to_dict('records') to validate the "
        "values as they are",
    )


def _unreadable_zone(data: Any, name: str) -> SourceError | None:
    """A timestamp column in a time zone Polars cannot hold: Arrow allows a fixed offset
    ("+05:30"), Polars only named zones. Not converted to UTC: a date field reads the local
    date of such a timestamp, which UTC would change."""
    import pyarrow as pa

    for field in data.schema:
        zone = getattr(field.type, "tz", None) if pa.types.is_timestamp(field.type) else None
        if zone is None:
            continue
        try:
            ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError):
            return SourceError(
                name,
                f"its timestamps are in the time zone {zone!r}, which Polars cannot hold "
                "(it reads named zones only)",
                column=field.name,
                hint="write the column in UTC or in a named time zone",
            )
    return None


Chunk = pl.DataFrame | list[Any]


def chunks(data: Any, rows: int = FRAME_ROWS) -> Iterator[Chunk]:
    """In-memory data cut into chunks of at most ``rows`` rows: frames, or lists of rows."""
    if is_frame(data):
        frame = to_polars(data)
        for start in range(0, max(frame.height, 1), rows):
            yield frame.slice(start, rows)
        return
    iterator = iter(data)
    while piece := list(itertools.islice(iterator, rows)):
        yield piece


def row_too_long(name: str, row: int, limit: int) -> SourceError:
    """A row of a Parquet or Arrow file whose JSON text (its lineage) is over the limit."""
    return SourceError(
        name,
        f"row {row} is longer than {limit:,} bytes as JSON text (its lineage)",
        hint=Remedy("raise {} if the file is right", "max_record_bytes"),
    )


class RecordsSource:
    """In-memory rows (or Arrow batches read from a file) as RawBatches, their JSON forms
    fingerprinted as the NDJSON text they make: the same rows are the same content.
    ``max_record_bytes``: the longest JSON text of a row read (files; None: no limit)."""

    blank_lines = 0

    def __init__(
        self,
        pieces: Iterable[Chunk],
        schema: CompiledSchema,
        fmt: str,
        max_record_bytes: int | None = None,
        name: str = "python:frame",
    ) -> None:
        self.format = fmt
        self.name = name
        self.keys = schema.input_keys
        self.schema = schema
        self.pieces = pieces
        self.max_record_bytes = max_record_bytes
        self.reader = LineageDigest()

    def batches(self) -> Iterator[RawBatch]:
        encoder = FrameEncoder(self.schema)
        next_row = 1
        try:
            for piece in cut(self.pieces, self.schema, self.reader):
                if isinstance(piece, pl.DataFrame):
                    if not piece.height:
                        continue
                    batch = encoder.frame_batch(piece, next_row)
                else:
                    batch = encoder.rows_batch(piece, next_row)
                if self.max_record_bytes is not None:
                    self._check_lengths(batch.frame)
                self.reader.update(batch.frame.get_column(RAW))
                next_row += batch.height
                yield batch
        finally:
            encoder.close()

    def _check_lengths(self, frame: pl.DataFrame) -> None:
        limit = self.max_record_bytes or 0
        over = frame.filter(pl.col(RAW).str.len_bytes() > limit)
        if over.height:
            raise row_too_long(self.name, int(over[LINE][0]), limit)
