"""Evaluate a compiled schema on a RawBatch: one pass, then split valid / invalid.

Stage 1 computes every field's typed value and every rule as a boolean column in a single
``with_columns``; stage 2 derives row validity and model-level checks. Error details are
built only for the invalid rows; rows that need Pydantic itself are validated by it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import polars as pl
import pyarrow as pa
from polars._typing import PolarsDataType

from engine.batch import Kind, RawBatch
from engine.columns import (
    ERRORS,
    FIELDS_OK,
    KEYS,
    MALFORMED,
    MALFORMED_MSG,
    NEEDS_PYTHON,
    NOW,
    PYTHON,
    RAW,
    ROW,
    VALID,
    default_column,
    default_unstorable_column,
    first_failure_column,
    kind_column,
    model_rule_column,
    rule_column,
    token_column,
    value_column,
)
from engine.validation.common import json_text, message
from engine.validation.compiler import CompiledSchema
from engine.validation.error_list import (
    ERROR_DTYPE,
    ERROR_STRUCT,
    ErrorCounts,
    count_error_lists,
    count_errors,
    error,
)
from engine.validation.fallback import run_pydantic
from engine.validation.rules import Helper
from engine.validation.storable import Unstorable, storable_default


@dataclass(frozen=True)
class ValidationResult:
    valid: pl.DataFrame  # ROW + the model's fields, typed
    invalid: pl.DataFrame  # ROW, RAW, ERRORS
    python_rows: int  # rows decided by Pydantic itself
    error_counts: ErrorCounts  # errors per (loc, type) over the invalid rows


class ErrorPart(NamedTuple):
    """One kind of error: the rows that have it, its struct, and its (loc, type) when the
    same on every row (so that counting it is counting its rows)."""

    rows: pl.Expr
    struct: pl.Expr
    label: tuple[str, str] | None


class BatchValidator:
    """Validates batches from one source (its keys are fixed, e.g. a CSV header)."""

    def __init__(self, schema: CompiledSchema, source_keys: Sequence[str]) -> None:
        self.schema = schema
        self.source_keys = tuple(source_keys)
        known = set(schema.input_keys)
        self.missing_keys = [k for k in schema.input_keys if k not in self.source_keys]
        self.extra_keys = (
            [k for k in self.source_keys if k not in known] if not schema.typed else []
        )
        self.helper_dtypes: dict[str, pl.DataType] = {}
        self.schedule = self._schedule()
        self.stage1 = self._stage1()
        self.stage2 = self._stage2()
        self.error_list = self._errors()
        firsts, parts = self.error_list
        used = {ROW, RAW, MALFORMED}
        for expr in [*firsts, *(e for part in parts for e in (part.rows, part.struct))]:
            used.update(expr.meta.root_names())
        self.error_inputs = used

    # -- expressions, built once -------------------------------------------------------

    def _stage1(self) -> list[pl.Expr]:
        exprs: list[pl.Expr] = []
        for program in self.schema.fields:
            exprs.append(program.value.alias(value_column(program.name)))
            for i, rule in enumerate(program.rules):
                exprs.append(rule.fails.fill_null(False).alias(rule_column(program.name, i)))
        python_parts = [
            p.python_rows.fill_null(False) for p in self.schema.fields if p.python_rows is not None
        ]
        if self.schema.typed:
            python_parts.append(pl.col(NEEDS_PYTHON).fill_null(False))
        if self.schema.typed and self.schema.extra == "forbid":
            known = list(self.schema.input_keys)
            python_parts.append(
                pl.col(KEYS).list.set_difference(pl.lit(known)).list.len().fill_null(0) > 0
            )
            # Pydantic lists extra keys in the record's key order, which varies from record
            # to record: a record with more than one leaves it to Pydantic.
            extras = [rows for _, rows in self._forbidden_extra()]
            if len(extras) > 1:
                python_parts.append(pl.sum_horizontal(extras) > 1)
        python = pl.any_horizontal(python_parts) if python_parts else pl.lit(False)
        return [python.alias(PYTHON), *exprs]

    def _field_ok(self) -> pl.Expr:
        failures = [
            pl.col(rule_column(p.name, i)) for p in self.schema.fields for i in range(len(p.rules))
        ]
        failures += [unused for _, unused in self._forbidden_extra()]
        ok = ~pl.any_horizontal(failures) if failures else pl.lit(True)
        return ok & pl.col(MALFORMED).is_null()

    def _forbidden_extra(self) -> list[tuple[str, pl.Expr]]:
        """(key, rows where it is an extra input) when the model forbids extras: columns no
        field reads, and a field's later alias when an earlier one was present (Pydantic
        validates the first present alias and reports the others as extra). In the order
        Pydantic reports them: the input's key order (a CSV header's)."""
        if self.schema.extra != "forbid":
            return []
        extras = [(key, self._present(key)) for key in self.extra_keys]
        for program in self.schema.fields:
            available = [k for k in program.keys if k in self.source_keys or self.schema.typed]
            for i, key in enumerate(available[1:], start=1):
                earlier = pl.any_horizontal([self._present(k) for k in available[:i]])
                extras.append((key, self._present(key) & earlier))
        if not self.schema.typed:
            extras.sort(key=lambda extra: self.source_keys.index(extra[0]))
        return extras

    def _stage2(self) -> list[list[pl.Expr]]:
        fields_ok = pl.col(FIELDS_OK)
        level = self.schema.model_level
        model_checks = [
            (rule.fails.fill_null(False) & fields_ok).alias(model_rule_column(i))
            for i, rule in enumerate(level.rules)
        ]
        model_fail = (
            pl.any_horizontal([pl.col(model_rule_column(i)) for i in range(len(model_checks))])
            if model_checks
            else pl.lit(False)
        )
        python = pl.col(PYTHON) & pl.col(MALFORMED).is_null()
        if level.python == "all":
            python = pl.col(MALFORMED).is_null()
        elif level.python == "valid":
            python = python | (fields_ok & ~model_fail)
        updates = [
            pl.when(fields_ok)
            .then(expr)
            .otherwise(pl.col(value_column(name)))
            .alias(value_column(name))
            for name, expr in level.values.items()
        ]
        return [
            [self._field_ok().alias(FIELDS_OK)],
            [*model_checks, *updates],
            [python.alias(PYTHON), (fields_ok & ~model_fail & ~python).alias(VALID)],
        ]

    def _errors(self) -> tuple[list[pl.Expr], list[ErrorPart]]:
        """How to build Pydantic's error dicts for invalid rows.

        Returns the per-field first-failing-rule index columns, and (rows, error struct)
        pairs: each struct is only evaluated on the rows that have that error."""
        firsts: list[pl.Expr] = []
        parts: list[ErrorPart] = []
        malformed_msg = (
            pl.when(pl.col(MALFORMED) == "model_type")
            .then(pl.lit(self.schema.model_type_message))
            .otherwise(pl.col(MALFORMED_MSG))
        )
        # A JSON record that parsed but is not an object is its own input; other malformed
        # rows show their raw text as a string.
        raw_input = json_text(pl.col(RAW))
        if self.schema.typed:
            raw_input = (
                pl.when(pl.col(MALFORMED) == "model_type").then(pl.col(RAW)).otherwise(raw_input)
            )
        parts.append(
            ErrorPart(
                pl.col(MALFORMED).is_not_null(),
                error(pl.col(MALFORMED), [], malformed_msg, raw_input),
                None,
            )
        )
        row_json = self._row_json()
        for program in self.schema.fields:
            if not program.rules:
                continue
            index: Any = None
            for i in range(len(program.rules)):
                fired = pl.col(rule_column(program.name, i))
                here = pl.lit(i, pl.Int16)
                index = pl.when(fired).then(here) if index is None else index.when(fired).then(here)
            name = first_failure_column(program.name)
            firsts.append(index.otherwise(None).alias(name))
            first = pl.col(name)
            loc = (
                self._loc(program.keys, [program.loc_name])
                if program.loc_by_alias
                else [program.name]
            )
            # One part per rule: each struct is evaluated only on the rows where that rule is
            # the field's first failure (a when/then chain would evaluate every branch).
            for i, rule in enumerate(program.rules):
                text = pl.lit(rule.message) if isinstance(rule.message, str) else rule.message
                given = self._token(program.keys)
                if rule.error_type == "missing":
                    given = row_json
                elif rule.input is not None:
                    given = rule.input
                parts.append(
                    ErrorPart(
                        pl.col(MALFORMED).is_null() & (first == i),
                        error(
                            pl.lit(rule.error_type) if rule.type_expr is None else rule.type_expr,
                            loc,
                            text,
                            given,
                        ),
                        (".".join(loc), rule.error_type)
                        if isinstance(loc, list) and rule.type_expr is None
                        else None,
                    )
                )
        for key, unused in self._forbidden_extra():
            struct = error(
                pl.lit("extra_forbidden"),
                [key],
                pl.lit(message("extra_forbidden")),
                self._token((key,)),
            )
            parts.append(ErrorPart(unused, struct, (key, "extra_forbidden")))
        for i, model_rule in enumerate(self.schema.model_level.rules):
            struct = error(pl.lit(model_rule.error_type), [], model_rule.message, row_json)
            parts.append(
                ErrorPart(pl.col(model_rule_column(i)), struct, ("", model_rule.error_type))
            )
        return firsts, parts

    def _loc(self, keys: tuple[str, ...], default: list[str]) -> list[str] | pl.Expr:
        """The key actually used (the first present one), as Pydantic reports it."""
        if len(keys) == 1:
            return default
        loc: Any = None
        for key in keys:
            present = self._present(key)
            here = pl.lit([key], dtype=pl.List(pl.String))
            loc = pl.when(present).then(here) if loc is None else loc.when(present).then(here)
        chosen: pl.Expr = loc.otherwise(pl.lit(default, dtype=pl.List(pl.String)))
        return chosen

    def _present(self, key: str) -> pl.Expr:
        if self.schema.typed:
            return pl.col(kind_column(key)) != Kind.ABSENT
        return pl.col(key).is_not_null()

    def _token(self, keys: tuple[str, ...]) -> pl.Expr:
        """The input as JSON text, from the first key present (null when none is)."""
        tokens = [
            pl.col(token_column(k))
            if self.schema.typed
            else pl.when(pl.col(k).is_not_null()).then(json_text(pl.col(k)))
            for k in keys
        ]
        return pl.coalesce(tokens) if len(tokens) > 1 else tokens[0]

    def _row_json(self) -> pl.Expr:
        """Pydantic reports the whole input as the ``input`` of a missing field."""
        if self.schema.typed:
            return pl.col(RAW)
        pieces = [
            pl.when(pl.col(k).is_not_null()).then(
                pl.lit(json.dumps(k) + ":") + json_text(pl.col(k))
            )
            for k in self.source_keys
        ]
        if not pieces:
            return pl.lit("{}")
        return pl.lit("{") + pl.concat_str(pieces, separator=",", ignore_nulls=True) + pl.lit("}")

    # -- per batch ------------------------------------------------------------------------

    def _prepare(self, batch: RawBatch, now: datetime) -> pl.DataFrame:
        frame = batch.frame
        extra: list[pl.Expr] = [
            pl.lit(now.astimezone(UTC)).cast(pl.Datetime("us", "UTC")).alias(NOW)
        ]
        if self.schema.typed and NEEDS_PYTHON not in frame.columns:
            extra.append(pl.lit(False).alias(NEEDS_PYTHON))
        for key in self.missing_keys:
            if key in frame.columns:
                continue
            extra.append(pl.lit(None, pl.String).alias(key))
            if self.schema.typed:
                extra.append(pl.lit(Kind.ABSENT, pl.UInt8).alias(kind_column(key)))
                extra.append(pl.lit(None, pl.String).alias(token_column(key)))
        dtypes = {p.name: p.dtype for p in self.schema.fields}
        for name, factory in self.schema.defaults.items():
            try:
                value, unstorable = storable_default(factory(), dtypes[name]), False
            except Unstorable:
                value, unstorable = None, True
            extra.append(pl.lit(value, dtype=dtypes[name]).alias(default_column(name)))
            extra.append(pl.lit(unstorable).alias(default_unstorable_column(name)))
        return frame.with_columns(extra)

    def _error_rows(self, invalid: pl.DataFrame) -> tuple[pl.DataFrame, ErrorCounts]:
        """ROW, RAW and the error list, and the errors counted per (loc, type). Each kind of
        error is built only on the rows that have it, then the pieces are put in row order
        (and, within a row, in the order Pydantic reports them) and cut into per-row lists by
        their counts: no group-by, no join."""
        firsts, parts = self.error_list
        marked = invalid.with_columns(firsts) if firsts else invalid
        masks = marked.select(
            [part.rows.fill_null(False).alias(str(i)) for i, part in enumerate(parts)]
        )
        keys: list[pl.Series] = []
        values: list[pl.Series] = []
        counts: ErrorCounts = Counter()
        for i, part in enumerate(parts):
            mask = masks.get_column(str(i))
            rows_with_it = int(mask.sum())
            if rows_with_it:
                # The sort key: row position first, then the part's place in Pydantic's order.
                keys.append(mask.arg_true().cast(pl.Int64) * len(parts) + i)
                # Lazy, so that only the columns the struct reads are filtered.
                rows = marked.lazy().filter(mask).select(part.struct.cast(ERROR_STRUCT))
                values.append(rows.collect(engine="in-memory").to_series())
                if part.label is not None:
                    counts[part.label] += rows_with_it
                else:
                    counts.update(count_errors(values[-1]))
        if values:
            errors = pl.concat(values)
            if len(values) > 1:
                errors = errors.gather(pl.concat(keys).arg_sort())
        else:
            errors = pl.Series(dtype=ERROR_STRUCT)
        ends = masks.select(pl.sum_horizontal(pl.all().cast(pl.Int64)).cum_sum()).to_series()
        offsets = pa.concat_arrays([pa.array([0], pa.int64()), ends.to_arrow()])
        lists = pa.LargeListArray.from_arrays(
            offsets, errors.to_arrow(compat_level=pl.CompatLevel.newest())
        )
        column = pl.Series(ERRORS, lists, dtype=ERROR_DTYPE)
        return invalid.select(ROW, RAW).with_columns(column), counts

    def _schedule(self) -> list[list[Helper]]:
        """Helpers in levels: a helper runs one level after the latest helper it reads (by
        its expression's column names), so independent ones run together, in parallel. A
        function helper's inputs are unknown: it follows every earlier helper of its field."""
        level: dict[str, int] = {}
        for program in self.schema.fields:
            previous = -1
            for helper in program.helpers:
                if isinstance(helper.expr, pl.Expr):
                    exprs = [helper.expr, *([helper.rows] if helper.rows is not None else [])]
                    names = {n for e in exprs for n in e.meta.root_names()}
                    reads = [level[n] for n in names if n in level]
                else:
                    reads = [previous]
                level[helper.name] = max(reads, default=-1) + 1
                previous = max(previous, level[helper.name])
        helpers = [h for p in self.schema.fields for h in p.helpers]
        depth = max(level.values(), default=-1) + 1
        return [[h for h in helpers if level[h.name] == i] for i in range(depth)]

    def _helpers(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Intermediate columns, level by level (see ``_schedule``); sparse ones only on the
        rows that need them."""
        masks: dict[int, pl.Series] = {}
        for helpers in self.schedule:
            dense = [
                h.expr.alias(h.name)
                for h in helpers
                if h.rows is None and isinstance(h.expr, pl.Expr)
            ]
            if dense:
                frame = frame.with_columns(dense)
            for helper in helpers:
                if helper.rows is not None or not isinstance(helper.expr, pl.Expr):
                    frame = frame.with_columns(self._sparse(frame, helper, masks))
        return frame

    def _sparse(
        self, frame: pl.DataFrame, helper: Helper, masks: dict[int, pl.Series]
    ) -> pl.Series | pl.Expr:
        """A helper computed on the rows that need it (or all rows), null elsewhere."""
        compute = (
            helper.expr if callable(helper.expr) and not isinstance(helper.expr, pl.Expr) else None
        )

        def evaluate(part: pl.DataFrame) -> pl.Series:
            if compute is not None:
                return compute(part).alias(helper.name)
            assert isinstance(helper.expr, pl.Expr)
            return part.lazy().select(helper.expr.alias(helper.name)).collect().to_series()

        if helper.rows is None:
            return evaluate(frame)
        if id(helper.rows) not in masks:
            masks[id(helper.rows)] = frame.select(helper.rows.fill_null(False)).to_series()
        mask = masks[id(helper.rows)]
        if helper.name not in self.helper_dtypes:
            self.helper_dtypes[helper.name] = evaluate(frame.head(0)).dtype
        dtype = self.helper_dtypes[helper.name]
        if not mask.any():
            return pl.lit(None, dtype).alias(helper.name)
        if compute is None:  # only the columns the expression reads are filtered
            assert isinstance(helper.expr, pl.Expr)
            part = frame.lazy().filter(pl.lit(mask)).select(helper.expr.alias(helper.name))
            values = part.collect().to_series()
        else:
            values = evaluate((frame.select(helper.reads) if helper.reads else frame).filter(mask))
        return _spread(values, mask, dtype).alias(helper.name)

    def validate(self, batch: RawBatch, now: datetime) -> ValidationResult:
        lf = self._helpers(self._prepare(batch, now)).lazy().with_columns(self.stage1)
        for exprs in self.stage2:
            lf = lf.with_columns(exprs)
        evaluated = lf.collect()
        valid = (
            evaluated.select(
                ROW,
                *[pl.col(value_column(p.name)).alias(p.name) for p in self.schema.fields],
                VALID,
            )
            .filter(pl.col(VALID))
            .drop(VALID)
        )
        wanted = [c for c in evaluated.columns if c in self.error_inputs or c in (VALID, PYTHON)]
        invalid, counts = self._error_rows(
            evaluated.select(wanted).filter(~pl.col(VALID) & ~pl.col(PYTHON))
        )
        inputs = [c for c in (ROW, RAW, *self.source_keys) if c in evaluated.columns]
        needs_python = evaluated.filter(pl.col(PYTHON)).select(inputs)
        if needs_python.height:
            py_valid, py_invalid = run_pydantic(
                self.schema, needs_python, self.source_keys, batch.python_inputs
            )
            valid = pl.concat([valid, py_valid.select(valid.columns).cast(valid.schema)]).sort(ROW)
            invalid = pl.concat([invalid, py_invalid]).sort(ROW)
            counts.update(count_error_lists(py_invalid, ERRORS))
        return ValidationResult(valid, invalid, needs_python.height, counts)


def _spread(values: pl.Series, mask: pl.Series, dtype: PolarsDataType) -> pl.Series:
    """``values`` (one per true row of ``mask``) in a column as tall as ``mask``, null elsewhere."""
    if isinstance(dtype, pl.Struct):  # scatter has no struct support: one field at a time
        fields = [
            _spread(values.struct.field(f.name), mask, f.dtype).alias(f.name) for f in dtype.fields
        ]
        return pl.select(pl.when(mask).then(pl.struct(fields))).to_series()
    column = pl.repeat(None, len(mask), dtype=dtype, eager=True)
    return column.scatter(mask.arg_true(), values)
