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
    path: Path, db: Path, monkeypatch: pytest.MonkeyPatch, budget: int, block: int = BLOCK
) -> tuple[list[int], dict[str, list[tuple[object, ...]]]]:
    """Each batch's rows and what the run stored, with blocks held to ``budget`` errors."""
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
            summary = ingest_file(store, path, Transaction, RunOptions(block_size=block))
    assert summary.tally.rows == ROWS
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
