"""Finding a model by name: a wrong name says where it looked and what is there."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import Result

from engine.errors import SchemaError
from engine.schemas import load_schema
from engine.validation.explain import explain
from tests.conftest import ROOT

RunCli = Callable[..., Result]

MODELS = """\
from enum import Enum

from pydantic import BaseModel

from schemas.transactions import Transaction

LIMIT = 3


class Color(Enum):
    RED = 1


class Reading(BaseModel):
    value: float


class Sensor(BaseModel):
    name: str


class _Draft(BaseModel):
    note: str


def helper() -> None: ...
"""


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Nope", "no Pydantic model named 'Nope' in {file}"),
        ("Color", "'Color' in {file} is an enum, not a Pydantic model"),
        ("helper", "'helper' in {file} is a function, not a Pydantic model"),
        ("LIMIT", "'LIMIT' in {file} is an int value, not a Pydantic model"),
        ("Enum", "'Enum' in {file} is an enum, not a Pydantic model"),
        ("Transaction", "'Transaction' in {file} is a model imported from schemas.transactions"),
        ("_Draft", "'_Draft' in {file} is a private model"),
    ],
)
def test_a_wrong_class_names_the_file_and_its_models(
    tmp_path: Path, name: str, problem: str
) -> None:
    file = tmp_path / "models.py"
    file.write_text(MODELS)
    with pytest.raises(SchemaError) as raised:
        load_schema(f"{file}:{name}")
    assert str(raised.value) == (
        f"schema {file}:{name}: {problem.format(file=file)} (its models: Reading, Sensor)"
    )
    assert load_schema(f"{file}:Sensor").__name__ == "Sensor"


def test_a_file_without_models(tmp_path: Path) -> None:
    file = tmp_path / "empty.py"
    file.write_text("X = 1\n")
    with pytest.raises(SchemaError) as raised:
        load_schema(f"{file}:X")
    assert str(raised.value) == (
        f"schema {file}:X: 'X' in {file} is an int value, not a Pydantic model "
        "(it defines no Pydantic model)"
    )


def test_a_wrong_class_in_the_schemas_package() -> None:
    """The issue's case, on the command line: the file as given, never an internal name (nor
    ``:X:`` shown as an emoji)."""
    for spec, message in [
        (
            "schemas/orders.py:Status",
            "'Status' in schemas/orders.py is an enum, not a Pydantic model (its models: Order)",
        ),
        (
            "orders:Status",
            "'Status' in schemas/orders.py is an enum, not a Pydantic model (its models: Order)",
        ),
        (
            "transactions:X",
            "no Pydantic model named 'X' in schemas/transactions.py (its models: Transaction)",
        ),
    ]:
        result = subprocess.run(
            [sys.executable, "cli.py", "schema", "explain", spec],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == f"error: schema {spec}: {message}\n"


def test_schema_explain_input_and_output_formats(run_cli: RunCli) -> None:
    """--input-format picks what to explain for, --format how to print it."""
    from schemas.orders import Order

    for options, typed in [((), False), (("--input-format", "csv"), False)] + [
        (("--input-format", kind), True) for kind in ("ndjson", "json")
    ]:
        result = run_cli("schema", "explain", "orders", "--format", "json", *options)
        assert result.exit_code == 0, result.output
        expected = asdict(explain(Order, typed=typed))
        printed = json.loads(result.output)
        assert printed == json.loads(json.dumps(expected))
        # Literals read off schemas/orders.py (and Pydantic's error types for each value kind):
        # the CLI and explain() share code, so the equality above alone proves nothing.
        assert {k: v for k, v in printed.items() if k != "fields"} == {
            "model": "Order",
            "table": "orders",
            "source": "JSON (typed values)" if typed else "CSV (text values)",
            "extra": "forbid",
            "unique": ["order_id"],
            "model_level": ["model validator _ship_after_order: vectorized"],
            "storage": [],
        }
        assert [(f["name"], f["sql_type"], f["requirement"]) for f in printed["fields"]] == [
            ("order_id", "VARCHAR", "required"),
            ("customer", "VARCHAR", "required"),
            ("quantity", "BIGINT", "required"),
            ("unit_price", "DECIMAL(12,2)", "required"),
            ("status", "VARCHAR", "default: <Status.NEW: 'new'>"),
            ("priority", "BIGINT", "default: <Priority.NORMAL: 2>"),
            ("ordered_at", "TIMESTAMP", "required"),
            ("ship_by", "DATE", "default: None"),
            ("gift", "BOOLEAN", "default: False"),
        ]
        order_id = printed["fields"][0]
        assert order_id["input_keys"] == ["Order ID", "order_id"]
        assert order_id["checks"] == ["string_type (JSON string)"] * typed + [
            "string_pattern_mismatch (pattern '^ORD-[0-9]+$')"
        ]
        quantity = printed["fields"][2]
        assert quantity["checks"] == [
            "pydantic (values the vectorized parse leaves open: Pydantic's verdict per distinct "
            "value)",
            *(
                [
                    "int_type (JSON number, bool or numeric string)",
                    "finite_number (finite float)",
                    "int_from_float (no fractional part)",
                    "int_parsing_size (a float within 64 bits)",
                    "int_parsing (parse string as int)",
                ]
                if typed
                else ["int_parsing (parse text as int)"]
            ),
            "less_than_equal (le 10000)",
            "greater_than_equal (ge 1)",
        ]
        assert printed["fields"][5]["checks"][1:] == [
            "int_parsing_size (fits 64 bits)",
            "enum (one of [1, 2, 3])",
        ]
    table = run_cli("schema", "explain", "orders", "--input-format", "json")
    assert table.exit_code == 0
    assert table.output.splitlines()[0] == (
        "Order -> table orders, for JSON (typed values); extra inputs: forbid; "
        "unique key (order_id)"
    )
    assert (
        table.output
        == run_cli(
            "schema", "explain", "orders", "--input-format", "json", "--format", "table"
        ).output
    )
    old = run_cli("schema", "explain", "orders", "--format", "csv")
    assert old.exit_code == 2
    assert old.output.splitlines()[-1] == (
        "Error: Invalid value for '--format': 'csv' is an input format: use --input-format csv "
        "(--format picks the output: table or json)"
    )
