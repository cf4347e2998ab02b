"""A file run's blocks shrink where errors are dense, and what it stores does not change.

A 1M-row file whose every row failed on four fields peaked at 1.10 GB with 16 MiB blocks
(error lists cost memory by the error); now a batch's errors hold the next blocks to about
``ERRORS_PER_BLOCK`` errors (0.8 GB, same time: README, Performance). Scaled down here: a
small budget, small blocks, and the batches' sizes and the stored tables compared with runs
without the budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.pipeline as pipeline
from engine import block_budget
from engine.pipeline import RunOptions, ingest_file
from engine.store.store import Store
from schemas.transactions import Transaction
from tests.conftest import query

BLOCK = 64 << 10
BUDGET = 2_000  # errors a block
ROWS = 6_000

STORED = {
    "valid": "SELECT * EXCLUDE (run_id) FROM processed_data ORDER BY row_number",
    "errors": "SELECT * EXCLUDE (run_id) FROM error_details ORDER BY ALL",
    "raw": "SELECT * EXCLUDE (run_id) FROM raw_data ORDER BY row_number",
}


def write(path: Path, bad: bool) -> None:
    rows = ["external_id,amount,currency,source_channel,timestamp"]
    for i in range(ROWS):
        if bad:  # four errors a row: amount, currency, source_channel, timestamp
            rows.append(f"TXN-{i:08d},1.5.{i % 97}x,dollars,,2024-99-{i % 28:02d}T25:61:61")
        else:
            rows.append(f"TXN-{i:08d},{i + 1}.25,EUR,web,2024-05-{i % 28 + 1:02d}T10:00:00")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def run(
    path: Path,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    budget: int,
    block: int = BLOCK,
    input_budget: int = 10**12,
    inputs: list[int] | None = None,
) -> tuple[list[int], dict[str, list[tuple[object, ...]]]]:
    """Each batch's rows (and, into ``inputs``, its errors' input bytes) and what the run
    stored, with blocks held to ``budget`` errors and ``input_budget`` bytes of inputs."""
    batches: list[int] = []
    validate = pipeline.validate_batch

    def counted(*args: object) -> pipeline.Validated:
        validated = validate(*args)  # type: ignore[arg-type]
        batches.append(validated.tally.rows)
        if inputs is not None:
            column = validated.invalid.get_column("inputs").explode()
            inputs.append(int(column.str.len_bytes().sum() or 0))
        return validated

    with monkeypatch.context() as patch:
        patch.setattr(block_budget, "ERRORS_PER_BLOCK", budget)
        patch.setattr(block_budget, "INPUT_BYTES_PER_BLOCK", input_budget)
        patch.setattr(block_budget, "MIN_BLOCK", 4 << 10)
        patch.setattr(pipeline, "validate_batch", counted)
        with Store(db) as store:
            summary = ingest_file(store, path, Transaction, RunOptions(block_size=block))
    assert summary.tally.rows == sum(batches)
    return batches, {name: query(db, sql) for name, sql in STORED.items()}


def test_dense_errors_make_smaller_blocks_and_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.csv"
    write(path, bad=True)
    held, stored = run(path, tmp_path / "held.duckdb", monkeypatch, BUDGET)
    whole, unheld = run(path, tmp_path / "whole.duckdb", monkeypatch, 10**9)
    assert stored == unheld
    assert len(stored["errors"]) == 4 * ROWS
    # Without the budget: batches of a whole 64 KiB block (about 1,300 rows).
    assert min(whole[:-1]) > 1_200
    # With it: the first three blocks are read before the first batch's errors are counted
    # (the reader runs ahead); from then on, BUDGET / 4 rows.
    assert held[3:-1] == [BUDGET // 4] * (len(held) - 4)
    assert len(held) > len(whole)


def test_the_first_blocks_do_not_grow_before_the_first_batch_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of a run start at a sixteenth of its block size and double; the reader runs
    ahead of the batches, so they doubled before any batch's errors were counted (rows of 8
    bytes with 5 errors each read 4 MiB, 2.6M errors, and passed 1 GiB). Now a block doubles
    once per batch counted."""
    path = tmp_path / "bad.csv"
    write(path, bad=True)
    held, stored = run(path, tmp_path / "held.duckdb", monkeypatch, BUDGET, block=1 << 20)
    first = path.read_bytes()[: 1 << 16].count(b"\n") - 1  # a 64 KiB block, less the header
    assert first == 1_312
    assert held[0] == first
    # No batch larger than a 64 KiB block (1,312-1,314 rows); the old reader's second block
    # was 128 KiB: [1312, 2344, 1313, 500, 500, 31].
    assert max(held) < 1_320
    assert sum(held) == ROWS
    assert len(stored["errors"]) == 4 * ROWS


def test_a_file_without_errors_keeps_its_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "good.csv"
    write(path, bad=False)
    held, stored = run(path, tmp_path / "held.duckdb", monkeypatch, BUDGET)
    whole, unheld = run(path, tmp_path / "whole.duckdb", monkeypatch, 10**9)
    assert (held, stored) == (whole, unheld)
    assert stored["errors"] == []


def test_long_error_inputs_make_smaller_blocks_from_a_small_first_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing field's input is the whole row as JSON, extra columns' names included: a
    header of long names made 20 KB of inputs a row and 400 MB in a 1 MiB first block (an
    independent attack: 1.1-7.9 GB). Now the first block is a 256th of a block (64 KiB at
    least) and the next ones hold about ``INPUT_BYTES_PER_BLOCK`` of inputs."""
    names = [f"extra_{i}_" + "k" * 200 for i in range(5)]
    header = ",".join(["external_id", "amount", "currency", "source_channel", "timestamp", *names])
    path = tmp_path / "wide.csv"
    row = ",1.5,USD,,2024-01-01T00:00:00" + ",x" * 5  # external_id and source_channel missing
    path.write_text(header + "\n" + (row + "\n") * ROWS, encoding="utf-8")
    inputs: list[int] = []
    held, stored = run(
        path, tmp_path / "held.duckdb", monkeypatch, 10**9, 16 << 20, 256 << 10, inputs
    )
    whole, unheld = run(path, tmp_path / "whole.duckdb", monkeypatch, 10**9, 16 << 20)
    assert stored == unheld
    assert len(stored["errors"]) == 2 * ROWS
    assert whole == [1_610, 1_639, 1_638, 1_113]  # 64 KiB blocks (the old first: 1 MiB)
    per_row = inputs[0] // held[0]
    assert (held[0], per_row) == (1_610, 2_284)  # 64 KiB of 40-byte rows: 3.7 MB of inputs
    # From the fourth batch on (the reader runs ahead), about 256 KiB of inputs a batch.
    assert set(held[3:-1]) == {114, 115}
    assert max(inputs[3:]) == 115 * per_row == 262_660


def test_batches_hold_at_most_a_million_errors_a_field_and_a_row_can_make() -> None:
    assert block_budget.records_for(5) == 166_666  # the transactions model
    assert block_budget.records_for(9) == 100_000
    assert block_budget.records_for(0) == 524_288  # at most MAX_RECORDS
    assert block_budget.records_for(500) == 16_384  # at least SMALLEST_BATCH


def test_dense_rows_after_a_clean_stretch_come_in_bounded_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget is set after a batch: clean rows let the next blocks grow, and a block of
    dense rows read then made one batch of all its rows (600,000 valid rows, then 2M rows of
    ``,-,X,,x`` in 16 MiB blocks: 10M errors a batch, 1.5 GB). Batches now hold at most
    ``ERRORS_PER_BATCH`` over the fields and one rows (here 6,000 / 6)."""
    path = tmp_path / "sparse_dense.csv"
    write(path, bad=False)
    with path.open("a", encoding="utf-8") as out:
        out.write(",-,X,,x\n" * ROWS)
    whole, unheld = run(path, tmp_path / "whole.duckdb", monkeypatch, 10**9, 1 << 20)
    monkeypatch.setattr(block_budget, "ERRORS_PER_BATCH", 6_000)
    monkeypatch.setattr(block_budget, "SMALLEST_BATCH", 1)
    held, stored = run(path, tmp_path / "held.duckdb", monkeypatch, 10**9, 1 << 20)
    assert stored == unheld
    assert len(stored["errors"]) == 5 * ROWS
    assert len(stored["valid"]) == ROWS
    assert max(whole) > 1_000  # a 64 KiB block holds 1,090 clean rows, 8,192 dense ones
    assert max(held) == 1_000
    assert sum(held) == 2 * ROWS


ORDERS_STORED = {
    "valid": "SELECT * EXCLUDE (run_id) FROM orders ORDER BY row_number",
    "errors": "SELECT * EXCLUDE (run_id) FROM error_details ORDER BY ALL",
    "raw": "SELECT * EXCLUDE (run_id) FROM raw_data ORDER BY row_number",
}


def test_a_parquet_file_of_dense_errors_makes_smaller_batches_and_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames came in pieces of 100,000 rows (or a row group's batch) whatever their errors:
    an orders Parquet file of 250,000 rows failing on its 9 fields and 10 extra columns
    peaked at 2.86 GB. Now its batches start small (``FIRST_ROWS``), are held to the budget
    in rows after each batch, and store the same tables."""
    import polars as pl

    from schemas.orders import Order

    rows = 40_000
    columns = ["Order ID", "quantity", "unit_price", "status", "priority", "ordered_at"]
    frame = pl.DataFrame({name: ["x"] * rows for name in [*columns, "ship_by", "gift"]})
    frame = frame.with_columns(customer=pl.lit(""), note=pl.int_range(rows))  # 10 errors a row
    path = tmp_path / "dense.parquet"
    frame.write_parquet(path, row_group_size=rows)

    def run(budget: int, db: Path) -> tuple[list[int], dict[str, list[tuple[object, ...]]]]:
        batches: list[int] = []
        validate = pipeline.validate_batch

        def counted(*args: object) -> pipeline.Validated:
            validated = validate(*args)  # type: ignore[arg-type]
            batches.append(validated.tally.rows)
            return validated

        with monkeypatch.context() as patch:
            patch.setattr(block_budget, "ERRORS_PER_BLOCK", budget)
            patch.setattr(block_budget, "MIN_BLOCK", 4 << 10)
            patch.setattr(pipeline, "validate_batch", counted)
            with Store(db) as store:
                summary = ingest_file(store, path, Order, RunOptions())
        assert summary.tally.rows == sum(batches) == rows
        assert summary.tally.python_rows == 0
        return batches, {name: query(db, sql) for name, sql in ORDERS_STORED.items()}

    held, stored = run(5_000, tmp_path / "held.duckdb")
    whole, unheld = run(10**9, tmp_path / "whole.duckdb")
    assert stored == unheld
    assert len(stored["errors"]) == 10 * rows and stored["valid"] == []
    # Without the budget: the first batches of 8,192 rows (the reader runs ahead of the
    # batches counted), doubling to the 40,000 rows of the row group.
    assert whole[0] == 8_192 and min(whole[:-1]) >= 8_192
    # With it: from the fourth batch on, about 5,000 errors (500 rows) a batch.
    assert held[:3] == [8_192] * 3
    assert 490 <= min(held[3:-1]) <= max(held[3:-1]) <= 500


def test_a_parquet_file_of_long_error_inputs_comes_in_batches_of_a_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing field's input is the whole row as JSON: under ten 1,000-character column
    names, 10 KB of lineage and 20 KB of inputs a row. The budget allowed such rows the
    block size, which a frame read as no limit, so its batches doubled to 100,000 rows (a
    Parquet file of 320,000 rows peaked at 3.9 GB). Now a frame's batches are held to the
    block size in lineage, the first ones to its keys' bytes, as a text source's blocks are
    (here 5 names of 200 characters and 256 KiB blocks)."""
    import polars as pl

    names = [f"extra_{i}_" + "k" * 200 for i in range(5)]
    frame = pl.DataFrame(  # external_id and source_channel missing: 2 errors a row
        {"amount": [1.5] * ROWS, "currency": ["USD"] * ROWS}
        | {"timestamp": ["2024-01-01T00:00:00"] * ROWS}
        | {name: ["x"] * ROWS for name in names}
    )
    path = tmp_path / "long_keys.parquet"
    frame.write_parquet(path, row_group_size=ROWS)
    inputs: list[int] = []
    held, stored = run(
        path, tmp_path / "held.duckdb", monkeypatch, 10**9, 256 << 10, 10**12, inputs
    )
    whole, unheld = run(path, tmp_path / "whole.duckdb", monkeypatch, 10**9, 1 << 30)
    assert stored == unheld
    assert len(stored["errors"]) == 2 * ROWS and stored["valid"] == []
    assert whole == [ROWS]  # 8,192 rows before the first batch is counted
    # 256 KiB over the keys' 1,105 bytes (``key_bytes``: 213 bytes for a name, 11 for
    # amount, 13 and 14, 2), then over the 1,141 bytes of lineage a row had,
    # not 8,192 rows then 16,384 (all 6,000 rows in one batch, 6.8 MB of inputs).
    assert held == [237] + [229] * 25 + [38]
    assert inputs[:2] == [237 * 2_280, 229 * 2_280]  # the input of an error: 1,140 bytes
