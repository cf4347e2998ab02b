"""``engine.validate`` turns pieces of its input into JSON forms and validates them on several
threads: the results must come back whole and in input order, as Pydantic judges each row."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from pydantic import BaseModel, Field, ValidationError

import engine
from engine import validating
from engine.columns import RAW, ROW
from engine.sources.frames import FrameEncoder, chunks
from engine.validation.validate import BatchValidator


class Reading(BaseModel):
    i: int = Field(gt=0)
    s: str = Field(max_length=3)


def readings(rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i": [str(n if n % 3 else -n) for n in range(1, rows + 1)],
            "s": ["abcd" if n % 7 == 0 else "ab" for n in range(1, rows + 1)],
        }
    )


def pydantic_invalid(frame: pl.DataFrame) -> list[int]:
    found = []
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        try:
            Reading.model_validate(row)
        except ValidationError:
            found.append(number)
    return found


@pytest.mark.parametrize("workers", [1, 3])
def test_pieces_come_back_whole_and_in_input_order(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(validating, "WORKERS", workers)
    frame = readings(2000)
    _, validator = validating._prepared(Reading, {})
    results = list(validating._validated(chunks(frame, rows=37), validator))
    assert len(results) == 55  # 2000 rows in pieces of 37
    rows = pl.concat([raw for _, raw in results])
    assert rows[ROW].to_list() == list(range(1, 2001))
    assert rows[RAW].head(2).to_list() == ['{"i":"1","s":"ab"}', '{"i":"2","s":"ab"}']
    valid = pl.concat([part.valid for part, _ in results])
    invalid = sorted(n for part, _ in results for n in part.invalid[ROW].to_list())
    assert invalid == pydantic_invalid(frame)
    assert valid.height == 2000 - len(invalid) == 1144  # not a multiple of 3 or of 7


def test_a_frame_of_many_pieces_gets_pydantics_verdicts_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validating, "WORKERS", 2)
    frame = readings(230_000)  # three pieces of at most 100,000 rows
    result = engine.validate(frame, Reading)
    expected = pydantic_invalid(frame)
    assert result.invalid["row_number"].to_list() == expected
    assert (result.rows, result.invalid_rows) == (230_000, len(expected))
    assert result.valid["i"].head(3).to_list() == [1, 2, 4]
    assert result.invalid.row(0, named=True)["errors"] == [
        {
            "type": "greater_than",
            "loc": ["i"],
            "msg": "Input should be greater than 0",
            "input": '"-3"',
        }
    ]


def test_a_failing_piece_stops_validation_and_every_encoder_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validating, "WORKERS", 3)
    opened: list[FrameEncoder] = []
    closed: list[FrameEncoder] = []
    original_init, original_close = FrameEncoder.__init__, FrameEncoder.close
    original_validate = BatchValidator.validate

    def init(self: FrameEncoder, *args: Any) -> None:
        original_init(self, *args)
        opened.append(self)

    def close(self: FrameEncoder) -> None:
        closed.append(self)
        original_close(self)

    def validate(self: BatchValidator, batch: Any, now: Any) -> Any:
        if batch.frame[ROW][0] == 1 + 5 * 37:
            raise RuntimeError("piece 6 failed")
        return original_validate(self, batch, now)

    monkeypatch.setattr(FrameEncoder, "__init__", init)
    monkeypatch.setattr(FrameEncoder, "close", close)
    monkeypatch.setattr(BatchValidator, "validate", validate)
    _, validator = validating._prepared(Reading, {})
    seen = []
    with pytest.raises(RuntimeError, match="piece 6 failed"):
        for _, raw in validating._validated(chunks(readings(2000), rows=37), validator):
            seen.append(raw[ROW][0])
    assert seen == [1 + k * 37 for k in range(5)]  # the pieces before it, in order
    assert 1 <= len(opened) <= 3
    assert sorted(map(id, closed)) == sorted(map(id, opened))
