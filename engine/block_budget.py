"""How large a file run's next blocks may be, given the errors of its last batch.

A batch's error lists cost memory by the error, not by the byte: validating builds each
error's input, code and text, and the allocator keeps that memory for reuse. A 1M-row CSV whose
every row fails on four fields (64 MB: 262,000 rows and a million errors in a 16 MiB block)
peaked at 1.10 GB, where generated data with a third of its rows invalid (about 60,000
errors a block) peaks at 0.8 GB. So after each batch the reader is held to blocks that would
hold about ``ERRORS_PER_BLOCK`` errors at that batch's density, never smaller than
``MIN_BLOCK`` nor larger than the run's block size: that file reads 3.8 MiB blocks and peaks
at 0.8 GB, 10% slower (500,000 errors cost no time but peaked at 0.99 GB), and generated data
keeps its 16 MiB blocks. ``MIN_BLOCK`` is 256 KiB: rows of a few bytes with an error in each
field (``,-,X,,x``: 5 errors in 8 bytes, 655,000 in 1 MiB) peaked at 0.94-0.97 GB with 1 MiB
and 0.87-0.88 GB with 256 KiB, 7% slower on that file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.pipeline import Validated

ERRORS_PER_BLOCK = 250_000
MIN_BLOCK = 1 << 18


def block_for(validated: Validated, block_size: int) -> int:
    """The largest block the next batches should come from."""
    errors = sum(validated.tally.errors.values())
    if not errors:
        return block_size
    lines = validated.lineage
    size = int(lines["raw"].str.len_bytes().sum() or 0) + lines.height  # and their newlines
    return max(MIN_BLOCK, min(block_size, ERRORS_PER_BLOCK * size // errors))
