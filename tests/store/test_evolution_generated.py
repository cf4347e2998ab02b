"""Generated model histories: each step adds a field, widens one (int to float, a longer
decimal) or drops one, and ingests a few rows. After every step, each stored row holds what
Pydantic makes of its raw text under the version that validated it (as the widened column
holds it), NULL where that version had no such field, and names that version."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, create_model

import engine
from engine.store.store import Store

SQL = {
    "int": "DECIMAL(38,0)",
    "float": "DOUBLE",
    "str": "VARCHAR",
    "dec8": "DECIMAL(8,2)",
    "dec10": "DECIMAL(10,2)",
    "dec12": "DECIMAL(12,2)",
}


class Base(BaseModel):
    __table_name__: ClassVar[str] = "evolving"


def model(number: int, fields: dict[str, str]) -> type[BaseModel]:
    definitions: dict[str, Any] = {"rid": (str, ...)}
    for name, kind in fields.items():
        if kind.startswith("dec"):
            digits = int(kind[3:])
            definitions[name] = (
                Decimal | None,
                Field(default=None, max_digits=digits, decimal_places=2),
            )
        else:
            definitions[name] = ({"int": int, "float": float, "str": str}[kind] | None, None)
    return create_model(f"V{number}", __base__=Base, **definitions)


def value(kind: str) -> st.SearchStrategy[str]:
    if kind == "int":
        return st.integers(-(10**12), 10**12).map(str)
    if kind == "float":
        return st.floats(-1e9, 1e9, allow_nan=False).map(repr)
    if kind == "str":
        return st.text("abcXYZ019 ", min_size=1, max_size=6).map(str.strip).filter(bool)
    digits = int(kind[3:]) - 2
    return st.decimals(
        min_value=-(10**digits) + 1, max_value=10**digits - 1, places=2, allow_nan=False
    ).map(str)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[dict[str, str], list[dict[str, str]]]]:
    fields: dict[str, str] = {}
    steps = []
    for step in range(draw(st.integers(1, 4))):
        ops = ["add"]
        if any(k == "int" or k in ("dec8", "dec10") for k in fields.values()):
            ops.append("widen")
        if fields:
            ops.append("drop")
        op = draw(st.sampled_from(ops)) if step else "add"
        event(op)
        if op == "add":
            fields[f"f{step}"] = draw(st.sampled_from(["int", "float", "dec8", "str"]))
        elif op == "widen":
            name = draw(
                st.sampled_from([n for n, k in fields.items() if k in ("int", "dec8", "dec10")])
            )
            fields[name] = {"int": "float", "dec8": "dec10", "dec10": "dec12"}[fields[name]]
        else:
            del fields[draw(st.sampled_from(sorted(fields)))]
        rows = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"rid": st.just("r"), **{n: value(k) for n, k in fields.items()}}
                ),
                min_size=1,
                max_size=3,
            )
        )
        steps.append((dict(fields), rows))
    return steps


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(histories())
def test_every_row_keeps_its_version_s_values_through_generated_evolutions(
    tmp_path: Path, history: list[tuple[dict[str, str], list[dict[str, str]]]]
) -> None:
    db = tmp_path / f"e{abs(hash(repr(history)))}.duckdb"
    expected: dict[tuple[int, int], tuple[int, dict[str, Any]]] = {}
    with Store(db) as store:
        for number, (fields, rows) in enumerate(history, 1):
            version = model(number, fields)
            names = ["rid", *fields]
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=names, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            data = tmp_path / "step.csv"
            data.write_text(text.getvalue())
            summary = engine.ingest(data, db=store, schema=version, force=True)
            assert summary.tally.invalid == 0
            assert summary.run_id is not None
            for row_number, row in enumerate(rows, 1):
                validated = version.model_validate(row).model_dump()
                expected[(summary.run_id, row_number)] = (number, validated)
            types = store.table_columns("evolving")
            assert {n: types[n] for n in fields} == {n: SQL[k] for n, k in fields.items()}
            columns = [c for c in types if c not in ("run_id", "row_number")]
            stored = store.frame(
                "SELECT t.*, s.schema_name FROM evolving t JOIN row_versions v "
                "USING (run_id, row_number) JOIN schema_versions s USING (schema_fingerprint)"
            )
            assert stored.height == len(expected)
            for found in stored.iter_rows(named=True):
                step, values = expected[(found["run_id"], found["row_number"])]
                assert found["schema_name"] == f"V{step}"
                for column in columns:
                    want = values.get(column)
                    got = found[column]
                    if isinstance(want, int) and isinstance(got, float):
                        want = float(want)  # the column was widened to DOUBLE
                    assert got == want, (column, found, values)
