"""DuckDB files with known content, made by the real ingestion path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.pipeline import RunOptions, ingest_file
from engine.schemas import load_schema
from engine.store.store import Store
from tests.conftest import DATA

# Values that break naive writers: non-ASCII, quotes of both kinds, a delimiter, a tab and
# a newline inside a field, an empty string next to a null, tiny and large numbers.
TRICKY_NDJSON = [
    {
        "external_id": "TXN-ü-1",
        "amount": 10.5,
        "currency": "usd",
        "source_channel": "Zoë Ünïcødé 東京 🚀",
        "timestamp": "2024-01-02T03:04:05Z",
    },
    {
        "external_id": "TXN-2",
        "amount": 0.1,
        "currency": "EUR",
        "source_channel": "He said \"hi\", then 'bye'",
        "timestamp": None,
    },
    {
        "external_id": "TXN-3",
        "amount": 123456789.125,
        "currency": "GBP",
        "source_channel": "line one\nline two,\ttabbed",
        "timestamp": "2024-02-29T23:59:59.123456+02:00",
    },
    {
        "external_id": "TXN-4",
        "amount": -1,
        "currency": "USD",
        "source_channel": "bad",
        "timestamp": "2024-01-01T00:00:00",
    },
    {
        "external_id": "",
        "amount": 1e-9,
        "currency": "AUD",
        "source_channel": "",
        "timestamp": "2023-12-31T23:00:00-01:00",
    },
]
# A CSV record over two lines, with quotes inside; an infinite amount; one invalid row.
TRICKY_CSV = (
    "external_id,amount,currency,source_channel,timestamp\n"
    '"TX,1",10.5,usd,"multi\nline ""quoted""",2024-01-02T03:04:05\n'
    "TX2,inf,EUR,c,2024-01-02\n"
    "TX3,-5,EUR,c,2024-01-02\n"
)


def ingest(db: Path, *files: Path, schema: str = "transactions") -> None:
    model = load_schema(schema)
    with Store(db) as store:
        for path in files:
            ingest_file(store, path, model, RunOptions())


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    """data/transactions_sample.csv as run 1: 21 rows, 7 valid, 14 invalid."""
    db = tmp_path / "sample.duckdb"
    ingest(db, DATA / "transactions_sample.csv")
    return db


@pytest.fixture
def tricky_db(tmp_path: Path) -> Path:
    """Run 1: five NDJSON records (one invalid); run 2: three CSV rows (one invalid)."""
    ndjson = tmp_path / "tricky.ndjson"
    ndjson.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in TRICKY_NDJSON), encoding="utf-8"
    )
    csv = tmp_path / "tricky.csv"
    csv.write_text(TRICKY_CSV, encoding="utf-8")
    db = tmp_path / "tricky.duckdb"
    ingest(db, ndjson, csv)
    return db
