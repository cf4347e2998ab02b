"""Reading a file in blocks, finding invalid UTF-8 and cutting blocks into records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from engine.sources.blocks import invalid_utf8_ranges, line_ends
from engine.sources.inputs import HashingReader, open_input
from engine.sources.records import Cutter, quoted_boundaries

MiB = 1 << 20


def test_blocks_cover_the_file_and_the_hash_covers_the_blocks(tmp_path: Path) -> None:
    content = bytes(range(256)) * (9 * MiB // 256) + b"tail"
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    reader = HashingReader(path, block_size=4 * MiB)
    blocks = list(reader.blocks())
    # 64 KiB first (a 256th of a block, at least 64 KiB), doubling (the size of a bare path
    # is not looked up).
    K = 1 << 10
    assert [len(b) for b in blocks] == [
        *(64 * K, 128 * K, 256 * K, 512 * K, MiB, 2 * MiB, 4 * MiB),
        MiB + 64 * K + 4,
    ]
    assert b"".join(blocks) == content
    assert reader.bytes_read == len(content)
    assert reader.digest == hashlib.sha256(content).hexdigest()


def test_a_reader_told_its_limit_doubles_once_per_telling(tmp_path: Path) -> None:
    """A file run tells the reader its limit before the first block and after each batch
    (``engine.block_budget``); the reader runs ahead of the batches, so its blocks double
    with the tellings, not with the blocks read."""
    content = b"x" * (9 * MiB)
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    K = 1 << 10
    reader = HashingReader(path, block_size=4 * MiB)
    reader.limit_blocks(4 * MiB)
    blocks = reader.blocks()

    def read() -> int:
        return len(next(blocks))

    assert [read(), read(), read()] == [64 * K] * 3  # no batch counted yet
    reader.limit_blocks(4 * MiB)
    assert read() == 128 * K
    reader.limit_blocks(4 * MiB)
    assert [read(), read()] == [256 * K, 256 * K]
    for _ in range(5):
        reader.limit_blocks(4 * MiB)
    assert read() == 4 * MiB  # 8 MiB by the tellings, held to the block size
    reader.limit_blocks(MiB)  # a dense batch
    assert [read(), *map(len, blocks)] == [MiB, MiB, MiB, MiB, 192 * K]  # 9 MiB in all
    assert reader.bytes_read == len(content)


def test_blocks_shrink_by_halves_toward_the_end_of_an_input_of_known_size(
    tmp_path: Path,
) -> None:
    content = b"x" * (40 * MiB + 5)
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    with open_input(path) as given:
        reader = HashingReader(given, block_size=8 * MiB)
        sizes = [len(b) for b in reader.blocks()]
    K = 1 << 10
    assert sizes == [
        *(64 * K, 128 * K, 256 * K, 512 * K, MiB, 2 * MiB, 4 * MiB),
        *(8 * MiB, 8 * MiB, 8 * MiB),  # 8 MiB + 64 KiB + 5 left
        4 * MiB + 32 * K + 3,  # then half of what is left, rounded up,
        2 * MiB + 16 * K + 1,
        MiB + 8 * K + 1,
        516 * K,
        512 * K,  # down to a sixteenth of a block,
        4 * K,  # which takes what remains
    ]
    assert sum(sizes) == len(content)


def ranges(data: bytes, starts: list[int]) -> list[tuple[int, int]]:
    return invalid_utf8_ranges(data, np.array(starts, dtype=np.int64), len(data))


def test_invalid_utf8_is_found_per_record_with_its_offset() -> None:
    assert ranges(b"abc\ndef\n", [0, 4]) == []
    assert ranges("café\nthé\n".encode(), [0, 6]) == []
    assert ranges(b"ok\nb\xffd\nok\n\xe9\n", [0, 3, 7, 10]) == [(1, 1), (3, 0)]


def test_bytes_before_the_first_record_are_not_checked() -> None:
    assert ranges(b"\xff\nok\n", [2]) == []
    assert ranges(b"\xff\no\xe9\n", [2]) == [(0, 1)]


def test_records_are_one_per_line_without_quotes_crlf_and_an_open_last_line() -> None:
    cutter = Cutter(quoted_boundaries, max_record_bytes=1 << 10)
    first = cutter.feed(b"a,b\r\nc,d\r\ne,", eof=False)
    assert first is not None
    assert first.starts.tolist() == [0, 5]
    assert first.lines.tolist() == [1, 2]
    assert first.newlines_inside.tolist() == [False, False]
    assert cutter.carry == b"e,"
    last = cutter.feed(b'f\n"g\nh",i', eof=True)  # the quote arrives with the carry
    assert last is not None
    assert [
        bytes(last.data[s:e])
        for s, e in zip(last.starts, [*last.starts[1:], last.stop], strict=True)
    ] == [
        b"e,f\n",
        b'"g\nh",i',
    ]
    assert last.lines.tolist() == [3, 4]
    assert last.newlines_inside.tolist() == [False, True]
    assert not last.last_terminated


def ends(data: bytes, *, eof: bool) -> list[int]:
    return [int(i) for i in line_ends(np.frombuffer(data, dtype=np.uint8), eof=eof)]


def test_line_ends_are_lf_crlf_or_a_lone_cr() -> None:
    assert ends(b"a\nb\n", eof=False) == [1, 3]
    assert ends(b"a\r\nb\r\n", eof=False) == [2, 5]  # a CRLF ends at its LF
    assert ends(b"a\rb\r\nc\nd\r\re", eof=True) == [1, 4, 6, 8, 9]
    assert ends(b"\r\r\n\n\r", eof=True) == [0, 2, 3, 4]
    # A CR closing a block may be half of a CRLF: a line end only at the end of the input.
    assert ends(b"a\rb\r", eof=False) == [1]
    assert ends(b"a\rb\r", eof=True) == [1, 3]
    assert ends(b"a\r\nb\r", eof=False) == [2]
    assert ends(b"\n", eof=False) == [0]
    assert ends(b"", eof=True) == []
