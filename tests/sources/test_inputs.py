"""Inputs: a byte stream and its name, read once; what was read is fingerprinted on the way."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from engine.errors import SourceError
from engine.sources.inputs import HashingReader, full_hash, open_input, quick_fingerprint

MiB = 1 << 20


@pytest.mark.parametrize("size", [1, MiB - 1, MiB, MiB + 1, 2 * MiB - 3, 2 * MiB, 3 * MiB + 7])
@pytest.mark.parametrize("block_size", [1000, 64 * 1024, 3 * MiB])
def test_the_fingerprint_of_what_was_read_is_the_files(
    tmp_path: Path, size: int, block_size: int
) -> None:
    """What a run records of the bytes it read is what the pre-check computes from a file
    holding exactly those bytes: so a file is recognised when run again."""
    content = hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1)
    path = tmp_path / "f.bin"
    path.write_bytes(content[:size])
    with open_input(path) as source:
        reader = HashingReader(source, block_size)
        assert b"".join(reader.blocks()) == content[:size]
    read = reader.fingerprint()
    assert (read.size, read.quick, read.digest) == (size, quick_fingerprint(path), full_hash(path))


def write_once(path: Path, content: bytes) -> threading.Thread:
    writer = threading.Thread(target=path.write_bytes, args=(content,), daemon=True)
    writer.start()
    return writer


def test_a_fifo_is_a_stream_read_once(tmp_path: Path) -> None:
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    content = b"a,b\n" + b"1,2\n" * 100_000
    writer = write_once(path, content)
    with open_input(path) as source:
        assert (source.name, source.size, source.path, source.recorded_as) == (
            str(path),
            None,
            None,
            str(path),
        )
        assert source.head(4) == b"a,b\n"  # kept: the blocks still start there
        reader = HashingReader(source, 64 * 1024)
        assert b"".join(reader.blocks()) == content
    writer.join()
    assert reader.fingerprint().digest == hashlib.sha256(content).hexdigest()


def test_a_regular_file_has_a_size_and_a_path(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a\n1\n")
    with open_input(path) as source:
        assert (source.size, source.path, source.recorded_as) == (4, path, str(path.resolve()))
    with open_input(path, name="upload.csv") as named:
        assert (named.name, named.recorded_as) == ("upload.csv", "upload.csv")


def test_inputs_that_cannot_be_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    locked = tmp_path / "locked.csv"
    locked.write_bytes(b"a\n")
    locked.chmod(0)
    cases = [
        (tmp_path / "missing.csv", "no such file"),
        (tmp_path, "is a directory, not a file"),
        (empty, "file is empty"),
    ]
    if os.geteuid() != 0:  # root reads anything
        cases.append((locked, "cannot be read (Permission denied)"))
    for path, problem in cases:
        with pytest.raises(SourceError) as raised:
            open_input(path)
        assert str(raised.value) == f"{path}: {problem}"
