"""``max_record_bytes`` holds for Parquet and Arrow rows: a row whose JSON text (its lineage)
is longer stops the file in one line naming the row, before that text is built when its
strings alone are longer; a row group of long rows is read a few rows at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest.mock import patch

import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from engine.errors import SourceError
from engine.sources.columnar import arrow_chunks, parquet_chunks
from engine.sources.frames import RecordsSource
from engine.sources.inputs import open_input
from engine.sources.json_forms import object_text
from engine.validation.compiler import compile_schema
from schemas.transactions import Transaction
from tests.conftest import query
from tests.test_run_inputs import cli, runs

MiB = 1 << 20
TABLE = pa.table(
    {
        "external_id": ["T1", "T2", "x" * 150, "T4"],
        "amount": [1.0, 2.0, 3.0, 4.0],
        "note": [b"ab", None, b"", b"cd"],
    }
)


def write(tmp_path: Path, fmt: str, table: pa.Table = TABLE) -> Path:
    path = tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=3)
    else:
        feather.write_feather(table, str(path))
    return path


def read(path: Path, limit: int | None) -> list[str]:
    """The rows' JSON texts, read with the limit."""
    source = open_input(path)
    pieces = (
        parquet_chunks(source, max_record_bytes=limit)
        if path.suffix == ".parquet"
        else arrow_chunks(source, max_record_bytes=limit)
    )
    schema = compile_schema(Transaction, typed=True)
    records = RecordsSource(pieces, schema, path.suffix[1:], limit, str(path))
    return [t for batch in records.batches() for t in batch.frame["__raw"].to_list()]


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_a_row_longer_than_the_limit_stops_the_file_naming_it(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, fmt)
    texts = read(path, None)
    assert [len(t.encode()) for t in texts] == [45, 45, 191, 45]
    assert read(path, 191) == texts
    built = []

    def spy(frame: pl.DataFrame, *tokens: pl.DataFrame) -> pl.Series:
        built.append(frame.height)
        return object_text(frame, *tokens)

    # Its strings alone (150 bytes) are longer than 149: refused before its text is built.
    for limit, texts_built in ((190, [3 if fmt == "parquet" else 4]), (149, []), (100, [])):
        built.clear()
        with patch("engine.sources.frames.object_text", spy), pytest.raises(SourceError) as raised:
            read(path, limit)
        assert str(raised.value) == (
            f"{path}: row 3 is longer than {limit:,} bytes as JSON text (its lineage) "
            "(raise max_record_bytes if the file is right)"
        )
        assert built == texts_built


def test_the_cli_refuses_the_row_with_exit_2_and_stores_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "parquet")
    db = tmp_path / "t.duckdb"
    done = cli("run", str(path), "--db", str(db), "--max-record-bytes", "100")
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        f"error: {path}: row 3 is longer than 100 bytes as JSON text (its lineage) "
        "(raise --max-record-bytes if the file is right)"
    )
    assert [(r[1], r[4]) for r in runs(db)] == [("failed", 0)]
    assert query(db, "SELECT count(*) FROM source_rows") == [(0,)]


PEAK = r"""
import re, sys
from pathlib import Path
from unittest.mock import patch
from engine.errors import SourceError
from engine.sources.columnar import parquet_chunks
from engine.sources.inputs import open_input
from engine.sources.json_forms import object_text
try:
    for chunk in parquet_chunks(open_input(Path(sys.argv[1])), max_record_bytes=16 << 20):
        pass
except SourceError as exc:
    print(exc)
print(int(re.search(r'VmHWM:\s+(\d+)', open('/proc/self/status').read())[1]) >> 10)
"""


def test_a_row_group_of_huge_strings_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """The child's own peak is its VmHWM: ``ru_maxrss`` would count the test process's
    memory at the fork. Six rows of one 50 MB string (a dictionary: a few KB as zstd) were decoded at once,
    830 MiB, then turned into JSON texts and stored: 2.9 GB and DuckDB out of memory."""
    path = tmp_path / "bomb.parquet"
    one = pa.array(["x" * (50 * MiB)], pa.large_string())
    pq.write_table(pa.table({"external_id": pa.chunked_array([one] * 6)}), path, compression="zstd")
    del one
    assert path.stat().st_size < 100_000
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    error, peak_mib = out.stdout.splitlines()
    assert error == (
        f"{path}: row 1 is longer than 16,777,216 bytes as JSON text (its lineage) "
        "(raise max_record_bytes if the file is right)"
    )
    assert int(peak_mib) < 500


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_many_columns_of_few_stored_bytes_are_read_a_slice_at_a_time(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell takes 16 bytes or more in memory however few it is stored in: 100,000 rows of
    300 one-letter columns (73 KB stored) came as one frame, 620 MB as Arrow and Polars,
    before their first batch was validated (1.42 GB). A row now counts ``CELL_BYTES`` (24) a
    column at least: here 100 columns and ``BATCH_BYTES`` of 240,000, 100 rows a frame."""
    from engine.sources import columnar

    table = pa.table({f"c{i:03d}": ["x"] * 2_000 for i in range(100)})
    path = tmp_path / f"wide.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)  # one row group
    else:
        feather.write_feather(table, str(path))  # one record batch
    texts = read(path, None)
    monkeypatch.setattr(columnar, "BATCH_BYTES", 240_000)
    chunks = (
        parquet_chunks(open_input(path)) if fmt == "parquet" else arrow_chunks(open_input(path))
    )
    assert [len(chunk) for chunk in chunks] == [100] * 20  # one of 2,000 rows before
    assert read(path, None) == texts
