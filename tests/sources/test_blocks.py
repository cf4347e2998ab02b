"""Reading a file in blocks: sizes ramp up from 1 MiB, nothing is lost, the hash covers all."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.sources.blocks import HashingReader

MiB = 1 << 20


def test_blocks_double_from_one_mib_up_to_the_block_size(tmp_path: Path) -> None:
    content = bytes(range(256)) * (13 * MiB // 256) + b"tail"
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    reader = HashingReader(path, block_size=4 * MiB)
    blocks = list(reader.blocks())
    assert [len(b) for b in blocks] == [MiB, 2 * MiB, 4 * MiB, 4 * MiB, 2 * MiB + 4]
    assert b"".join(blocks) == content
    assert reader.bytes_read == len(content)
    assert reader.digest == hashlib.sha256(content).hexdigest()


def test_a_block_size_below_one_mib_is_used_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10)
    assert [len(b) for b in HashingReader(path, block_size=4).blocks()] == [4, 4, 2]
