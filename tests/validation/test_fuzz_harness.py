"""The model fuzzer's own parts: it must see a divergence when there is one, and only then."""

from __future__ import annotations

import csv
import io
import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel

from tests.modelfuzz.cases import load_case, save, shrink
from tests.modelfuzz.cli_run import Stored
from tests.modelfuzz.compare import Divergence, compare_run
from tests.modelfuzz.fuzz import REFUSED, Case, check
from tests.modelfuzz.models import model_specs
from tests.modelfuzz.oracle import Verdict, csv_verdict, ndjson_verdict, same
from tests.modelfuzz.rows import RowMaker
from tests.modelfuzz.source import load, render
from tests.modelfuzz.spec import ModelSpec

SIMPLE = """
from pydantic import BaseModel, Field


class Fuzzed(BaseModel):
    name: str = Field(min_length=2)
    qty: int = Field(default=1, ge=1)
"""

WRONG_TWIN = """
import polars as pl
from pydantic import BaseModel, field_validator

from engine.validation.vectorized import Check, Outcome, VectorContext, vectorized


def _twin(value: pl.Expr, ctx: VectorContext) -> Outcome:
    return Outcome(None, [Check(value > 5, "too big")])  # disagrees with Python: > 6


class Fuzzed(BaseModel):
    qty: int

    @field_validator("qty")
    @classmethod
    @vectorized(_twin)
    def _check(cls, value: int) -> int:
        if value > 6:
            raise ValueError("too big")
        return value
"""


def test_same_compares_stored_values_strictly() -> None:
    assert same(math.nan, math.nan)
    assert not same(0.0, -0.0)
    assert not same(True, 1)
    assert not same(1, 1.0)
    assert same(Decimal("1.50"), Decimal("1.5"))
    assert same(5, Decimal("5"))
    assert same({"a": [1, "x"], "b": None}, {"b": None, "a": [1, "x"]})
    assert not same({"a": 1}, {"a": 1, "b": 2})


def test_oracle_follows_the_readme() -> None:
    class Model(BaseModel):
        a: int = 0

    assert csv_verdict(Model, ["a", "b"], ["", "x"]) == Verdict(True, {"a": 0}, [], {"b": "x"})
    bad = ndjson_verdict(Model, '{"a": 1,}')
    assert bad.errors == [
        (
            "json_invalid",
            (),
            "Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 9 (char 8)",
            '{"a": 1,}',
        )
    ]
    assert ndjson_verdict(Model, '{"a": 1, "a": "x"}').errors[0][3] == "x"  # json keeps the last


def _stored(**changes: object) -> Stored:
    base = Stored(0, "")
    base.run = {"status": "completed", "rows_total": 2, "rows_valid": 1, "rows_invalid": 1}
    base.raw = [(1, "ab,1"), (2, "a,0")]
    base.valid = {1: {"name": "ab", "qty": 1}}
    base.valid_numbers = [1]
    base.invalid = {
        2: [("string_too_short", ("name",), "String should have at least 2 characters", "a")]
    }
    base.invalid_numbers = [2]
    base.invalid_raw = {2: "a,0"}
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def _kinds(found: list[Divergence]) -> list[str]:
    return [f"{d.kind} {d.row} {d.signature}" for d in found]


def test_compare_sees_each_kind_of_divergence(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(SIMPLE)
    model = load(path)
    records = ["ab,1", "a,0"]
    verdicts = [csv_verdict(model, ["name", "qty"], r.split(",")) for r in records]
    assert verdicts[1].errors == [
        ("string_too_short", ("name",), "String should have at least 2 characters", "a"),
        ("greater_than_equal", ("qty",), "Input should be greater than or equal to 1", "0"),
    ]
    verdicts[1] = Verdict(False, {}, _stored().invalid[2])
    assert compare_run("csv", model, records, verdicts, _stored()) == []
    assert _kinds(
        compare_run("csv", model, records, verdicts, _stored(valid={1: {"name": "ab", "qty": 2}}))
    ) == ["value 1 value int/int"]
    wrong_input = {
        2: [("string_too_short", ("name",), "String should have at least 2 characters", None)]
    }
    assert _kinds(compare_run("csv", model, records, verdicts, _stored(invalid=wrong_input))) == [
        "errors 2 errors input null"
    ]
    assert _kinds(
        compare_run("csv", model, records, verdicts, _stored(raw=[(1, "ab,1"), (2, "a,0 ")]))
    ) == [
        "invariant 2 invariant raw text",
        "invariant 2 invariant error raw",  # ingestion_errors.raw no longer equals raw_data.raw
    ]
    assert _kinds(
        compare_run("csv", model, records, verdicts, _stored(invalid_numbers=[2, 2]))
    ) == [
        "invariant None invariant ingestion_runs",
        "invariant None invariant typed+errors",
    ]


def test_storage_overflow_is_accepted_only_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("from pydantic import BaseModel\n\n\nclass Fuzzed(BaseModel):\n    n: int\n")
    model = load(path)
    huge, big = "1" * 39, "1" * 38
    msg = "Valid integer, but too large for the DECIMAL(38,0) column it is stored in"
    for value, accepted in ((huge, True), (big, False)):
        overflow = ("int_storage_overflow", ("n",), msg, value)
        stored = _stored(
            run={"status": "completed", "rows_total": 1, "rows_valid": 0, "rows_invalid": 1},
            raw=[(1, value)],
            valid={},
            valid_numbers=[],
            invalid={1: [overflow]},
            invalid_numbers=[1],
            invalid_raw={1: value},
        )
        verdicts = [csv_verdict(model, ["n"], [value])]
        found = compare_run("csv", model, [value], verdicts, stored)
        assert (found == []) is accepted


def test_saved_case_reads_back_byte_for_byte(tmp_path: Path) -> None:
    case = Case(
        SIMPLE,
        ["name", "a,b", 'q"'],
        [["x\r\ny", "", " "], ["\u2028", "é", '"'], ["a\rb", "", ""]],
        ['{"name": "a\\u0000"}', ' {"qty": NaN}\t', '{"a": 1,}'],
    )
    found = [Divergence("csv", 1, "errors", "", "", "", "errors input of x")]
    folder = save(case, found, "csv | errors input of x", "a test", tmp_path)
    back = load_case(folder)
    assert (back.source, back.columns, back.records, back.lines) == (
        SIMPLE,
        case.columns,
        case.records,
        case.lines,
    )
    assert (folder / "divergence.txt").read_text().splitlines()[:2] == [
        "key: csv | errors input of x",
        "found by: a test",
    ]


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(spec=model_specs())
def test_generated_models_and_rows_are_well_formed(spec: ModelSpec, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """Each drawn model is valid Python; Pydantic accepts nearly all; the CSV reads back."""
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "model.py"
    path.write_text(render(spec), encoding="utf-8")
    try:
        model = load(path)
    except REFUSED:
        return
    from random import Random

    rows = RowMaker(spec, model, Random(1)).rows(20, 10)
    text = Case("", rows.columns, rows.records).file_text("csv")
    assert list(csv.reader(io.StringIO(text, newline=""))) == [rows.columns, *rows.records]
    assert len(rows.lines) == 20 and all("\n" not in line and line.strip() for line in rows.lines)


def test_check_through_the_cli_finds_a_real_divergence_and_nothing_else(tmp_path: Path) -> None:
    """A twin that disagrees with its validator (the user's bug) shows up on exactly its rows."""
    good = Case(SIMPLE, ["name", "qty"], [["ab", "3"], ["a", ""], ["abc", "0"]], ['{"name": "xy"}'])
    assert check(good, tmp_path / "good") == []
    wrong = Case(WRONG_TWIN, ["qty"], [["5"], ["6"], ["7"]], ['{"qty": 6}', '{"qty": 1}'])
    found = check(wrong, tmp_path / "wrong")
    assert [(d.fmt, d.row, d.kind, d.signature) for d in found] == [
        ("csv", 2, "verdict", "verdict valid -> value_error"),
        ("ndjson", 1, "verdict", "verdict valid -> value_error"),
    ]


UNIQUE = """
from typing import ClassVar

from pydantic import BaseModel


class Fuzzed(BaseModel):
    __unique__: ClassVar[tuple[str, ...]] = ("k",)
    k: str
"""


def test_shrink_keeps_the_run_a_finding_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finding about an NDJSON duplicate of a key the CSV run stored shrinks to both runs, one
    row each. The finding is planted: an oracle that names the wrong run for such duplicates."""
    from tests.modelfuzz import oracle

    right = oracle.unique_errors

    def wrong_run(verdicts, unique, seen, run, model=None):  # type: ignore[no-untyped-def]
        right(verdicts, unique, seen, run, model)
        for i, v in enumerate(verdicts):
            for error in v.errors:
                if error[0] == "duplicate":
                    msg = error[2].replace("in run 1,", f"in run {run},")
                    verdicts[i] = oracle.Verdict(False, {}, [(*error[:2], msg, error[3])], v.data)

    monkeypatch.setattr(oracle, "unique_errors", wrong_run)
    case = Case(
        UNIQUE,
        ["k"],
        [["x"], ["a"], ["y"]],
        ['{"k": "z"}', '{"k": "a"}', '{"k": "a"}', '{"k": "w"}'],
    )
    found = check(case, tmp_path / "full")
    assert [(d.fmt, d.row, d.signature) for d in found] == [
        ("ndjson", 2, "errors msg of duplicate"),
        ("ndjson", 3, "errors msg of duplicate"),
    ]
    small, again, _ = shrink(case, found[0], "ndjson | errors msg of duplicate", tmp_path, None)
    assert (small.records, small.lines) == ([["a"]], ['{"k": "a"}'])
    assert [d.signature for d in again] == ["errors msg of duplicate"]
