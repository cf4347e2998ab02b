"""Blocks of many short (or blank) lines: the cutter yields at most ``max_records`` records per
feed, with the same records, lines and blank-line counts as uncut, and memory stays bounded."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from unittest.mock import patch

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.columns import LINE
from engine.sources.csv import CsvSource
from engine.sources.json import JsonSource, array_boundaries
from engine.sources.records import (
    BoundaryFinder,
    Cutter,
    iter_records,
    line_boundaries,
    quoted_boundaries,
)

MiB = 1 << 20

CSV = (
    b'a,b\n\n\n1,2\r\n\r\n"x\n\ny",3\n\n\r\r4,"5\r\n"\n'
    b"\n\n\n6,7\n8,9\n\n" + b"\n" * 40 + b'"11\n\n\n",12\n\n\n13,14'
)
NDJSON = b'\n\n{"a": 1}\n\r\n\n{"a": 2}\r\r\n' + b"\n" * 30 + b'{"a": 3}\n\n{"a": 4}'
ARRAY = b"[" + b",".join([b"1", b'"x,y"', b"[1,2]", b'{"a": 2}', b"\n\n3", *[b"4"] * 30]) + b"]\n"


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[at : at + size] for at in range(0, len(data), size))


def cut(cutter: Cutter, data: bytes, size: int) -> list[tuple[list[bytes], list[int], list[bool]]]:
    """Each Records yielded: its records' bytes, lines and whether they span lines."""
    found = []
    for records in iter_records(cutter, pieces(data, size)):
        stops = [*records.starts[1:].tolist(), records.stop]
        texts = [records.data[a:b] for a, b in zip(records.starts.tolist(), stops, strict=True)]
        found.append((texts, records.lines.tolist(), records.newlines_inside.tolist()))
    return found


def flat(batches: list[tuple[list[bytes], list[int], list[bool]]]) -> tuple[list[object], ...]:
    return tuple([item for batch in batches for item in batch[part]] for part in range(3))


@pytest.mark.parametrize(
    ("finder", "data"),
    # (The JSON reader replaces the array's opening bracket by a space before cutting.)
    [(quoted_boundaries, CSV), (line_boundaries, NDJSON), (array_boundaries, b" " + ARRAY[1:])],
    ids=["csv", "ndjson", "array"],
)
@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("most", [1, 2, 5])
def test_capped_feeds_yield_the_same_records(
    finder: BoundaryFinder, data: bytes, size: int, most: int
) -> None:
    whole = flat(cut(Cutter(finder, 1 << 10), data, size))
    batches = cut(Cutter(finder, 1 << 10, max_records=most), data, size)
    assert flat(batches) == whole
    largest = max(len(texts) for texts, _, _ in batches)
    assert largest == most if size == 1 << 20 else largest <= most


def test_a_block_of_newlines_is_cut_into_pieces_of_at_most_max_records() -> None:
    batches = cut(Cutter(line_boundaries, 1 << 10, max_records=4), b"\n" * 10 + b"x", 1 << 20)
    assert [texts for texts, _, _ in batches] == [[b"\n"] * 4, [b"\n"] * 4, [b"\n"] * 2, [b"x"]]
    assert [lines for _, lines, _ in batches] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10], [11]]


def read_csv(path: Path, block_size: int) -> tuple[pl.DataFrame, int]:
    source = CsvSource(path, block_size=block_size, max_record_bytes=1 << 10)
    return pl.concat([batch.frame for batch in source.batches()]), source.blank_lines


def read_json(path: Path, block_size: int, *, array: bool) -> tuple[pl.DataFrame, int]:
    source = JsonSource(
        path,
        keys=("a",),
        want_all_keys=True,
        array=array,
        block_size=block_size,
        max_record_bytes=1 << 10,
    )
    return pl.concat([batch.frame for batch in source.batches()]), source.blank_lines


def capped(module: str, most: int) -> AbstractContextManager[object]:
    return patch(f"engine.sources.{module}.Cutter", functools.partial(Cutter, max_records=most))


@pytest.mark.parametrize("size", [5, 1 << 20])
def test_csv_rows_lines_and_blank_lines_are_the_same_in_capped_pieces(
    tmp_path: Path, size: int
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(CSV)
    whole, blank = read_csv(path, size)
    for most in (1, 3):
        with capped("csv", most):
            assert_frame_equal(read_csv(path, size)[0], whole)
            assert read_csv(path, size)[1] == blank == 52
    assert whole[LINE].to_list() == [4, 6, 12, 17, 18, 60, 66]
    assert whole["a"].to_list() == ["1", "x\n\ny", "4", "6", "8", "11\n\n\n", "13"]
    assert whole["b"].to_list() == ["2", "3", "5\r\n", "7", "9", "12", "14"]


@pytest.mark.parametrize("size", [5, 1 << 20])
@pytest.mark.parametrize("array", [False, True])
def test_json_rows_lines_and_blank_lines_are_the_same_in_capped_pieces(
    tmp_path: Path, size: int, array: bool
) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(ARRAY if array else NDJSON)
    whole, blank = read_json(path, size, array=array)
    for most in (1, 3):
        with capped("json", most):
            assert_frame_equal(read_json(path, size, array=array)[0], whole)
            assert read_json(path, size, array=array)[1] == blank
    if array:
        assert (whole.height, blank) == (35, 0)
        assert whole[LINE].to_list()[3:6] == [1, 3, 3]
    else:
        assert (whole.height, blank) == (4, 36)
        assert whole[LINE].to_list() == [3, 6, 38, 40]


PEAK = r"""
import re, sys
from pathlib import Path
from engine.sources.{module} import {cls}
source = {cls}(Path(sys.argv[1]), block_size=16 << 20, max_record_bytes=16 << 20{extra})
rows = sum(batch.frame.height for batch in source.batches())
print(rows, source.blank_lines, int(re.search(r'VmHWM:\s+(\d+)', open('/proc/self/status').read())[1]) >> 10)
"""


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_sixteen_mib_of_blank_lines_read_in_bounded_memory(tmp_path: Path, fmt: str) -> None:
    """16 MiB of newlines were 16M records in one batch: about 900 MiB at its peak."""
    path = tmp_path / f"blank.{fmt}"
    path.write_bytes((b"a,b\n" if fmt == "csv" else b"") + b"\n" * (16 * MiB) + b"\n")
    code = (
        PEAK.format(module="csv", cls="CsvSource", extra="")
        if fmt == "csv"
        else PEAK.format(
            module="json", cls="JsonSource", extra=", keys=('a',), want_all_keys=True, array=False"
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    rows, blank, peak_mib = map(int, out.stdout.split())
    assert (rows, blank) == (0, 16 * MiB + 1)
    assert peak_mib < 400
