"""Reading a file in blocks: nothing is lost, and the hash covers everything read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.sources.blocks import HashingReader

MiB = 1 << 20


def test_blocks_cover_the_file_and_the_hash_covers_the_blocks(tmp_path: Path) -> None:
    content = bytes(range(256)) * (9 * MiB // 256) + b"tail"
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    reader = HashingReader(path, block_size=4 * MiB)
    blocks = list(reader.blocks())
    assert [len(b) for b in blocks] == [4 * MiB, 4 * MiB, MiB + 4]
    assert b"".join(blocks) == content
    assert reader.bytes_read == len(content)
    assert reader.digest == hashlib.sha256(content).hexdigest()
