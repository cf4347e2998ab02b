"""The stored layout (layout 2): each fact once, the public shape through views.

Checked against the real things on generated files: Pydantic's own error lists (type, loc,
msg, input, in order) for ``ingestion_errors``, Python's csv module for ``raw_data``'s lines
and raw text; the rules table; whole row groups; and a layout-1 file (made with the DDL of
the version before) migrated on open, its public tables unchanged to the byte.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest
from pydantic import BaseModel, Field, ValidationError

from engine import Lake, ingest
from engine.errors import StoreError
from engine.pipeline import RunOptions, ingest_file
from engine.store.ddl import RUNS_DDL
from engine.store.layout import LAYOUT_1_DDL, LAYOUT_VERSION
from engine.store.row_groups import ROW_GROUP
from engine.store.store import Store
from engine.streaming.offsets import load_offsets, save_offsets
from engine.streaming.topic_ids import Stored
from engine.validation.compiler import compile_schema
from engine.validation.validate import BatchValidator
from schemas.transactions import Transaction
from tests.conftest import DATA, query

COLUMNS = ("external_id", "amount", "currency", "source_channel", "timestamp")
VALUES = {
    "external_id": ["TXN-1", "TXN-2", "", "TXN,comma", 'TXN"quote'],
    "amount": ["120.50", "-50.0", "0", "abc", "", " 42 ", "1e3", "1_000", "1,000.00", "-0"],
    "currency": ["USD", "usd", "Eur", "JPY", "CAD", "", " USD"],
    "source_channel": ["CHANNEL1", "CHANNEL2", "", "line one\nline two"],
    "timestamp": [
        "2024-03-01T09:15:00",
        "2024-03-01 09:15:00",
        "2024-03-01",
        "2024-13-01T00:00:00",
        "2099-01-01T00:00:00",
        "",
        "1709284800",
        "yesterday",
    ],
}


def generated_csv(path: Path, rows: int, seed: int) -> list[tuple[int, str, dict[str, str]]]:
    """Write a CSV of random cells (blank lines and multi-line records among them); return
    per record (its first line, its text as written, its cells)."""
    rng = random.Random(seed)
    records: list[tuple[int, str, dict[str, str]]] = []
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    line = 2
    for _ in range(rows):
        if rng.random() < 0.04:
            out.write("\n")
            line += 1
        cells = {c: rng.choice(VALUES[c]) for c in COLUMNS}
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow([cells[c] for c in COLUMNS])
        written = text.getvalue()
        out.write(written)
        records.append((line, written[:-1], cells))
        line += written.count("\n")
    path.write_text(out.getvalue(), encoding="utf-8")
    return records


def pydantic_errors(cells: dict[str, str]) -> list[tuple[str, list[str], str, Any]] | None:
    """Pydantic's verdict on a CSV row as the engine gives it (empty cells are absent)."""
    data = {key: value for key, value in cells.items() if value != ""}
    try:
        Transaction.model_validate(data, context={})
    except ValidationError as exc:
        return [(e["type"], [str(p) for p in e["loc"]], e["msg"], e["input"]) for e in exc.errors()]
    return None


def test_the_views_give_pydantic_errors_and_the_files_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    records = generated_csv(path, 1500, seed=15)
    db = tmp_path / "l.duckdb"
    with Store(db) as store:
        # Small blocks: many batches, rows held back for whole row groups across them.
        summary = ingest_file(store, path, Transaction, RunOptions(block_size=8192))
    expected = [pydantic_errors(cells) for _, _, cells in records]
    invalid = {n: errors for n, errors in enumerate(expected, start=1) if errors is not None}
    assert summary.tally.rows == len(records)
    assert (summary.tally.valid, summary.tally.invalid) == (
        len(records) - len(invalid),
        len(invalid),
    )
    assert 300 < len(invalid) < 1400  # the generated rows mix valid and invalid

    raw = query(db, "SELECT row_number, line_number, raw FROM raw_data ORDER BY row_number")
    assert raw == [(n, line, text) for n, (line, text, _) in enumerate(records, start=1)]

    stored = query(db, "SELECT row_number, raw, errors FROM ingestion_errors ORDER BY row_number")
    assert [row for row, _, _ in stored] == sorted(invalid)
    for row, text, errors in stored:
        assert text == records[int(str(row)) - 1][1]
        got = [(e["type"], e["loc"], e["msg"], json.loads(e["input"])) for e in errors]  # type: ignore[attr-defined]
        assert got == invalid[int(str(row))], row

    valid = query(db, "SELECT row_number FROM processed_data ORDER BY row_number")
    assert [r[0] for r in valid] == [n for n in range(1, len(records) + 1) if n not in invalid]

    details = query(db, "SELECT run_id, row_number, loc, type, msg, input FROM error_details")
    unnested = query(
        db,
        "SELECT run_id, row_number, array_to_string(e.loc, '.'), e.type, e.msg, e.input "
        "FROM (SELECT run_id, row_number, unnest(errors) AS e FROM ingestion_errors)",
    )
    assert sorted(details, key=repr) == sorted(unnested, key=repr)
    assert len(details) == sum(len(errors) for errors in invalid.values())


def test_rules_are_written_once_per_schema_version(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    generated_csv(first, 400, seed=1)
    generated_csv(second, 400, seed=2)
    db = tmp_path / "r.duckdb"
    rules = "SELECT rule_id, schema_fingerprint, type, loc, msg FROM error_rules ORDER BY rule_id"
    with Store(db) as store:
        ingest_file(store, first, Transaction, RunOptions())
        after_first = store.rows(rules)
        ingest_file(store, second, Transaction, RunOptions())
        assert store.rows(rules) == after_first  # the same schema version: nothing added
        ingest_file(store, second, Transaction, RunOptions(context={"allowed_currencies": "JPY"}))
        after_context = store.rows(rules)
    schema = compile_schema(Transaction, typed=False, context={})
    written = {(t, tuple(loc), msg) for _, fp, t, loc, msg in after_first}
    assert {fp for _, fp, *_ in after_first} == {schema.fingerprint}
    # Each rule the validator can report, once (the header names no other key).
    validator = BatchValidator(schema, COLUMNS)
    assert written == {(r.type, r.loc, r.msg) for r in validator.rules}
    assert len(written) == len(after_first)
    # Another context is another schema version, with its own wording of the currency rule.
    added = after_context[len(after_first) :]
    other = compile_schema(Transaction, typed=False, context={"allowed_currencies": "JPY"})
    assert {fp for _, fp, *_ in added} == {other.fingerprint}
    assert ("value_error", ["currency"], "Value error, currency must be one of JPY") in [
        (t, loc, msg) for _, _, t, loc, msg in added
    ]
    # A coded error names a rule of its run's schema version; only errors no rule words
    # (Pydantic's own messages) are given, and then with every part.
    orphans = query(
        db,
        "SELECT count(*) FROM (SELECT e.run_id, unnest(e.rule_ids) AS rule_id FROM invalid_rows e) "
        "u JOIN ingestion_runs g USING (run_id) LEFT JOIN error_rules r USING (rule_id) "
        "WHERE u.rule_id IS NOT NULL AND r.schema_fingerprint IS DISTINCT FROM g.schema_fingerprint",
    )
    assert orphans == [(0,)]
    given = query(
        db,
        "SELECT DISTINCT u.rule_id IS NULL, u.g IS NULL, u.g.type IS NULL, u.g.msg IS NULL FROM "
        "(SELECT unnest(rule_ids) AS rule_id, unnest(given) AS g FROM invalid_rows) AS u",
    )
    assert sorted(given) == [(False, True, True, True), (True, False, False, False)]


def test_a_file_run_appends_whole_row_groups_in_order(tmp_path: Path) -> None:
    from engine.generate import generate

    path = tmp_path / "big.csv"
    rows = 2 * ROW_GROUP * 2 + 1234
    generate(path, rows, seed=5)
    db = tmp_path / "g.duckdb"
    with Store(db) as store:
        ingest_file(store, path, Transaction, RunOptions(block_size=1 << 20))
    # The seed-5 file's verdicts, counted outside the engine (Transaction.model_validate per
    # row, and polars: amount > 0 and currency in USD/EUR/GBP/AUD): 312,193 valid. Its
    # timestamps are all in 2024, so the clock cannot move a row.
    totals = {"source_rows": rows, "processed_data": 312_193, "invalid_rows": 180_561}
    assert totals["processed_data"] + totals["invalid_rows"] == rows == 492_754
    for table, expected_total in totals.items():
        sizes = query(
            db,
            f"SELECT row_group_id, max(count) FROM pragma_storage_info('{table}') "
            "WHERE column_name = 'row_number' GROUP BY 1 ORDER BY 1",
        )
        total = query(db, f"SELECT count(*) FROM {table}")[0][0]
        assert total == expected_total, table
        assert [n for _, n in sizes[:-1]] == [ROW_GROUP] * (len(sizes) - 1), table
        assert len(sizes) == -(-int(str(total)) // ROW_GROUP), table
        disorder = query(
            db,
            f"SELECT count(*) FROM (SELECT row_number, lag(row_number) OVER (ORDER BY rowid) "
            f"AS before FROM {table}) WHERE before >= row_number",
        )
        assert disorder == [(0,)], table


def layout_1_copy(source: Path, target: Path) -> None:
    """A layout-1 file (as the version before this one made it) holding ``source``'s rows."""
    con = duckdb.connect(str(target))
    con.execute(RUNS_DDL + LAYOUT_1_DDL)
    con.execute(f"ATTACH '{source}' AS a (READ_ONLY)")
    con.execute(
        "INSERT INTO ingestion_runs SELECT * EXCLUDE (load_mode, read_options) FROM a.ingestion_runs"
    )
    runs = con.execute("SELECT count(*) FROM ingestion_runs").fetchall()[0][0]
    for _ in range(int(runs)):  # the run id sequence, where that version left it
        con.execute("SELECT nextval('ingestion_run_ids')")
    con.execute("INSERT INTO raw_data SELECT * FROM a.raw_data ORDER BY run_id, row_number")
    con.execute(
        "INSERT INTO ingestion_errors SELECT run_id, row_number, raw, errors "
        "FROM a.ingestion_errors ORDER BY run_id, row_number"
    )
    con.execute("CREATE TABLE processed_data AS SELECT * FROM a.processed_data")
    con.execute("DETACH a")
    con.close()


PUBLIC = {
    # the columns layout 1 had (layout 3 added load_mode and read_options)
    "runs": "SELECT COLUMNS(lambda c: c NOT IN ('load_mode', 'read_options')) FROM ingestion_runs "
    "ORDER BY run_id",
    "raw": "SELECT * FROM raw_data ORDER BY run_id, row_number",
    "errors": "SELECT * FROM ingestion_errors ORDER BY run_id, row_number",
    "details": "SELECT * FROM error_details ORDER BY ALL",
    "processed": "SELECT * FROM processed_data ORDER BY run_id, row_number",
}


def test_a_layout_1_file_is_migrated_on_open_for_writing(tmp_path: Path) -> None:
    made = tmp_path / "new.duckdb"
    mixed = tmp_path / "mixed.csv"
    generated_csv(mixed, 600, seed=7)
    with Store(made) as store:
        for path in (DATA / "transactions_sample.csv", DATA / "transactions_sample.ndjson", mixed):
            ingest_file(store, path, Transaction, RunOptions())
    before = {name: query(made, sql) for name, sql in PUBLIC.items()}
    old = tmp_path / "old.duckdb"
    layout_1_copy(made, old)
    # A reader of the old file sees the same public tables (it never writes).
    assert {name: query(old, sql) for name, sql in PUBLIC.items()} == before

    with Store(old) as store:
        versions = store.rows("SELECT version, note FROM layout_versions")
        errors = 0
        for row in before["errors"]:
            assert isinstance(row[3], list)
            errors += len(row[3])
        assert versions == [
            (
                LAYOUT_VERSION,
                f"migrated from layout 1: {len(before['raw'])} raw rows kept as source_rows, "
                f"{errors} errors of {len(before['errors'])} invalid rows as invalid_rows and "
                "error_rules",
            )
        ]
        assert {name: store.rows(sql) for name, sql in PUBLIC.items()} == before
        kinds = dict(store.rows("SELECT table_name, table_type FROM information_schema.tables"))
        assert (kinds["raw_data"], kinds["ingestion_errors"]) == ("VIEW", "VIEW")
        # Errors repeated under a schema version became rules; the rest are given whole.
        assert store.rows("SELECT count(*) > 0 FROM error_rules") == [(True,)]
        summary = ingest_file(
            store, DATA / "transactions_sample.csv", Transaction, RunOptions(force=True)
        )
        assert summary.run_id == 4
    with Store(old) as store:  # migrated once
        assert store.rows("SELECT count(*) FROM layout_versions") == [(1,)]
        after = {name: store.rows(sql) for name, sql in PUBLIC.items()}
    assert after["errors"][: len(before["errors"])] == before["errors"]
    assert [row[0] for row in after["errors"]].count(4) == [
        row[0] for row in after["errors"]
    ].count(1)


def test_a_layout_3_file_gains_topic_ids_on_open_for_writing(tmp_path: Path) -> None:
    """Layout 4 keeps each Kafka offset's topic id; a layout-3 file's offsets keep their values
    with no id (NULL: resumed from as before, tests/streaming/test_recreated_topic.py)."""
    path = tmp_path / "three.duckdb"
    with Store(path) as store, store.transaction():
        save_offsets(store, "g", {("t", 0): 5, ("t", 1): 7}, 1, {"t": "A"})
    con = duckdb.connect(str(path))  # as the engine before layout 4 left it
    con.execute(
        "ALTER TABLE kafka_offsets DROP COLUMN topic_id; DELETE FROM layout_versions; "
        "INSERT INTO layout_versions VALUES (3, '2026-12-01 00:00:00+00', 'created with layout 3')"
    )
    con.close()
    assert query(path, "SELECT * EXCLUDE (updated_at) FROM kafka_offsets ORDER BY 3") == [
        ("g", "t", 0, 5, 1),
        ("g", "t", 1, 7, 1),
    ]
    with Store(path) as store:
        assert store.rows("SELECT version, note FROM layout_versions ORDER BY 1") == [
            (3, "created with layout 3"),
            (4, "migrated from layout 3: kafka_offsets keeps each offset's topic id from now on"),
        ]
        assert load_offsets(store, "g", [("t", 0), ("t", 1)]) == {
            ("t", 0): Stored(5, None),
            ("t", 1): Stored(7, None),
        }
    assert query(path, "SELECT * EXCLUDE (updated_at) FROM kafka_offsets ORDER BY 3") == [
        ("g", "t", 0, 5, 1, None),
        ("g", "t", 1, 7, 1, None),
    ]


def test_a_file_from_a_newer_engine_or_an_unknown_layout_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.duckdb"
    con = duckdb.connect(str(newer))
    con.execute(
        "CREATE TABLE layout_versions (version INTEGER, applied_at TIMESTAMPTZ, note VARCHAR)"
    )
    con.execute("INSERT INTO layout_versions VALUES (5, now(), 'from the future')")
    con.close()
    with pytest.raises(StoreError) as raised:
        Store(newer)
    assert LAYOUT_VERSION == 4
    assert str(raised.value) == (
        f"{newer}: the database has layout 5, made by a newer version of the engine (this one "
        "knows layouts up to 4) (use the engine that made it, or another --db file)"
    )
    odd = tmp_path / "odd.duckdb"
    con = duckdb.connect(str(odd))
    con.execute(
        RUNS_DDL + LAYOUT_1_DDL.replace("line_number BIGINT,", "line_number BIGINT, extra INT,")
    )
    con.close()
    with pytest.raises(StoreError) as raised:
        Store(odd)
    assert str(raised.value) == (
        f"{odd}: table raw_data has columns run_id, row_number, line_number, extra, raw, not "
        "those of any layout this engine can migrate (ingest into another --db file; read this "
        "one with the engine that made it)"
    )
    assert query(
        odd, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'source_rows'"
    ) == [(0,)]


class Clash(BaseModel):
    __table_name__: ClassVar[str] = "source_rows"
    name: str


def test_a_schema_cannot_take_an_engine_tables_name(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("name\nx\n")
    with Store(tmp_path / "c.duckdb") as store, pytest.raises(StoreError) as raised:
        ingest_file(store, path, Clash, RunOptions())
    assert str(raised.value) == (
        f"{tmp_path / 'c.duckdb'}: schema Clash names its table 'source_rows', which the engine "
        "uses for its own data (give the model another __table_name__)"
    )


class OwnColumns(BaseModel):
    name: str
    row_number: int  # a user's column


class ReadsTheKey(BaseModel):
    name: str
    row_no: int = Field(validation_alias="row_number")


def test_a_field_named_like_an_engine_column_is_refused_and_an_alias_reads_the_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.csv"
    path.write_text("name,row_number\nx,7\n")
    db = tmp_path / "c.duckdb"
    with pytest.raises(StoreError) as raised:
        ingest(path, db=db, schema=OwnColumns)
    assert str(raised.value) == (
        f"{db}: schema OwnColumns: field 'row_number' is named like a column the engine adds "
        "to every table (run_id, row_number) (rename the field; it can still read the input "
        "key with Field(validation_alias='row_number'))"
    )
    lake = tmp_path / "lake"
    with pytest.raises(StoreError) as raised:
        ingest(path, db=Lake(str(lake)), schema=OwnColumns)
    assert str(raised.value).startswith(
        f"{lake}: schema OwnColumns: field 'row_number' is named like a column the engine "
        "adds to every table (run_id, row_number, batch)"
    )
    assert ingest(path, db=db, schema=ReadsTheKey).tally.valid == 1
    assert query(db, "SELECT run_id, row_number, name, row_no FROM reads_the_key") == [
        (1, 1, "x", 7)
    ]


class Batch(BaseModel):
    x: int


def test_a_table_named_like_a_local_name_of_the_store_takes_its_rows(tmp_path: Path) -> None:
    """DuckDB reads a Python object by its local name unless a table is called that."""
    path = tmp_path / "b.csv"
    path.write_text("x\n1\n2\n")
    db = tmp_path / "b.duckdb"
    assert ingest(path, db=db, schema=Batch).tally.valid == 2
    assert query(db, "SELECT run_id, row_number, x FROM batch ORDER BY 2") == [
        (1, 1, 1),
        (1, 2, 2),
    ]
