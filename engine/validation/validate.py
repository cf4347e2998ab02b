"""Evaluate a compiled schema on a RawBatch: one pass, then split valid / invalid.

Stage 1 computes every field's typed value and every rule as a boolean column in a single
``with_columns``; stage 2 derives row validity and model-level checks. Errors are built only
for the invalid rows, as codes (``engine.validation.error_list``): each names one of the
validator's ``rules`` and carries its input; rows that need Pydantic itself are validated by
it, and its errors are coded too where they are one of the rules word for word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from engine.batch import Kind, RawBatch
from engine.columns import (
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
    SEQ,
    ErrorCounts,
    RuleText,
    count_violations,
    error_lists,
)
from engine.validation.fallback import run_pydantic
from engine.validation.helper_columns import HelperColumns
from engine.validation.rules import FieldProgram
from engine.validation.storable import made_default
from engine.validation.violations import ErrorPart, row_json, violations


@dataclass(frozen=True)
class ValidationResult:
    valid: pl.DataFrame  # ROW + the model's fields, typed
    violations: pl.DataFrame  # ROW, SEQ, RULE, INPUT (+ TYPE, LOC, MSG where given)
    invalid_rows: int  # rows with at least one violation
    python_row_numbers: pl.Series  # ROW of the rows decided by Pydantic itself
    error_counts: ErrorCounts  # errors per (loc, type) over the invalid rows
    rules: tuple[RuleText, ...]  # what each RULE code stands for

    @property
    def python_rows(self) -> int:
        return len(self.python_row_numbers)

    @property
    def invalid(self) -> pl.DataFrame:
        """ROW and ERRORS, Pydantic's error list per invalid row (decoded: for checks and
        small batches; the store keeps the codes)."""
        return error_lists(self.violations, self.rules)


class BatchValidator:
    """Validates batches from one source (its keys are fixed, e.g. a CSV header)."""

    def __init__(
        self,
        schema: CompiledSchema,
        source_keys: Sequence[str],
        columns: Sequence[str] | None = None,
    ) -> None:
        """``columns``: typed rows that all hold exactly these keys, in this order (a frame's
        columns, ``RawBatch.columns``): the keys the model forbids are known per batch, as
        for a CSV header, instead of each row's extra keys sending it to Pydantic."""
        self.schema = schema
        self.source_keys = tuple(source_keys)
        self.columns = tuple(columns) if columns is not None else None
        self._by_columns: dict[tuple[str, ...], BatchValidator] = {}
        self.known = known = set(schema.input_keys)
        self.missing_keys = [k for k in schema.input_keys if k not in self.source_keys]
        given = self.source_keys if not schema.typed else self.columns or ()
        self.extra_keys = [k for k in given if k not in known]
        self.stage1 = self._stage1()
        self.stage2 = self._stage2()
        self._codes: dict[RuleText, int] = {}
        self.error_list = self._errors()
        self.rules = tuple(self._codes)
        firsts, parts = self.error_list
        after = [*self.stage1, *(e for step in self.stage2 for e in step), *firsts]
        after += [e for p in parts for e in (p.rows, p.code, p.input, p.msg, *(p.given or ()))]
        read = {n for e in after if e is not None for n in e.meta.root_names()}
        self.helpers = HelperColumns(schema.fields, read=read)

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
        if self.schema.typed and self.schema.extra == "forbid" and self.columns is None:
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
        """(key, rows where it is an extra input) when the model forbids extras. Pydantic
        takes each field's first present key; a present key no field took is extra: one no
        field reads, or one whose every reader found an earlier key of its own (another
        field's winning key is not extra, nor is a key two fields share). In the order
        Pydantic reports them: the input's key order (a CSV header's)."""
        if self.schema.extra != "forbid":
            return []
        typed = self.schema.typed
        extras = [(key, self._present(key)) for key in self.extra_keys]
        # key -> per field reading it, the keys that field tries before it
        readers: dict[str, list[list[str]]] = {}
        anywhere = typed and self.columns is None  # any key may be in any record
        given = self.source_keys if self.columns is None else self.columns
        for program in self.schema.fields:
            available = [k for k in program.keys if anywhere or k in given]
            for i, key in enumerate(available):
                readers.setdefault(key, []).append(available[:i])
        for key, befores in readers.items():
            if not all(befores):
                continue  # some field tries it first: never extra
            taken_before = [pl.any_horizontal([self._present(k) for k in b]) for b in befores]
            extras.append((key, self._present(key) & pl.all_horizontal(taken_before)))
        if not typed or self.columns is not None:
            order = self.source_keys if not typed else self.columns or ()
            place = {key: i for i, key in enumerate(order)}
            extras.sort(key=lambda extra: place[extra[0]])
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

    def _code(self, error_type: str, loc: Sequence[str], msg: str | None) -> pl.Expr:
        """The code of a rule, registering it on first use."""
        return pl.lit(self._code_of(error_type, loc, msg), pl.Int32)

    def _code_of(self, error_type: str, loc: Sequence[str], msg: str | None) -> int:
        rule = RuleText(error_type, tuple(loc), msg)
        return self._codes.setdefault(rule, len(self._codes))

    def _errors(self) -> tuple[list[pl.Expr], list[ErrorPart]]:
        """How to build the violations of invalid rows.

        Returns the per-field first-failing-rule index columns, and one part per kind of
        error: each is only evaluated on the rows that have it."""
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
        no_loc = pl.lit([], dtype=pl.List(pl.String))
        parts.append(
            ErrorPart(
                pl.col(MALFORMED).is_not_null(),
                None,
                raw_input,
                malformed_msg,
                (pl.col(MALFORMED), no_loc),
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
            # One part per rule: each is evaluated only on the rows where that rule is the
            # field's first failure (a when/then chain would evaluate every branch). The
            # rules that differ only in their code (fixed message, the token as input) share
            # one part, their code looked up from the first failure's index (a row has one
            # first failure per field: the field's parts never meet in a row).
            simple = self._simple_rules(program)
            codes: dict[int, int] = {}
            for i, rule in enumerate(program.rules):
                fixed, per_row = _message(rule.message)
                if i in simple:
                    codes[i] = self._code_of(rule.error_type, [program.loc_name], fixed)
                    continue
                given = self._token(program.keys)
                if rule.error_type == "missing":
                    given = row_json
                elif rule.input is not None:
                    given = rule.input
                parts.append(
                    ErrorPart(
                        pl.col(MALFORMED).is_null() & (first == i),
                        self._located(program, rule.error_type, fixed),
                        given,
                        per_row,
                    )
                    if rule.type_expr is None
                    else ErrorPart(  # the type too is per row: given whole, not coded
                        pl.col(MALFORMED).is_null() & (first == i),
                        None,
                        given,
                        per_row if per_row is not None else pl.lit(fixed),
                        (rule.type_expr, self._loc(program)),
                    )
                )
            if codes:
                parts.append(
                    ErrorPart(
                        pl.col(MALFORMED).is_null() & first.is_in(list(codes)),
                        first.replace_strict(
                            list(codes), list(codes.values()), return_dtype=pl.Int32
                        ),
                        self._token(program.keys),
                    )
                )
        for key, unused in self._forbidden_extra():
            code = self._code("extra_forbidden", [key], message("extra_forbidden"))
            parts.append(ErrorPart(unused, code, self._token((key,))))
        for i, model_rule in enumerate(self.schema.model_level.rules):
            fixed, per_row = _message(model_rule.message)
            code = self._code(model_rule.error_type, [], fixed)
            parts.append(ErrorPart(pl.col(model_rule_column(i)), code, row_json, per_row))
        return firsts, parts

    def _simple_rules(self, program: FieldProgram) -> set[int]:
        """The field's rules (by index) that differ only in their code: a fixed type, loc
        and message, the token as input. They share one error part."""
        if program.loc_by_alias and len(program.keys) > 1:
            return set()  # the loc, so the code, is chosen per row
        simple = set()
        for i, rule in enumerate(program.rules):
            fixed, _ = _message(rule.message)
            plain = rule.error_type != "missing" and rule.input is None
            if plain and rule.type_expr is None and fixed is not None:
                simple.add(i)
        return simple if len(simple) > 1 else set()

    def _located(self, program: FieldProgram, error_type: str, msg: str | None) -> pl.Expr:
        """A field rule's code: one rule per key Pydantic may name in ``loc`` (the first
        present alias), chosen per row when there are several."""
        if not program.loc_by_alias:
            return self._code(error_type, [program.name], msg)
        if len(program.keys) == 1:
            return self._code(error_type, [program.loc_name], msg)
        chosen: Any = None
        for key in program.keys:
            present, code = self._present(key), self._code(error_type, [key], msg)
            chosen = (
                pl.when(present).then(code) if chosen is None else chosen.when(present).then(code)
            )
        fallback: pl.Expr = chosen.otherwise(self._code(error_type, [program.loc_name], msg))
        return fallback

    def _loc(self, program: FieldProgram) -> pl.Expr:
        """A field error's ``loc`` as a column: the first key present, as Pydantic names it."""
        if not program.loc_by_alias or len(program.keys) == 1:
            name = program.name if not program.loc_by_alias else program.loc_name
            return pl.lit([name], dtype=pl.List(pl.String))
        loc: Any = None
        for key in program.keys:
            here = pl.lit([key], dtype=pl.List(pl.String))
            present = self._present(key)
            loc = pl.when(present).then(here) if loc is None else loc.when(present).then(here)
        chosen: pl.Expr = loc.otherwise(pl.lit([program.loc_name], dtype=pl.List(pl.String)))
        return chosen

    def _present(self, key: str) -> pl.Expr:
        if self.columns is not None and key not in self.known:
            return pl.lit(True)  # every row of a frame holds each of its columns
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
        return row_json(self.source_keys)

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
            if default_column(name) in frame.columns:
                continue  # the caller's, a value per batch (``engine.streaming.together``)
            value, unstorable = made_default(factory, dtypes[name])
            extra.append(pl.lit(value, dtype=dtypes[name]).alias(default_column(name)))
            extra.append(pl.lit(unstorable).alias(default_unstorable_column(name)))
        return frame.with_columns(extra)

    def _violations(self, evaluated: pl.DataFrame) -> pl.DataFrame:
        firsts, parts = self.error_list
        return violations(evaluated.with_columns(firsts) if firsts else evaluated, parts)

    def validate(self, batch: RawBatch, now: datetime) -> ValidationResult:
        forbid = self.schema.typed and self.schema.extra == "forbid"
        if forbid and batch.columns is not None and self.columns is None:
            found = self._by_columns.get(batch.columns)  # a validator for the batch's keys
            if found is None:
                found = BatchValidator(self.schema, self.source_keys, batch.columns)
                if len(self._by_columns) >= 8:
                    self._by_columns.clear()
                self._by_columns[batch.columns] = found
            return found.validate(batch, now)
        lf = self.helpers.add(self._prepare(batch, now)).lazy().with_columns(self.stage1)
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
        violations = self._violations(evaluated)
        invalid_rows = evaluated.select((~pl.col(VALID) & ~pl.col(PYTHON)).sum()).item()
        present = set(evaluated.columns)  # a set: a header may have thousands of names
        inputs = [c for c in (ROW, RAW, *self.source_keys) if c in present]
        needs_python = evaluated.filter(pl.col(PYTHON)).select(inputs)
        if needs_python.height:
            codes = {rule: i for i, rule in enumerate(self.rules)}
            py_valid, py_violations = run_pydantic(
                self.schema, needs_python, self.source_keys, batch.python_inputs, codes
            )
            valid = pl.concat([valid, py_valid.select(valid.columns).cast(valid.schema)]).sort(ROW)
            invalid_rows += needs_python.height - py_valid.height
            if py_violations.height:
                violations = pl.concat([violations, py_violations], how="diagonal_relaxed")
                violations = violations.sort(ROW, SEQ)
        counts = count_violations(violations, self.rules)
        python = needs_python.get_column(ROW)
        return ValidationResult(valid, violations, invalid_rows, python, counts, self.rules)


def _message(text: str | pl.Expr) -> tuple[str | None, pl.Expr | None]:
    """A rule's message as fixed text (for its rule), or the expression giving it per row."""
    if isinstance(text, str):
        return text, None
    if text.meta.is_literal(allow_aliasing=True):
        value = pl.select(text).item()
        if isinstance(value, str):
            return value, None
    return None, text
