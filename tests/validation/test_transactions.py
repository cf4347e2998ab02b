"""The reference schema end to end: each rule's exact error (type, loc, msg, input) and values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.pipeline import RunOptions, ingest_file
from engine.store.store import Store
from schemas.transactions import Transaction
from tests.conftest import DATA, query

CURRENCY_MSG = "Value error, currency must be one of USD, EUR, GBP, AUD"
FLOAT_MSG = "Input should be a valid number, unable to parse string as a number"


def ingest(db: Path, path: Path, **options: object) -> int:
    with Store(db) as store:
        summary = ingest_file(store, path, Transaction, RunOptions(**options))  # type: ignore[arg-type]
    assert summary.run_id is not None
    return summary.run_id


def errors_by_row(db: Path, run_id: int) -> dict[int, list[tuple[object, ...]]]:
    rows = query(
        db,
        f"SELECT row_number, loc, type, msg, input FROM error_details WHERE run_id = {run_id} ORDER BY row_number, loc",
    )
    found: dict[int, list[tuple[object, ...]]] = {}
    for row_number, *rest in rows:
        found.setdefault(int(row_number), []).append(tuple(rest))  # type: ignore[call-overload]
    return found


def test_csv_sample_split_per_rule(db: Path) -> None:
    before = datetime.now(UTC)
    run_id = ingest(db, DATA / "transactions_sample.csv")
    after = datetime.now(UTC)
    assert errors_by_row(db, run_id) == {
        3: [("amount", "greater_than", "Input should be greater than 0", '"-50.0"')],
        5: [("amount", "float_parsing", FLOAT_MSG, '"abc"')],
        6: [("currency", "value_error", CURRENCY_MSG, '"JPY"')],
        7: [
            (
                "external_id",
                "missing",
                "Field required",
                '{"amount":"42.00","currency":"USD","source_channel":"CHANNEL3","timestamp":"2024-03-01T09:20:00"}',
            )
        ],
        9: [
            (
                "source_channel",
                "missing",
                "Field required",
                '{"external_id":"TXN-9","amount":"42.00","currency":"USD","timestamp":"2024-03-01T09:22:00"}',
            )
        ],
        10: [
            (
                "timestamp",
                "value_error",
                "Value error, timestamp must not be in the future",
                '"2099-01-01T00:00:00"',
            )
        ],
        11: [
            (
                "timestamp",
                "datetime_from_date_parsing",
                "Input should be a valid datetime or date, month value is outside expected range of 1-12",
                '"2024-13-01T00:00:00"',
            )
        ],
        12: [("amount", "float_parsing", FLOAT_MSG, '"1,000.00"')],
        13: [("currency", "value_error", CURRENCY_MSG, '"CAD"')],
        14: [("amount", "greater_than", "Input should be greater than 0", '"0"')],
        15: [
            ("", "csv_too_few_fields", "Expected 5 fields, found 4", '"TXN-15,77.10,USD,CHANNEL1"')
        ],
        16: [
            (
                "",
                "csv_too_many_fields",
                "Expected 5 fields, found 6",
                '"TXN-16,77.10,USD,CHANNEL1,2024-03-01T09:26:00,extra"',
            )
        ],
        17: [
            (
                "",
                "csv_unterminated_quote",
                "Unterminated quoted field: a field opens a quote that the line never closes",
                '"\\"TXN-17,77.10,USD,CHANNEL1,2024-03-01T09:27:00"',
            )
        ],
        21: [
            (
                "",
                "invalid_utf8",
                "Invalid UTF-8: byte 0xe9 at position 23 of the line",
                '"TXN-21,5.00,USD,CHANNEL\\\\xe9\\\\xe9"',
            )
        ],
    }
    valid = query(
        db,
        f"SELECT row_number, external_id, amount, currency, source_channel, "
        f"strftime(timezone('UTC', timestamp), '%Y-%m-%dT%H:%M:%S') FROM processed_data "
        f"WHERE run_id = {run_id} AND row_number <> 4 ORDER BY row_number",
    )
    assert valid == [
        (1, "TXN-1", 120.5, "USD", "CHANNEL1", "2024-03-01T09:15:00"),
        (2, "TXN-2", 89.99, "EUR", "CHANNEL2", "2024-03-01T09:16:30"),
        (8, "TXN-8", 42.0, "USD", "CHANNEL4", "2024-03-01T07:21:00"),
        (18, "TXN-18", 300.25, "GBP", 'CHANNEL "VIP"', "2024-03-01T09:28:00"),
        (19, "TXN-19", float("inf"), "USD", "CHANNEL2", "2024-03-01T09:29:00"),
        (20, "TXN-20", 19.99, "AUD", "CHANNEL3", "2024-03-01T00:00:00"),
    ]
    # An empty timestamp cell takes the default: the ingestion time.
    [(stamp,)] = query(
        db, f"SELECT timestamp FROM processed_data WHERE run_id = {run_id} AND row_number = 4"
    )
    assert before <= stamp <= after  # type: ignore[operator]


def test_ndjson_sample_split_per_rule(db: Path) -> None:
    run_id = ingest(db, DATA / "transactions_sample.ndjson")
    found = errors_by_row(db, run_id)
    assert found == {
        3: [("amount", "greater_than", "Input should be greater than 0", "-50.0")],
        5: [("amount", "float_parsing", FLOAT_MSG, '"abc"')],
        6: [("currency", "value_error", CURRENCY_MSG, '"JPY"')],
        7: [
            (
                "external_id",
                "missing",
                "Field required",
                '{"amount": 42, "currency": "USD", "source_channel": "CHANNEL3", "timestamp": "2024-03-01T09:20:00"}',
            )
        ],
        8: [("amount", "float_type", "Input should be a valid number", "null")],
        9: [("external_id", "string_type", "Input should be a valid string", "109")],
        10: [
            (
                "timestamp",
                "value_error",
                "Value error, timestamp must not be in the future",
                '"2099-01-01T00:00:00"',
            )
        ],
        12: [
            (
                "",
                "json_invalid",
                "Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 60 (char 59)",
                '"{\\"external_id\\": \\"TXN-112\\", \\"amount\\": 42, \\"currency\\": \\"USD\\","',
            )
        ],
        13: [
            (
                "",
                "json_invalid",
                "Invalid JSON: Expecting value: line 1 column 1 (char 0)",
                '"not json at all"',
            )
        ],
        14: [
            (
                "",
                "model_type",
                "Input should be a valid dictionary or instance of Transaction",
                '["an", "array"]',
            )
        ],
    }
    valid = query(
        db,
        f"SELECT row_number, external_id, amount, currency FROM processed_data WHERE run_id = {run_id} ORDER BY 1",
    )
    assert valid == [
        (1, "TXN-101", 120.5, "USD"),
        (2, "TXN-102", 89.99, "EUR"),
        (4, "TXN-104", 2500.0, "AUD"),
        (11, "TXN-111", 42.0, "USD"),
        (15, "TXN-115", 99.95, "GBP"),
    ]
    # A unix timestamp is a form left to Pydantic: same value as Pydantic gives.
    [(stamp,)] = query(
        db,
        f"SELECT epoch(timestamp) FROM processed_data WHERE run_id = {run_id} AND row_number = 11",
    )
    assert stamp == 1709284800


def test_allowed_currencies_come_from_the_context(db: Path) -> None:
    run_id = ingest(
        db, DATA / "transactions_sample.csv", context={"allowed_currencies": "USD,JPY,CAD"}
    )
    currency_errors = query(
        db,
        f"SELECT row_number, input FROM error_details WHERE run_id = {run_id} AND loc = 'currency' ORDER BY 1",
    )
    assert currency_errors == [
        (2, '"eur"'),
        (3, '"GBP"'),
        (4, '"AUD"'),
        (14, '"EUR"'),
        (18, '"gbp"'),
        (20, '"AUD"'),
    ]
    messages = query(
        db, f"SELECT DISTINCT msg FROM error_details WHERE run_id = {run_id} AND loc = 'currency'"
    )
    assert messages == [("Value error, currency must be one of USD, JPY, CAD",)]
