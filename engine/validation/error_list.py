"""Errors as codes: each violation is a rule and an input; a rule's type, loc and message are
written once, in the schema's rule list.

A validator knows every error its vectorized rules can report before it sees a row: its
``rules``, a tuple of :class:`RuleText`. A violation names one of them by index (``rule_id``)
and carries only what differs per row: its ``input`` and, for a rule whose message is not
fixed, its ``msg``. Errors only Pydantic can word (the rows it validates, a duplicate key, a
row that could not be split into fields) are given whole: ``rule_id`` null, with ``type``,
``loc`` and ``msg`` beside the input.

``error_lists`` turns violations back into Pydantic's shape, a list of ``{type, loc, msg,
input}`` per row; the store's views do the same in SQL (``engine.store.ddl``). The store
keeps them one row per invalid row (``row_lists``): lists of rule ids and inputs, and the
given parts only on rows that have some.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from engine.columns import ERRORS, ROW

__all__ = [
    "ERRORS",
    "ERROR_DTYPE",
    "ERROR_STRUCT",
    "GIVEN",
    "INPUT",
    "LOC",
    "MSG",
    "RULE",
    "SEQ",
    "TYPE",
    "VIOLATION_SCHEMA",
    "ErrorCounts",
    "RuleText",
    "count_error_lists",
    "count_violations",
    "empty_violations",
    "error_lists",
    "row_lists",
]

# A violation's columns (besides the row's number): its place in the row's list, its rule,
# its input as JSON text, and what a rule does not say (null where it does).
SEQ = "seq"
RULE = "rule_id"
INPUT = "input"
TYPE = "type"
LOC = "loc"
MSG = "msg"
GIVEN = (TYPE, LOC, MSG)
# An invalid row's errors, as stored (``invalid_rows``).
RULE_IDS = "rule_ids"
INPUTS = "inputs"
GIVEN_LIST = "given"

VIOLATION_SCHEMA: dict[str, pl.DataType] = {
    ROW: pl.Int64(),
    SEQ: pl.Int32(),
    RULE: pl.Int32(),
    INPUT: pl.String(),
    TYPE: pl.String(),
    LOC: pl.List(pl.String()),
    MSG: pl.String(),
}

ERROR_STRUCT = pl.Struct(
    {
        "type": pl.String(),
        "loc": pl.List(pl.String()),
        "msg": pl.String(),
        "input": pl.String(),  # the offending input as JSON text
    }
)
ERROR_DTYPE = pl.List(ERROR_STRUCT)

ErrorCounts = Counter[tuple[str, str]]  # (loc joined with ".", error type) -> errors


@dataclass(frozen=True)
class RuleText:
    """What one rule reports: Pydantic's type and loc, and its message (None: per row)."""

    type: str
    loc: tuple[str, ...]
    msg: str | None

    @property
    def label(self) -> tuple[str, str]:
        return ".".join(self.loc), self.type


def empty_violations() -> pl.DataFrame:
    return pl.DataFrame(schema=VIOLATION_SCHEMA)


def rules_frame(rules: Sequence[RuleText]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            RULE: pl.Series(range(len(rules)), dtype=pl.Int32),
            f"{TYPE}_rule": pl.Series([r.type for r in rules], dtype=pl.String),
            f"{LOC}_rule": pl.Series([list(r.loc) for r in rules], dtype=pl.List(pl.String)),
            f"{MSG}_rule": pl.Series([r.msg for r in rules], dtype=pl.String),
        }
    )


def _complete(violations: pl.DataFrame) -> pl.DataFrame:
    """Violations with every column of ``VIOLATION_SCHEMA`` (the given ones may be absent)."""
    missing = [
        pl.lit(None, dtype).alias(name)
        for name, dtype in VIOLATION_SCHEMA.items()
        if name not in violations.columns
    ]
    return violations.with_columns(missing) if missing else violations


def error_lists(violations: pl.DataFrame, rules: Sequence[RuleText]) -> pl.DataFrame:
    """ROW and ERRORS (Pydantic's list of ``{type, loc, msg, input}``), one row per invalid
    row in row order: what the ``ingestion_errors`` view gives, computed in Polars."""
    if violations.height == 0:
        return pl.DataFrame(schema={ROW: pl.Int64(), ERRORS: ERROR_DTYPE})
    joined = _complete(violations).join(rules_frame(rules), on=RULE, how="left")
    struct = pl.struct(
        pl.coalesce(TYPE, f"{TYPE}_rule").alias("type"),
        pl.coalesce(LOC, f"{LOC}_rule").alias("loc"),
        pl.coalesce(MSG, f"{MSG}_rule").alias("msg"),
        pl.col(INPUT).alias("input"),
    )
    return (
        joined.sort(ROW, SEQ)
        .group_by(ROW, maintain_order=True)
        .agg(struct.alias(ERRORS))
        .with_columns(pl.col(ERRORS).cast(ERROR_DTYPE))
    )


def row_lists(violations: pl.DataFrame, row: str = ROW) -> pl.DataFrame:
    """One row per invalid row (``row``, in order): its errors' rule codes and inputs as
    lists, and ``given`` (a struct per error, null where the rule says everything) only when
    some violation of the batch gives a part: rows without one get null."""
    ordered = violations.sort(row, SEQ)
    parts = [pl.col(RULE).alias(RULE_IDS), pl.col(INPUT).alias(INPUTS)]
    given = any(name in violations.columns for name in GIVEN)
    if given:
        ordered = ordered.with_columns(
            pl.lit(None, VIOLATION_SCHEMA[name]).alias(name)
            for name in GIVEN
            if name not in ordered.columns
        )
        some = pl.col(RULE).is_null() | pl.col(MSG).is_not_null()
        struct = pl.when(some).then(pl.struct(GIVEN))
        parts += [struct.alias(GIVEN_LIST), some.any().alias("__some")]
    lists = ordered.group_by(row, maintain_order=True).agg(parts)
    if not given:
        return lists
    return lists.with_columns(
        pl.when(pl.col("__some")).then(pl.col(GIVEN_LIST)).alias(GIVEN_LIST)
    ).drop("__some")


def count_violations(violations: pl.DataFrame, rules: Sequence[RuleText]) -> ErrorCounts:
    """Errors per (loc, type): coded ones by their rule, given ones by their own columns."""
    counts: ErrorCounts = Counter()
    if violations.height == 0:
        return counts
    coded = violations.get_column(RULE).drop_nulls().value_counts()
    for index, n in coded.iter_rows():
        counts[rules[index].label] += n
    if TYPE in violations.columns:
        # Grouped on the loc lists themselves (no text per violation), reading only the
        # columns counted.
        given = violations.lazy().filter(pl.col(RULE).is_null()).group_by(LOC, TYPE).len().collect()
        for loc, kind, n in given.iter_rows():
            counts[(".".join(loc or ()), kind)] += n
    return counts


def count_error_lists(frame: pl.DataFrame, column: str) -> ErrorCounts:
    """Errors per (loc, type) in a frame's column of decoded error lists."""
    errors = frame.get_column(column).explode().drop_nulls()
    if errors.len() == 0:
        return Counter()
    counted = (
        pl.DataFrame({"e": errors})
        .select(
            pl.col("e").struct.field("loc").list.join(".").alias("loc"),
            pl.col("e").struct.field("type").alias("type"),
        )
        .group_by("loc", "type")
        .len()
    )
    return Counter({(loc, kind): n for loc, kind, n in counted.iter_rows()})
