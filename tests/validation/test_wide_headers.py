"""A CSV header of thousands of columns the model does not read: the work per batch does not
grow with the square of its width, and a header wider than ``MAX_COLUMNS`` is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

import polars as pl
import pytest
from pydantic import BaseModel

from engine.batch import RawBatch
from engine.columns import LINE, MALFORMED, MALFORMED_MSG, RAW, ROW
from engine.errors import SourceError
from engine.sources import csv as csv_source
from engine.sources.csv import CsvSource
from engine.validation.compiler import compile_schema
from engine.validation.validate import BatchValidator


class Model(BaseModel):
    x: int


def columns_read(extra: int) -> tuple[int, list[int]]:
    """How many times validating one row with ``extra`` unread columns lists a frame's
    columns (a list each time: looking names up in it per column was quadratic), and the
    valid rows' values."""
    keys = ("x", *(f"c{i}" for i in range(extra)))
    frame = pl.DataFrame(
        {ROW: [1], LINE: [2], RAW: ["5" + "," * extra], MALFORMED: [None], MALFORMED_MSG: [None]},
        schema_overrides={MALFORMED: pl.String, MALFORMED_MSG: pl.String},
    ).with_columns(pl.lit("5").alias("x"), *(pl.lit(None, pl.String).alias(k) for k in keys[1:]))
    validator = BatchValidator(compile_schema(Model, typed=False), keys)
    listed = pl.DataFrame.columns
    calls = []

    def counted(self: pl.DataFrame) -> list[str]:
        calls.append(1)
        return listed.fget(self)  # type: ignore[no-any-return, attr-defined]

    with patch.object(pl.DataFrame, "columns", property(counted)):
        result = validator.validate(RawBatch(frame, keys, typed=False), datetime.now(UTC))
    return len(calls), result.valid["x"].to_list()


def test_a_wide_header_costs_no_more_column_listings_than_a_narrow_one() -> None:
    narrow, wide = columns_read(3), columns_read(3_000)
    assert narrow == wide
    assert wide[1] == [5]


def test_a_header_wider_than_the_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("a,b,c,d\n1,2,3,4\n")
    with patch.object(csv_source, "MAX_COLUMNS", 4):
        rows = [
            b.frame.height for b in CsvSource(path, block_size=64, max_record_bytes=64).batches()
        ]
    assert rows == [1]
    with patch.object(csv_source, "MAX_COLUMNS", 3), pytest.raises(SourceError) as raised:
        list(CsvSource(path, block_size=64, max_record_bytes=64).batches())
    assert str(raised.value) == (
        f"{path}, line 1: the header row has 4 columns, more than the 3 read"
    )


def test_the_limit_is_fifty_thousand_columns(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(50_001)) + "\n")
    with pytest.raises(SourceError) as raised:
        list(CsvSource(path, block_size=1 << 20, max_record_bytes=1 << 20).batches())
    assert str(raised.value) == (
        f"{path}, line 1: the header row has 50,001 columns, more than the 50,000 read"
    )
