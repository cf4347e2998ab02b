"""`schema list` and `schema explain`: what the compiler made of a model."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import Result
from pydantic import BaseModel

from engine.validation.explain import explain
from schemas.orders import Order
from schemas.transactions import Transaction
from tests.validation.models import Untwinned
from tests.wording import table_rows

RunCli = Callable[..., Result]


def test_explain_transaction_for_csv() -> None:
    data = explain(Transaction, typed=False)
    assert (data.model, data.table, data.extra, data.unique) == (
        "Transaction",
        "processed_data",
        "ignore",
        (),
    )
    fields = {f.name: f for f in data.fields}
    assert list(fields) == ["external_id", "amount", "currency", "source_channel", "timestamp"]
    amount = fields["amount"]
    assert (amount.sql_type, amount.requirement, amount.path) == (
        "DOUBLE",
        "required",
        "vectorized",
    )
    assert amount.checks == ("float_parsing (parse text as float)", "greater_than (gt 0)")
    assert fields["currency"].requirement == "default: 'USD'"
    assert fields["currency"].parse == (
        "str: text as is",
        "validator _currency_allowed: vectorized twin",
    )
    assert fields["timestamp"].sql_type == "TIMESTAMP WITH TIME ZONE"
    assert fields["timestamp"].requirement == "default: _now() once per batch"
    assert fields["timestamp"].path == "vectorized; values in the forms named above go to Pydantic"


def test_explain_shows_pydantic_fallback() -> None:
    data = explain(Untwinned, typed=True)
    code = next(f for f in data.fields if f.name == "code")
    assert (
        code.path
        == "Pydantic for the rows reaching _code (no vectorized twin); the rest vectorized"
    )
    assert data.model_level == ["model validator _window: rows valid so far go through Pydantic"]


def test_explain_orders_for_json() -> None:
    data = explain(Order, typed=True)
    assert (data.table, data.extra, data.unique) == ("orders", "forbid", ("order_id",))
    fields = {f.name: f for f in data.fields}
    assert fields["order_id"].input_keys == ("Order ID", "order_id")
    assert fields["unit_price"].sql_type == "DECIMAL(12,2)"
    assert fields["priority"].sql_type == "BIGINT"
    assert fields["unit_price"].checks == (
        "pydantic (values the vectorized parse leaves open: Pydantic's verdict per distinct value)",
        "decimal_type (JSON number or string)",
        "decimal_parsing (parse as decimal)",
        "finite_number (finite)",
        "decimal_max_digits (max_digits 12)",
        "decimal_max_places (decimal_places 2)",
        "decimal_whole_digits (at most 10 whole digits)",
        "greater_than (gt 0)",
    )
    assert data.model_level == ["model validator _ship_after_order: vectorized"]


def test_schema_cli(run_cli: RunCli) -> None:
    listed = run_cli("schema", "list")
    assert listed.exit_code == 0
    assert table_rows(listed.output) == [
        ["schema", "table", "description"],
        ["orders:Order", "orders", "An order line as exported by a shop system."],
        ["transactions:Transaction", "processed_data", "One payment as it arrives from a channel."],
    ]
    explained = run_cli("schema", "explain", "transactions")
    assert explained.exit_code == 0
    lines = explained.output.splitlines()
    assert lines[0] == (
        "Transaction -> table processed_data, for CSV (text values); extra inputs: ignore"
    )
    amount = lines.index("  amount  DOUBLE  required  (input 'amount')")
    assert lines[amount : amount + 6] == [
        "  amount  DOUBLE  required  (input 'amount')",
        "      parse   float: trim, parse float (Rust grammar, _ separators)",
        "      check   float_parsing (parse text as float)",
        "      check   greater_than (gt 0)",
        "      runs    vectorized",
        "",
    ]
    missing = run_cli("schema", "explain", "nope")
    assert (missing.exit_code, missing.stdout) == (2, "")
    assert missing.stderr == (
        "error: schema nope: not found (known schemas: orders:Order, transactions:Transaction; "
        "or name a module, package.module:Class, or a file, path/to/file.py:Class)\n"
    )


class EngineNamed(BaseModel):
    run_id: int
    batch: str
    name: str


def test_explain_names_the_fields_storing_refuses() -> None:
    """A field named like a column the engine adds: validation explains it, and the
    explanation says now what a run would refuse (a lake's tables also have ``batch``)."""
    data = explain(EngineNamed, typed=False)
    assert [f.name for f in data.fields] == ["run_id", "batch", "name"]
    assert data.storage == [
        "field 'run_id' cannot be stored: it is named like a column the engine adds to every "
        "table (run_id, row_number) (rename the field; it can still read the input key with "
        "Field(validation_alias='run_id'))",
        "field 'batch' cannot be stored on a lake: it is named like a column the engine adds "
        "to every table (run_id, row_number, batch) (rename the field; it can still read the "
        "input key with Field(validation_alias='batch'))",
    ]
    assert explain(Transaction, typed=False).storage == []
